"""What the zoo's layers share: a one-input base with float64 parameters, and inputs away from zero."""

import numpy as np

from layers import Layer


class ZooLayer(Layer, register=False):
    """Helper base: one input x of shape (batch, D), params given as a dict of float64 arrays."""

    D = 4

    def __init__(self, **params):
        super().__init__()
        self.params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.cache = None

    @classmethod
    def example(cls, rng, batch=3):
        return cls(), (rng.standard_normal((batch, cls.D)),)


def both_signs(rng, shape):
    """Normal samples at least 0.1 from 0, with the first entry negative and the second positive."""
    x = np.abs(rng.standard_normal(shape)) + 0.1
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    sign.flat[:2] = (-1.0, 1.0)
    return x * sign
