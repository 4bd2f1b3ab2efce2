"""Dropout: a layer with randomness and modes."""

from __future__ import annotations

import numpy as np

from .base import Array, Layer, Mask, as_float_array, check_dout
from .init import make_rng


class Dropout(Layer, leaf=True):
    """Inverted dropout: in training, out = x * mask / (1 - p) with mask ~ Bernoulli(1 - p); in eval, out = x.

    x : any shape, floating; out has x's shape and dtype. The mask comes from the layer's own
    ``rng`` (a ``numpy.random.Generator``, seeded; a Generator passed in seeds a new one from it), so
    runs are reproducible and checkpoints restore it. Local gradient: dx = dout * mask / (1 - p).
    Caches the boolean mask (None in eval mode, where dx = dout).
    """

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        if not (isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p < 1):
            raise ValueError(f"Dropout: p must be a number in [0, 1), got {p!r}")
        self.p = float(p)
        source = make_rng(rng)
        self.rng = np.random.default_rng(source.integers(2**63)) if isinstance(rng, np.random.Generator) else source
        self.mask: Mask | None = None
        self.shape: tuple[int, ...] | None = None

    def __repr__(self) -> str:
        return f"Dropout(p={self.p:g})"

    def forward(self, x: Array) -> Array:
        x = as_float_array(self, x)
        self.shape = x.shape
        if not self.training or self.p == 0:
            self.mask = None
            return x.copy()
        self.mask = self.rng.random(x.shape, dtype=x.dtype) >= x.dtype.type(self.p)
        return x * self.mask * x.dtype.type(1 / (1 - self.p))

    def backward(self, dout: Array) -> Array:
        shape = self.cached(self.shape)
        check_dout(self, dout, shape)
        if self.mask is None:
            return dout.copy()
        return dout * self.mask * dout.dtype.type(1 / (1 - self.p))

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        return cls(0.3, rng=rng), (rng.standard_normal((batch, 2, 3)),)
