"""``python -m layers.gradcheck``: the command line belongs to the application, which may import every floor."""

import sys

from chainrule.cli.gradcheck import main
from chainrule.cli.shell import quiet_on_broken_pipe

sys.exit(quiet_on_broken_pipe(main))
