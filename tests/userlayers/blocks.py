"""Layers made of layers, as a user writes them: sub-layers in attributes, in a list, with a BatchNorm inside,
and a block with a parameter of its own beside its sub-layers."""

import numpy as np

from layers import Affine, BatchNorm, Dropout, Layer, ReLU, Tanh


class ResidualBlock(Layer):
    """out = x + drop(fc(x)), x of shape (N, D); sub-layers in attributes."""

    def __init__(self, in_features, p=0.5, *, rng=None, dtype=np.float32):
        super().__init__()
        self.fc = Affine(in_features, in_features, rng=rng, dtype=dtype)
        self.drop = Dropout(p, rng=rng)

    def forward(self, x):
        return x + self.drop.forward(self.fc.forward(x))

    def backward(self, dout):
        return dout + self.fc.backward(self.drop.backward(dout))

    @classmethod
    def example(cls, rng, batch=3):
        return cls(4, rng=rng, dtype=np.float64), (rng.standard_normal((batch, 4)),)


class NormBlock(Layer):
    """out = x + relu(bn(fc(x))), x of shape (N, D); a BatchNorm (buffers, modes) inside."""

    def __init__(self, in_features, *, rng=None, dtype=np.float32):
        super().__init__()
        self.fc = Affine(in_features, in_features, rng=rng, dtype=dtype)
        self.bn = BatchNorm(in_features, dtype=dtype)
        self.act = ReLU()

    def forward(self, x):
        return x + self.act.forward(self.bn.forward(self.fc.forward(x)))

    def backward(self, dout):
        return dout + self.fc.backward(self.bn.backward(self.act.backward(dout)))

    @classmethod
    def example(cls, rng, batch=3):
        block = cls(4, rng=rng, dtype=np.float64)
        block.fc.params["b"][:] = 0.5 + rng.random(4)  # keep the ReLU's inputs away from its kink
        return block, (rng.standard_normal((max(batch, 2), 4)),)


class ListBlock(Layer):
    """out = scale * stages(x) with stages = [Affine, Tanh, Affine] held in a list; ``scale`` (D,) is the
    block's own parameter beside its sub-layers'."""

    def __init__(self, in_features, *, rng=None, dtype=np.float32):
        super().__init__()
        self.stages = [Affine(in_features, in_features, rng=rng, dtype=dtype), Tanh(),
                       Affine(in_features, in_features, rng=rng, dtype=dtype)]
        self.params = {"scale": np.ones(in_features, dtype=dtype)}
        self.grads = {"scale": np.zeros(in_features, dtype=dtype)}
        self.h = None

    def forward(self, x):
        for stage in self.stages:
            x = stage.forward(x)
        self.h = x
        return self.params["scale"] * x

    def backward(self, dout):
        self.grads["scale"] = (dout * self.cached(self.h)).sum(axis=0)  # rebinds the entry, as users do
        dx = dout * self.params["scale"]
        for stage in reversed(self.stages):
            dx = stage.backward(dx)
        return dx

    @classmethod
    def example(cls, rng, batch=3):
        block = cls(4, rng=rng, dtype=np.float64)
        block.params["scale"][:] = 0.5 + rng.random(4)
        return block, (rng.standard_normal((batch, 4)),)
