"""``python -m chainrule COMMAND ...``: the same as the ``chainrule`` console script."""

import sys

from chainrule.cli.launch import chainrule

sys.exit(chainrule())
