"""Sliding windows for convolution and pooling over the trailing 1 or 2 axes of (N, C, *spatial) arrays.

``at(offset, out)`` indexes, for every output position, the padded input at one kernel offset (a strided
view). ``columns`` copies every window into columns (C, *kernel, N, *out) for one matrix product, and
``add_columns`` is its adjoint. Each loops over kernel offsets only (``prod(kernel)`` strided copies or
additions), never over examples or output positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..base import Array


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
