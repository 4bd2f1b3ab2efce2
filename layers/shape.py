"""Layers that change only the shape of each example: Flatten, Reshape and Transpose."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Array, Layer, as_float_array, check_dout


class Flatten(Layer, leaf=True):
    """(N, d1, ..., dk) -> (N, d1 * ... * dk); dx is dout in x's shape. Caches the input's shape."""

    def __init__(self) -> None:
        super().__init__()
        self.shape: tuple[int, ...] | None = None

    def forward(self, x: Array) -> Array:
        x = as_float_array(self, x)
        if x.ndim < 1:
            raise ValueError(f"{self!r}: expected x of shape (N, ...), got a scalar")
        self.shape = x.shape
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))  # sizes, not -1: an empty batch flattens too

    def backward(self, dout: Array) -> Array:
        shape = self.cached(self.shape)
        check_dout(self, dout, (shape[0], int(np.prod(shape[1:]))))
        return dout.reshape(shape)


class Reshape(Layer, leaf=True):
    """(N, *in) -> (N, *shape), where ``shape`` is one example's new shape (same number of values; one entry
    may be -1). dx is dout in x's shape. Caches the input's shape."""

    def __init__(self, shape: Any) -> None:
        super().__init__()
        try:
            self.shape = tuple(int(s) for s in shape)
            ok = all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in shape)
        except TypeError:
            ok = False
        if not ok or any(s < 1 and s != -1 for s in self.shape) or list(self.shape).count(-1) > 1:
            raise ValueError(f"Reshape: shape must be a list of positive integers (one may be -1), got {shape!r}")
        self.shapes: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    def __repr__(self) -> str:
        return f"Reshape(shape={list(self.shape)})"

    def forward(self, x: Array) -> Array:
        x = as_float_array(self, x)
        known = int(np.prod([s for s in self.shape if s != -1]))
        size = int(np.prod(x.shape[1:]))
        if x.ndim < 1 or (size != known if -1 not in self.shape else size % known):
            raise ValueError(f"{self!r}: cannot reshape examples of shape {x.shape[1:]} ({size} values) "
                             f"to {self.shape}")
        out = x.reshape(x.shape[0], *(size // known if s == -1 else s for s in self.shape))
        self.shapes = (x.shape, out.shape)
        return out

    def backward(self, dout: Array) -> Array:
        in_shape, out_shape = self.cached(self.shapes)
        check_dout(self, dout, out_shape)
        return dout.reshape(in_shape)

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        return cls([3, -1]), (rng.standard_normal((batch, 2, 3)),)


class Transpose(Layer, leaf=True):
    """Permutes the axes of each example: (N, *in) -> (N, *[in[a] for a in axes]), ``axes`` a permutation of
    0..k-1 over one example's k axes (as ``Reshape`` takes a shape without the batch). dx is dout permuted
    back. Returns a view. Caches nothing but the layer's own axes."""

    def __init__(self, axes: Any) -> None:
        super().__init__()
        try:
            self.axes = tuple(int(a) for a in axes)
            ok = all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes)
        except TypeError:
            ok = False
        if not ok or sorted(self.axes) != list(range(len(self.axes))):
            raise ValueError(f"Transpose: axes must be a permutation of 0..k-1 over one example's axes, got {axes!r}")
        self.order = (0, *(a + 1 for a in self.axes))
        self.inverse = tuple(int(i) for i in np.argsort(self.order))
        self.shape: tuple[int, ...] | None = None

    def __repr__(self) -> str:
        return f"Transpose(axes={list(self.axes)})"

    def forward(self, x: Array) -> Array:
        x = as_float_array(self, x)
        if x.ndim != len(self.order):
            raise ValueError(f"{self!r}: expected examples of {len(self.axes)} axes, got x of shape {x.shape}")
        out = x.transpose(self.order)
        self.shape = out.shape
        return out

    def backward(self, dout: Array) -> Array:
        shape = self.cached(self.shape)
        check_dout(self, dout, shape)
        return dout.transpose(self.inverse)

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        return cls([2, 0, 1]), (rng.standard_normal((batch, 2, 3, 4)),)
