"""Naive convolution and pooling, as the course writes them first: a Python loop over every example,
output position and filter, reading one window at a time. The fast layers are tested against these."""

from __future__ import annotations

import itertools

import numpy as np


def pad(x, padding, value=0.0):
    return np.pad(x, [(0, 0), (0, 0), *[(p, p) for p in padding]], constant_values=value)


def out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def window(xp, n, c, pos, kernel, stride, dilation):
    """xp[n, c] at the window of output position ``pos``: an array of the kernel's shape."""
    index = [np.arange(k) * d + o * s for k, s, d, o in zip(kernel, stride, dilation, pos, strict=True)]
    return xp[n, c][np.ix_(*index)]


def conv(x, W, b, stride, padding, dilation, groups, dout):
    """out, dx, dW, db of a grouped, strided, padded, dilated convolution, by loops."""
    N, C = x.shape[:2]
    F, Cg = W.shape[:2]
    kernel = W.shape[2:]
    out_shape = [out_size(*a) for a in zip(x.shape[2:], kernel, stride, padding, dilation, strict=True)]
    xp = pad(x, padding)
    out = np.zeros((N, F, *out_shape))
    dxp, dW, db = np.zeros_like(xp), np.zeros_like(W), np.zeros(F)
    for n, f in itertools.product(range(N), range(F)):
        group = f // (F // groups)
        for pos in itertools.product(*map(range, out_shape)):
            total = b[f]
            for cg in range(Cg):
                c = group * Cg + cg
                total += np.sum(window(xp, n, c, pos, kernel, stride, dilation) * W[f, cg])
                g = dout[(n, f, *pos)]
                dW[f, cg] += g * window(xp, n, c, pos, kernel, stride, dilation)
                index = [np.arange(k) * d + o * s for k, s, d, o in zip(kernel, stride, dilation, pos, strict=True)]
                dxp[n, c][np.ix_(*index)] += g * W[f, cg]
            out[(n, f, *pos)] = total
            db[f] += dout[(n, f, *pos)]
    crop = tuple(slice(p, p + size) for p, size in zip(padding, x.shape[2:], strict=True))
    return out, dxp[(slice(None), slice(None), *crop)], dW, db


def pool(x, kernel, stride, padding, kind, dout):
    """out, dx of max (first winner of a tie) or average (padded zeros counted) pooling, by loops."""
    N, C = x.shape[:2]
    dilation = (1,) * len(kernel)
    out_shape = [out_size(*a) for a in zip(x.shape[2:], kernel, stride, padding, dilation, strict=True)]
    xp = pad(x, padding, -np.inf if kind == "max" else 0.0)
    out, dxp = np.zeros((N, C, *out_shape)), np.zeros_like(xp)
    for n, c in itertools.product(range(N), range(C)):
        for pos in itertools.product(*map(range, out_shape)):
            w = window(xp, n, c, pos, kernel, stride, dilation)
            index = [np.arange(k) + o * s for k, s, o in zip(kernel, stride, pos, strict=True)]
            g = dout[(n, c, *pos)]
            if kind == "max":
                out[(n, c, *pos)] = w.max()
                local = np.zeros(w.size)
                local[int(np.argmax(w))] = g
                dxp[n, c][np.ix_(*index)] += local.reshape(w.shape)
            else:
                out[(n, c, *pos)] = w.mean()
                dxp[n, c][np.ix_(*index)] += g / w.size
    crop = tuple(slice(p, p + size) for p, size in zip(padding, x.shape[2:], strict=True))
    return out, dxp[(slice(None), slice(None), *crop)]
