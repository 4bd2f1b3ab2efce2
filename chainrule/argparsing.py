"""An ArgumentParser whose usage errors are one line and exit status 2, as every chainrule command's errors are."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """``prog: error: message`` on one line (no usage block), exit status 2; ``--help`` still shows everything."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)
