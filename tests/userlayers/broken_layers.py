"""User layers for the command-line gradient check: one right, two deliberately wrong."""

import numpy as np

from layers import Layer


class GoodScale(Layer):
    """out = x * w with a learned vector w of shape (D,)."""

    def __init__(self, features: int = 3) -> None:
        super().__init__()
        self.params = {"w": np.linspace(0.5, 1.5, features)}
        self.grads = {"w": np.zeros(features)}
        self.x = None

    def forward(self, x):
        self.x = x
        return x * self.params["w"]

    def backward(self, dout):
        self.grads["w"] = (dout * self.cached(self.x)).sum(axis=0)
        return dout * self.params["w"]

    @classmethod
    def example(cls, rng):
        return cls(), (rng.standard_normal((4, 3)),)


class WrongInputGradScale(GoodScale):
    """Forgets the weight in dx."""

    def backward(self, dout):
        super().backward(dout)
        return dout


class WrongParamGradScale(GoodScale):
    """Right dx, but the weight gradient misses a factor of 2 on one entry."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["w"][0] *= 2
        return dx


class NeedsArguments(Layer):
    """A correct layer whose __init__ needs an argument and which defines no example()."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.features = features

    def forward(self, x):
        return 2 * x

    def backward(self, dout):
        return 2 * dout
