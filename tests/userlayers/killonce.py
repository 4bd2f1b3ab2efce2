"""A layer that kills its own process once: the first training forward where the marker file is missing."""

import os
import signal
from pathlib import Path

from layers import Layer


class KillOnce(Layer):
    """out = x. In training, if $CHAINRULE_KILL_MARKER does not exist yet, create it and SIGKILL this process
    (a worker dying mid-trial); every later forward passes through."""

    def forward(self, x):
        marker = Path(os.environ.get("CHAINRULE_KILL_MARKER", "/nonexistent/marker"))
        if self.training and marker.parent.is_dir() and not marker.exists():
            marker.write_text("killed")
            os.kill(os.getpid(), signal.SIGKILL)
        return x

    def backward(self, dout):
        return dout
