"""Windows to columns (im2col) and back (col2im), compiled: the twins of ``Geometry.columns`` and
``Geometry.add_columns`` in ``layers.convolutional.windows``, with the padding read in place (no padded copy).

A 1-D input (N, C, L) is a 2-D one of height 1. The input may be laid out (N, C, ...) or channel-major
(C, N, ...), as convolutions return it; the column gradients come back channel-major, as numpy's twin gives them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange

Array = np.ndarray


def with_height(x: Array) -> Array:
    """``x`` (N, C, *spatial) with two spatial axes: a 1-D input (N, C, L) as (N, C, 1, L), a view."""
    return x[:, :, None, :] if x.ndim == 3 else x


def spatial_2d(geometry: Any, spatial: tuple[int, ...]) -> tuple[int, ...]:
    """A spatial shape for two axes: a 1-D geometry's (L,) as (1, L)."""
    return (1, *spatial) if geometry.nd == 1 else tuple(spatial)


def as_2d(x: Array) -> tuple[Array, bool]:
    """``x`` (N, C, *spatial) as a C-contiguous (N, C, H, W) or (C, N, H, W) array (a view where its memory
    allows), and whether it is channel-major."""
    x = with_height(x)
    if x.flags.c_contiguous:
        return x, False
    swapped = x.swapaxes(0, 1)
    if swapped.flags.c_contiguous:
        return swapped, True
    return np.ascontiguousarray(x), False


def geometry_2d(geometry: Any) -> tuple[int, ...]:
    """kernel, stride, padding and dilation as 8 ints for two axes (a 1-D geometry gets a height of 1)."""
    parts: tuple[tuple[int, ...], ...] = (geometry.kernel, geometry.stride, geometry.padding, geometry.dilation)
    if geometry.nd == 1:
        parts = tuple(((1, 1, 0, 1)[i], p[0]) for i, p in enumerate(parts))
    return tuple(int(v) for pair in parts for v in pair)


def columns(x: Array, geometry: Any, out: tuple[int, ...]) -> Array:
    """The twin of ``Geometry.columns(geometry.pad(x), out)``: (C, *kernel, N, *out)."""
    planes, channel_major = as_2d(x)
    N, C = x.shape[:2]
    sizes = geometry_2d(geometry)
    cols = np.empty((C, *sizes[:2], N, *spatial_2d(geometry, out)), dtype=x.dtype)
    fill_columns(planes, channel_major, *sizes, cols)
    return cols.reshape((C, *geometry.kernel, N, *out))


def add_columns(dcols: Array, geometry: Any, spatial: tuple[int, ...]) -> Array:
    """The twin of ``geometry.unpad(geometry.add_columns(dcols, padded))``: the input's gradient (N, C, *spatial),
    a view of channel-major memory."""
    C, N = dcols.shape[0], dcols.shape[1 + geometry.nd]
    dcols_2d = dcols[:, None, :, :, None, :] if geometry.nd == 1 else dcols
    dx = np.empty((C, N, *spatial_2d(geometry, spatial)), dtype=dcols.dtype)
    sum_columns(np.ascontiguousarray(dcols_2d), *geometry_2d(geometry), dx)
    return dx.reshape(C, N, *spatial).swapaxes(0, 1)


@njit(parallel=True, cache=True)
def fill_columns(x, channel_major, kh, kw, sh, sw, ph, pw, dh, dw, cols):  # pragma: no cover (compiled)
    """cols[c, i, j, n, a, b] = x[n, c, a sh - ph + i dh, b sw - pw + j dw], 0 outside x."""
    C, N, OH, OW = cols.shape[0], cols.shape[3], cols.shape[4], cols.shape[5]
    H, W = x.shape[2], x.shape[3]
    zero = x.dtype.type(0)
    for row in prange(C * kh * kw):
        c, i, j = row // (kh * kw), (row // kw) % kh, row % kw
        for n in range(N):
            plane = x[c, n] if channel_major else x[n, c]
            for a in range(OH):
                h = a * sh - ph + i * dh
                for b in range(OW):
                    w = b * sw - pw + j * dw
                    inside = 0 <= h < H and 0 <= w < W
                    cols[c, i, j, n, a, b] = plane[h, w] if inside else zero


@njit(parallel=True, cache=True)
def sum_columns(dcols, kh, kw, sh, sw, ph, pw, dh, dw, dx):  # pragma: no cover (compiled)
    """dx[c, n, h, w] = the sum of dcols[c, i, j, n, a, b] over the windows (a, b) and offsets (i, j) that read
    (h, w), offsets in row-major order as numpy's twin adds them."""
    C, N, H, W = dx.shape
    OH, OW = dcols.shape[4], dcols.shape[5]
    for p in prange(C * N):
        c, n = p // N, p % N
        plane = dx[c, n]
        plane[:] = 0
        for i in range(kh):
            for j in range(kw):
                source = dcols[c, i, j, n]
                for a in range(OH):
                    h = a * sh - ph + i * dh
                    if 0 <= h < H:
                        for b in range(OW):
                            w = b * sw - pw + j * dw
                            if 0 <= w < W:
                                plane[h, w] += source[a, b]
