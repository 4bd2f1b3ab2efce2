"""An identity layer that sleeps, so a test can kill a run part-way through."""

import time

from layers import Layer


class SlowIdentity(Layer):
    """out = x, after a 4 ms pause."""

    def forward(self, x):
        time.sleep(0.004)
        return x

    def backward(self, dout):
        return dout
