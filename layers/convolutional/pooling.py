"""Pooling over one or two spatial axes: max and average windows, and the global average.

Every window's value at one kernel offset is a strided view of the input (``Geometry.at``): forward combines
those views offset by offset, and backward adds each offset's share of the gradient back where it was read.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..base import Array, Layer, as_float_array, check_dout
from ..kernels import compiled
from .windows import Geometry, as_tuple


class PoolND(Layer, register=False):
    """Pooling with ``kernel_size``, ``stride`` (the kernel size by default) and ``padding`` on each side.

    x : ndarray (N, C, *spatial), floating; out : (N, C, *out_spatial), out = (size + 2 padding - kernel) //
    stride + 1 along each axis, as PyTorch computes it.
    """

    variants = 3  # the examples' geometries (POOL_EXAMPLES)

    nd = 0

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        name = type(self).__name__
        kernel = as_tuple(kernel_size, self.nd, "kernel_size", name, 1)
        strides = kernel if stride is None else as_tuple(stride, self.nd, "stride", name, 1)
        pads = as_tuple(padding, self.nd, "padding", name, 0)
        if any(2 * p > k for p, k in zip(pads, kernel, strict=True)):
            raise ValueError(f"{name}: padding {padding!r} must be at most half the kernel size {kernel_size!r}")
        self.geometry = Geometry(kernel, strides, pads, (1,) * self.nd)
        self.cache: Any = None

    def __repr__(self) -> str:
        g = self.geometry
        parts = [f"kernel_size={g.kernel[0] if len(set(g.kernel)) == 1 else g.kernel}"]
        if g.stride != g.kernel:
            parts.append(f"stride={g.stride[0] if len(set(g.stride)) == 1 else g.stride}")
        if any(g.padding):
            parts.append(f"padding={g.padding[0] if len(set(g.padding)) == 1 else g.padding}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def check_shape(self, x: Array) -> tuple[int, ...]:
        """The output's spatial shape, or a ValueError naming the layer and x's shape."""
        if x.ndim != 2 + self.nd:
            spatial = "L" if self.nd == 1 else "H, W"
            raise ValueError(f"{self!r}: expected x of shape (N, C, {spatial}), got {x.shape}")
        return self.geometry.output_shape(self, x.shape[2:])


class MaxPoolND(PoolND, register=False):
    """out = the largest value in each window (padding counts as -inf). The gradient goes to that value; of
    tied values, to the first in the window (row-major order). Caches the winner's kernel offset in each
    window (one small integer per output value).

    The running maximum is taken one kernel offset at a time over strided views of the input, as is the
    gradient's scatter, with arithmetic in place of masked writes (masked writes on random masks took 4 ms a
    pass at (64, 32, 16, 16) float32, and argmax over gathered windows 30 ms a forward).
    """

    def forward(self, x: Array) -> Array:
        x = as_float_array(self, x)
        g = self.geometry
        out_spatial = self.check_shape(x)
        kernels = compiled("pooling", x.size)
        if kernels:
            best, winner = kernels.max_pool(x, g, out_spatial)
            self.cache = (winner, g.pad_shape(x.shape), out_spatial)
            return best
        xp = g.pad(x, -np.inf)
        offsets = list(np.ndindex(*g.kernel))
        best = xp[g.at(offsets[0], out_spatial)].copy(order="K")
        winner = np.zeros_like(best, dtype=np.uint8 if len(offsets) < 256 else np.int64)
        for i, offset in enumerate(offsets[1:], start=1):
            values = xp[g.at(offset, out_spatial)]
            better = values > best  # strictly: a tie keeps the earlier offset
            np.maximum(best, values, out=best)
            winner += better.view(np.uint8) * (winner.dtype.type(i) - winner)  # i where better: no branches
        self.cache = (winner, xp.shape, out_spatial)
        return best

    def backward(self, dout: Array) -> Array:
        winner, padded, out_spatial = self.cached(self.cache)
        check_dout(self, dout, (*padded[:2], *out_spatial))
        g, kernels = self.geometry, compiled("pooling", int(np.prod(padded)))
        if kernels:
            return kernels.max_pool_backward(dout, winner, g, g.unpad_shape(padded))
        dxp = g.gradient_buffer(winner, dout.dtype, padded, out_spatial)  # in the layout of the forward's input
        for i, offset in enumerate(np.ndindex(*g.kernel)):
            g.add_at(dxp, offset, out_spatial, dout, winner == i)
        return g.unpad(dxp)


class AvgPoolND(PoolND, register=False):
    """out = the mean of each window, padded zeros counted (PyTorch's default, count_include_pad=True);
    each input in a window gets dout / window size. Sums one kernel offset at a time over strided views, as
    MaxPool does. Caches the shapes only."""

    def forward(self, x: Array) -> Array:
        x = as_float_array(self, x)
        g = self.geometry
        out_spatial = self.check_shape(x)
        self.cache = (g.pad_shape(x.shape), out_spatial)
        kernels = compiled("pooling", x.size)
        if kernels:
            return kernels.avg_pool(x, g, out_spatial)
        xp = g.pad(x)
        total = sum(xp[g.at(offset, out_spatial)] for offset in np.ndindex(*g.kernel))
        return total / x.dtype.type(g.kernel_size)

    def backward(self, dout: Array) -> Array:
        padded, out_spatial = self.cached(self.cache)
        g = self.geometry
        check_dout(self, dout, (*padded[:2], *out_spatial))
        kernels = compiled("pooling", int(np.prod(padded)))
        if kernels:
            return kernels.avg_pool_backward(dout, g, g.unpad_shape(padded))
        share = dout / dout.dtype.type(g.kernel_size)
        dxp = g.gradient_buffer(share, share.dtype, padded, out_spatial)
        for offset in np.ndindex(*g.kernel):
            g.add_at(dxp, offset, out_spatial, share)
        return g.unpad(dxp)


#: The pooling examples' geometries, by variant: overlapping and padded, tiling, overlapping at stride 1.
POOL_EXAMPLES = [(3, 2, 1), (2, None, 0), (3, 1, 1)]


def pool_example(cls: Any, rng: np.random.Generator, batch: int, spatial: tuple[int, ...], variant: int
                 ) -> tuple[Layer, tuple]:
    """A pooling layer of geometry ``variant`` of ``POOL_EXAMPLES`` (kernel, stride, padding), and distinct
    inputs (no ties)."""
    kernel, stride, padding = POOL_EXAMPLES[variant]
    layer = cls(kernel, stride=stride, padding=padding)
    size = batch * 2 * int(np.prod(spatial))
    x = rng.permutation(size).reshape(batch, 2, *spatial) / size + 0.01 * rng.standard_normal((batch, 2, *spatial))
    return layer, (x,)


class MaxPool1D(MaxPoolND, leaf=True):
    """Max pooling on (N, C, L); see ``MaxPoolND`` and ``PoolND``."""

    nd = 1

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3, variant: int = 0) -> tuple[Layer, tuple[Array, ...]]:
        return pool_example(cls, rng, batch, (7,), variant)


class MaxPool2D(MaxPoolND, leaf=True):
    """Max pooling on (N, C, H, W); sizes are an int or an (H, W) pair. See ``MaxPoolND``."""

    nd = 2

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3, variant: int = 0) -> tuple[Layer, tuple[Array, ...]]:
        return pool_example(cls, rng, batch, (5, 4), variant)


class AvgPool1D(AvgPoolND, leaf=True):
    """Average pooling on (N, C, L); see ``AvgPoolND`` and ``PoolND``."""

    nd = 1

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3, variant: int = 0) -> tuple[Layer, tuple[Array, ...]]:
        return pool_example(cls, rng, batch, (7,), variant)


class AvgPool2D(AvgPoolND, leaf=True):
    """Average pooling on (N, C, H, W); see ``AvgPoolND`` and ``PoolND``."""

    nd = 2

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3, variant: int = 0) -> tuple[Layer, tuple[Array, ...]]:
        return pool_example(cls, rng, batch, (5, 4), variant)


class GlobalAvgPool(Layer, leaf=True):
    """out[n, c] = the mean of x[n, c] over every spatial position: (N, C, *spatial) -> (N, C).
    dx = dout / (number of positions), broadcast. Caches the input's shape."""

    def __init__(self) -> None:
        super().__init__()
        self.shape: tuple[int, ...] | None = None

    def forward(self, x: Array) -> Array:
        x = as_float_array(self, x)
        if x.ndim < 3:
            raise ValueError(f"{self!r}: expected x of shape (N, C, *spatial) with at least one spatial axis, "
                             f"got {x.shape}")
        if 0 in x.shape[2:]:
            raise ValueError(f"{self!r}: x of shape {x.shape} has no positions to average over; its mean is not "
                             "defined (an earlier layer shrank the input away: check kernel sizes and strides)")
        self.shape = x.shape
        return x.mean(axis=tuple(range(2, x.ndim)))

    def backward(self, dout: Array) -> Array:
        shape = self.cached(self.shape)
        check_dout(self, dout, shape[:2])
        positions = dout.dtype.type(np.prod(shape[2:]))
        return np.broadcast_to((dout / positions).reshape(*shape[:2], *(1,) * (len(shape) - 2)), shape).copy()

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        return cls(), (rng.standard_normal((batch, 3, 4, 2)),)
