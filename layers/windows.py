"""Sliding windows for convolution and pooling over the trailing 1 or 2 axes of (N, C, *spatial) arrays.

``columns`` copies every window of a padded input into columns (C, *kernel, N, *out) for one matrix product,
and ``add_columns`` is its adjoint; ``gather`` views every window without copying (``sliding_window_view``
with strides and dilation applied by slicing), (N, C, *out, *kernel), and ``scatter`` is its adjoint. Each
loops over kernel offsets only (``prod(kernel)`` strided copies or additions), never over examples or output
positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .base import Array


def as_tuple(value: Any, nd: int, name: str, owner: str, low: int) -> tuple[int, ...]:
    """An int or a sequence of ``nd`` ints, each >= ``low``, as a tuple; else a ValueError naming ``owner``."""
    values = (value,) * nd if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    try:
        out = tuple(int(v) for v in values)
        ok = len(out) == nd and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                    for v in values) and min(out) >= low
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{owner}: {name} must be an integer >= {low} or {nd} of them, got {value!r}")
    return out


@dataclass(frozen=True)
class Geometry:
    """Kernel, stride, padding and dilation of a sliding window over ``nd`` spatial axes."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]

    @property
    def nd(self) -> int:
        return len(self.kernel)

    @property
    def kernel_size(self) -> int:
        """The number of positions in a window."""
        return int(np.prod(self.kernel))

    def output_shape(self, owner: object, spatial: tuple[int, ...]) -> tuple[int, ...]:
        """The output's spatial shape for input ``spatial``, or a ValueError when a window does not fit."""
        out = []
        for size, k, s, p, d in zip(spatial, self.kernel, self.stride, self.padding, self.dilation, strict=True):
            reach = d * (k - 1) + 1
            if size + 2 * p < reach:
                raise ValueError(f"{owner!r}: the kernel spans {reach} positions (with dilation) but the padded "
                                 f"input has {size + 2 * p} along an axis; input spatial shape {spatial}")
            out.append((size + 2 * p - reach) // s + 1)
        return tuple(out)

    def pad(self, x: Array, value: float = 0.0) -> Array:
        if not any(self.padding):
            return x
        widths = [(0, 0)] * (x.ndim - self.nd) + [(p, p) for p in self.padding]
        return np.pad(x, widths, constant_values=value)

    def unpad(self, xp: Array) -> Array:
        index: tuple[Any, ...] = (Ellipsis, *(slice(p, xp.shape[-self.nd + i] - p)
                                               for i, p in enumerate(self.padding)))
        return xp[index]

    def gather(self, xp: Array) -> Array:
        """Every window of the padded ``xp`` (N, C, *S) as a read-only view of shape (N, C, *out, *kernel)."""
        reach = tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation, strict=True))
        axes = tuple(range(xp.ndim - self.nd, xp.ndim))
        windows = sliding_window_view(xp, reach, axis=axes)
        index: tuple[Any, ...] = (Ellipsis, *(slice(None, None, s) for s in self.stride),
                                  *(slice(None, None, d) for d in self.dilation))
        return windows[index]

    def at(self, offset: tuple[int, ...], out: tuple[int, ...]) -> tuple[Any, ...]:
        """The strided index that reads, for every output position, the padded input at kernel ``offset``."""
        return (slice(None), slice(None), *(slice(o * d, o * d + s * (n - 1) + 1, s) for o, d, s, n in
                                            zip(offset, self.dilation, self.stride, out, strict=True)))

    def columns(self, xp: Array, out: tuple[int, ...]) -> Array:
        """im2col: the padded ``xp`` (N, C, *S) as columns (C, *kernel, N, *out), one strided copy per kernel
        offset; reshaped to (C * prod(kernel), N * prod(out)) it multiplies the weights (F, C * prod(kernel))."""
        N, C = xp.shape[:2]
        cols = np.empty((C, *self.kernel, N, *out), dtype=xp.dtype)
        for offset in np.ndindex(*self.kernel):
            index: tuple[Any, ...] = (slice(None), *offset)
            cols[index] = xp[self.at(offset, out)].swapaxes(0, 1)
        return cols

    def add_columns(self, dcols: Array, padded_shape: tuple[int, ...]) -> Array:
        """col2im, the adjoint of ``columns``: dcols (C, *kernel, N, *out) added into zeros of ``padded_shape``."""
        out = dcols.shape[2 + self.nd:]
        dxp = np.zeros(padded_shape, dtype=dcols.dtype)
        for offset in np.ndindex(*self.kernel):
            index: tuple[Any, ...] = (slice(None), *offset)
            dxp[self.at(offset, out)] += dcols[index].swapaxes(0, 1)
        return dxp

    def scatter(self, dwindows: Array, padded_shape: tuple[int, ...]) -> Array:
        """The adjoint of ``gather``: dwindows (N, C, *out, *kernel) summed into a zero array of ``padded_shape``."""
        dxp = np.zeros(padded_shape, dtype=dwindows.dtype)
        out = dwindows.shape[2:2 + self.nd]
        kernel_first = np.moveaxis(dwindows, tuple(range(2 + self.nd, 2 + 2 * self.nd)), tuple(range(2, 2 + self.nd)))
        for offset in np.ndindex(*self.kernel):
            source: tuple[Any, ...] = (slice(None), slice(None), *offset)
            dxp[self.at(offset, out)] += kernel_first[source]
        return dxp
