"""``python -m chainrule COMMAND ...``: the same as the ``chainrule`` console script."""

import sys

from chainrule.launch import chainrule

sys.exit(chainrule())
