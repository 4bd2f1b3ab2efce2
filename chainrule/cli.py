"""The command lines: ``chainrule train|gradcheck ...`` and ``python -m solver CONFIG`` (the same as train).

Each is a thin shell over functions a notebook can call: argument parsing, exit codes and one-line errors.
"""

from __future__ import annotations

import argparse
import sys

from chainrule.argparsing import OneLineParser
from chainrule.config import ConfigError
from chainrule.gradcheck import gradcheck_model
from chainrule.runs import run


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m solver", description="Train a network from a TOML or JSON config.",
        epilog="examples:\n  python -m solver examples/spiral.toml\n"
               "  python -m solver examples/spiral.toml --set optim.lr=0.05 --set solver.epochs=10\n"
               "  python -m solver examples/spiral.toml --resume runs/spiral\n"
               "  python -m solver examples/spiral.toml --gradcheck",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="path to a .toml or .json config")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config key; the value is parsed as TOML (repeatable)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the interrupted run in RUN_DIR")
    parser.add_argument("--gradcheck", action="store_true",
                        help="gradient-check the whole model (data loss + L2) on a few rows in float64, then exit")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    try:
        return gradcheck_model(args) if args.gradcheck else run(args)
    except (ConfigError, FileNotFoundError, KeyError, ValueError, TypeError, ImportError) as e:
        if args.debug:
            raise
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"solver: error: {message}", file=sys.stderr)
        return 2
