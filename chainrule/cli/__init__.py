"""The command lines: ``chainrule train|predict|evaluate|export|sample|sweep|gradcheck`` and ``python -m solver``.

``launch`` is where they start (Ctrl-C is one line from the first milliseconds), ``commands`` parses and runs
them, ``gradcheck`` is the gradient checker's, ``shell`` what they share (one-line errors, a closed pipe).
``main`` and ``solver_main`` are imported on first use, so that ``chainrule.cli.launch`` stays light: it imports
in 0.03 s, the commands in 0.6 s, and Ctrl-C during those must already be one line.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing takes long enough for a Ctrl-C to land in it
if TYPE_CHECKING:
    from chainrule.cli.commands import main, solver_main

__all__ = ["main", "solver_main"]


def __getattr__(name: str) -> object:
    if name not in __all__:
        raise AttributeError(f"module 'chainrule.cli' has no attribute {name!r}")
    from chainrule.cli import commands

    return getattr(commands, name)
