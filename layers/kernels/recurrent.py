"""One recurrent step's elementwise part, compiled: the twins of the loops in ``LSTM`` and ``GRU``
(``layers.recurrent.gated``), each a single pass over a step's (features, N) arrays where numpy makes a pass per
operation. Transcendental functions stay with numpy, whose vectorized exp and tanh are 4-10x faster than the
compiled scalar ones; what is fused here is the arithmetic around them. A step is too small to share between
threads (a parallel launch costs as much as its work), so these run on one.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

Array = np.ndarray


@njit(cache=True)
def lstm_preactivations(a, recurrent):  # pragma: no cover (compiled)
    """a = a + recurrent, the step's input and recurrent parts (4H, N) summed, with the sigmoid gates' rows (i, f,
    o) halved: one np.tanh over the whole block then gives g and, through ``lstm_cell``, sigmoid(x) = (1 +
    tanh(x / 2)) / 2 for the others (numpy's vectorized tanh: a third of the time of its exp and reciprocal)."""
    H4, N = a.shape
    half = a.dtype.type(0.5)
    for k in range(H4):
        scale = half if k < 3 * H4 // 4 else a.dtype.type(1)
        for n in range(N):
            a[k, n] = (a[k, n] + recurrent[k, n]) * scale


@njit(cache=True)
def lstm_cell(gates, c_prev, c):  # pragma: no cover (compiled)
    """From one step's gates (4H, N) after ``lstm_preactivations`` and tanh: i, f, o = (1 + tanh) / 2 in place,
    then c = f * c_prev + i * g."""
    H, N = c.shape
    half = c.dtype.type(0.5)
    for k in range(H):
        for n in range(N):
            i = half + half * gates[k, n]
            f = half + half * gates[H + k, n]
            gates[k, n], gates[H + k, n] = i, f
            gates[2 * H + k, n] = half + half * gates[2 * H + k, n]
            c[k, n] = f * c_prev[k, n] + i * gates[3 * H + k, n]


@njit(cache=True)
def lstm_step_backward(dh, dc, gates, c_prev, tanh_c, da, step):  # pragma: no cover (compiled)
    """One step back through h = o tanh(c) and c = f c_prev + i g into the pre-activations of ``step``,
    da[:, step] of da (4H, T, N), from the state gradients dh and dc (H, N), the step's gates, c_prev and tanh(c);
    dc becomes the gradient of c_prev. (da whole and the step, not a view da[:, step]: a strided view is not
    vectorized, 5x slower.)"""
    H, N = dh.shape
    one = dh.dtype.type(1)
    for k in range(H):
        for n in range(N):
            i, f, o, g = gates[k, n], gates[H + k, n], gates[2 * H + k, n], gates[3 * H + k, n]
            tc, d = tanh_c[k, n], dh[k, n]
            cell = dc[k, n] + d * o * (one - tc * tc)
            da[k, step, n] = cell * g * i * (one - i)
            da[H + k, step, n] = cell * c_prev[k, n] * f * (one - f)
            da[2 * H + k, step, n] = d * tc * o * (one - o)
            da[3 * H + k, step, n] = cell * i * (one - g * g)
            dc[k, n] = cell * f


@njit(cache=True)
def gru_step_backward(dh, gates, h_prev, ah_n, da_x, da_h, step):  # pragma: no cover (compiled)
    """One step back through h = (1 - z) n + z h_prev and n = tanh(ax_n + r ah_n): the pre-activation gradients
    of ``step`` on the input side da_x[:, step] and the recurrent side da_h[:, step] (of (3H, T, N)), from dh
    (H, N), the step's gates (r, z, n), h_prev and ah_n = h_prev Wh_n + bh_n. dh becomes the direct part of
    h_prev's gradient, dh z."""
    H, N = dh.shape
    one = dh.dtype.type(1)
    for k in range(H):
        for n in range(N):
            r, z, new = gates[k, n], gates[H + k, n], gates[2 * H + k, n]
            d = dh[k, n]
            dn = d * (one - z) * (one - new * new)
            dr = dn * ah_n[k, n] * r * (one - r)
            dz = d * (h_prev[k, n] - new) * z * (one - z)
            da_x[k, step, n], da_x[H + k, step, n], da_x[2 * H + k, step, n] = dr, dz, dn
            da_h[k, step, n], da_h[H + k, step, n], da_h[2 * H + k, step, n] = dr, dz, dn * r
            dh[k, n] = d * z


@njit(parallel=True, cache=True)
def project(inputs, Wx, b, out):  # pragma: no cover (compiled)
    """out[t] = Wx^T x_t + b for every step at once, (T, kH, N), from the inputs feature by feature (D, T, N): the
    twin of ``Recurrent.projected`` for a few features, in one pass instead of D + 1."""
    D, T, N = inputs.shape
    K = Wx.shape[1]
    for t in prange(T):
        for k in range(K):
            for n in range(N):  # loops over n innermost, so that each is vectorized
                out[t, k, n] = inputs[0, t, n] * Wx[0, k]
            for d in range(1, D):
                for n in range(N):
                    out[t, k, n] += inputs[d, t, n] * Wx[d, k]
            for n in range(N):
                out[t, k, n] += b[k]
