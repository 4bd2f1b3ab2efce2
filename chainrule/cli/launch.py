"""Where the command lines start: Ctrl-C at any moment ends a command with one line and exit status 130.

While numpy and the framework import (a second or so) a KeyboardInterrupt would print a traceback from deep
inside an import, so ``start`` first installs a handler that says one line and exits at once: nothing has been
written yet. The command calls ``ready`` when it can take a KeyboardInterrupt itself. This module imports only
the standard library, and ``import chainrule`` imports nothing heavy, so the handler is in place in milliseconds.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType

PROGRAM = ["chainrule"]


def interrupted_while_starting(signum: int, frame: FrameType | None) -> None:
    os.write(2, f"{PROGRAM[0]}: interrupted\n".encode())
    os._exit(130)


def start(program: str) -> None:
    """Before the heavy imports of a command line: Ctrl-C from here on is one line and exit status 130."""
    PROGRAM[0] = program
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not where the caller ignores Ctrl-C
        signal.signal(signal.SIGINT, interrupted_while_starting)
    shadow = shadowing()
    if shadow:
        os.write(2, f"{program}: error: {shadow}\n".encode())
        raise SystemExit(2)


FRAMEWORK = ("layers", "losses", "optim", "solver")  # chainrule's top-level names beside the package


def shadowing() -> str | None:
    """A file or folder of the user's that Python would import in place of one of chainrule's top-level names
    (a ``layers.py`` in the working directory, say), named in words; None when there is none. Looked up
    without importing anything."""
    from importlib.machinery import PathFinder

    home = Path(__file__).resolve().parents[2]  # the folder that holds chainrule/ and the framework beside it
    for name in FRAMEWORK:
        spec = PathFinder.find_spec(name, sys.path)
        origin = Path(spec.origin).resolve() if spec is not None and spec.origin else None
        if origin is not None and home not in (origin.parent, origin.parent.parent):
            return (f"{origin} shadows chainrule's {name!r}: Python finds it first on its path (the working "
                    f"directory comes first); rename it or run from another folder")
    return None


def ready() -> None:
    """The command handles KeyboardInterrupt from here on (it knows what to say and what is saved)."""
    if signal.getsignal(signal.SIGINT) is interrupted_while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def chainrule() -> int:
    """The ``chainrule`` console script."""
    start("chainrule")
    from chainrule.cli.commands import main

    return main()
