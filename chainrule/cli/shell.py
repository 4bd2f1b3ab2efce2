"""What every chainrule command line shares: one-line usage errors (exit 2), and a quiet exit when the
reader of its output goes away (``chainrule evaluate RUN | head``)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """``prog: error: message`` on one line (no usage block), exit status 2; ``--help`` still shows everything."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def quiet_on_broken_pipe(main: Callable[[], int]) -> int:
    """Run ``main``; if stdout's reader closed the pipe, stop quietly (status 141, as a shell reports SIGPIPE)."""
    try:
        code = main()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
