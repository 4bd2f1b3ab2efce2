"""Where the command lines start: Ctrl-C at any moment ends a command with one line and exit status 130.

While numpy and the framework import (a second or so) a KeyboardInterrupt would print a traceback from deep
inside an import, so ``start`` first installs a handler that says one line and exits at once: nothing has been
written yet. The command calls ``ready`` when it can take a KeyboardInterrupt itself. This module imports only
the standard library, and ``import chainrule`` imports nothing heavy, so the handler is in place in milliseconds.
"""

from __future__ import annotations

import os
import signal
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


def ready() -> None:
    """The command handles KeyboardInterrupt from here on (it knows what to say and what is saved)."""
    if signal.getsignal(signal.SIGINT) is interrupted_while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def chainrule() -> int:
    """The ``chainrule`` console script."""
    start("chainrule")
    from chainrule.cli.commands import main

    return main()
