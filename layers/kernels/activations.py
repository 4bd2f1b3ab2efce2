"""ReLU and the exact GELU, compiled: the twins of ``ReLU``'s forward (the output and the mask in one pass) and
backward (dout where the mask is set), and of ``GELU``'s forward (x Phi(x), keeping Phi(x)), in parallel. Used from
``layers.kernels.MIN_PARALLEL`` values up."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

Array = np.ndarray


def flat(a: Array) -> Array | None:
    """``a``'s values in memory order as a 1-d view, or None when its memory is not one block."""
    view = a.ravel(order="K")
    return view if view.base is not None and np.shares_memory(view, a) else None


def relu(x: Array) -> tuple[Array, Array] | None:
    """max(0, x) and the mask x > 0, in x's layout; None where the numpy twin should run (x scattered in memory)."""
    values = flat(x)
    if values is None:
        return None
    out, mask = np.empty_like(x), np.empty_like(x, dtype=bool)
    relu_forward(values, flat(out), flat(mask))
    return out, mask


def relu_backward(dout: Array, mask: Array) -> Array | None:
    """dout * mask, in the mask's layout; None where the numpy twin should run."""
    kept = flat(mask)
    if kept is None:
        return None
    dx = np.empty_like(mask, dtype=dout.dtype)
    source = flat(dout) if dout.strides == dx.strides else None
    if source is None:  # dout in another layout: copied into dx's, then masked in place
        np.copyto(dx, dout)
        source = flat(dx)
    relu_mask(source, kept, flat(dx))
    return dx


def gelu(x: Array) -> tuple[Array, Array] | None:
    """x Phi(x) and Phi(x), in x's layout; None where the numpy twin should run."""
    values = flat(x)
    if values is None:
        return None
    out, cdf = np.empty_like(x), np.empty_like(x)
    gelu_forward(values, flat(out), flat(cdf))
    return out, cdf


@njit(cache=True)
def gelu_forward(x, out, cdf):  # pragma: no cover (compiled)
    """cdf = Phi(x) = erfc(-x / sqrt(2)) / 2, the form accurate in both tails; out = x cdf. On one thread: in a
    transformer's step BLAS's threads are still spinning from the product before, and a second thread here made
    the GPT step of benchmarks/gpt_bench.py slower (64-69 ms against 50-58 on one)."""
    scale, half = x.dtype.type(-1 / math.sqrt(2)), x.dtype.type(0.5)
    for i in range(x.size):
        p = half * math.erfc(x[i] * scale)
        cdf[i] = p
        out[i] = x[i] * p


@njit(parallel=True, cache=True)
def relu_forward(x, out, mask):  # pragma: no cover (compiled)
    zero = x.dtype.type(0)
    for i in prange(x.size):
        keep = x[i] > zero
        out[i] = x[i] if keep else zero
        mask[i] = keep


@njit(parallel=True, cache=True)
def relu_mask(dout, mask, dx):  # pragma: no cover (compiled)
    zero = dx.dtype.type(0)
    for i in prange(dx.size):
        dx[i] = dout[i] if mask[i] else zero
