"""One time step of each recurrent layer, forward and backward: the course's reference, written to be read.

Shapes are batch first, as the course writes them: x (N, D), states h and c (N, H); parameters in the ``x @ W``
layout of the layers (``Wx`` (D, kH), ``Wh`` (H, kH), the k gates side by side). Each forward returns the next
state(s) and a cache; each backward takes the gradient of the step's output state(s) and the cache and returns
the gradients of its inputs and parameters as a dict. The fused layers (``layers.recurrent.fused``) compute the
same numbers over a whole sequence at once; the tests hold them to these functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

Array = np.ndarray
Grads = dict[str, Array]


def rnn_step_forward(x: Array, h_prev: Array, Wx: Array, Wh: Array, b: Array) -> tuple[Array, Any]:
    """h = tanh(x Wx + h_prev Wh + b). Caches the inputs and h."""
    h = np.tanh(x @ Wx + h_prev @ Wh + b)
    return h, (x, h_prev, Wx, Wh, h)


def rnn_step_backward(dh: Array, cache: Any) -> Grads:
    """da = dh (1 - h^2), the tanh gate's local gradient; then the three products' gradients."""
    x, h_prev, Wx, Wh, h = cache
    da = dh * (1 - h * h)
    return {"x": da @ Wx.T, "h_prev": da @ Wh.T, "Wx": x.T @ da, "Wh": h_prev.T @ da, "b": da.sum(axis=0)}


def lstm_step_forward(x: Array, h_prev: Array, c_prev: Array, Wx: Array, Wh: Array, b: Array
                      ) -> tuple[Array, Array, Any]:
    """a = x Wx + h_prev Wh + b split into (i, f, o, g); i, f, o = sigmoid, g = tanh;
    c = f c_prev + i g; h = o tanh(c). Caches the inputs, the four gates and tanh(c)."""
    H = h_prev.shape[1]
    a = x @ Wx + h_prev @ Wh + b
    i, f, o, g = expit(a[:, :H]), expit(a[:, H:2 * H]), expit(a[:, 2 * H:3 * H]), np.tanh(a[:, 3 * H:])
    c = f * c_prev + i * g
    tanh_c = np.tanh(c)
    return o * tanh_c, c, (x, h_prev, c_prev, Wx, Wh, i, f, o, g, tanh_c)


def lstm_step_backward(dh: Array, dc: Array, cache: Any) -> Grads:
    """Back through h = o tanh(c) into c (adding the dc from the next step), through c = f c_prev + i g into
    each gate, through each gate's nonlinearity (sigmoid' = s (1 - s), tanh' = 1 - t^2) into a, then the
    products. The gates' gradients stand side by side in (i, f, o, g) order, as the weights' columns do."""
    x, h_prev, c_prev, Wx, Wh, i, f, o, g, tanh_c = cache
    do = dh * tanh_c
    dc = dc + dh * o * (1 - tanh_c * tanh_c)
    di, df, dg, dc_prev = dc * g, dc * c_prev, dc * i, dc * f
    da = np.concatenate([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g * g)], axis=1)
    return {"x": da @ Wx.T, "h_prev": da @ Wh.T, "c_prev": dc_prev, "Wx": x.T @ da, "Wh": h_prev.T @ da,
            "b": da.sum(axis=0)}


def gru_step_forward(x: Array, h_prev: Array, Wx: Array, Wh: Array, bx: Array, bh: Array) -> tuple[Array, Any]:
    """PyTorch's GRU, gates (r, z, n): ax = x Wx + bx and ah = h_prev Wh + bh, each split in three;
    r = sigmoid(ax_r + ah_r), z = sigmoid(ax_z + ah_z), n = tanh(ax_n + r ah_n), h = (1 - z) n + z h_prev.
    Caches the inputs, the gates and ah_n."""
    H = h_prev.shape[1]
    ax, ah = x @ Wx + bx, h_prev @ Wh + bh
    r, z = expit(ax[:, :H] + ah[:, :H]), expit(ax[:, H:2 * H] + ah[:, H:2 * H])
    ah_n = ah[:, 2 * H:]
    n = np.tanh(ax[:, 2 * H:] + r * ah_n)
    return (1 - z) * n + z * h_prev, (x, h_prev, Wx, Wh, r, z, n, ah_n)


def gru_step_backward(dh: Array, cache: Any) -> Grads:
    """Back through h = (1 - z) n + z h_prev into z, n and h_prev; through n = tanh(ax_n + r ah_n) into ax_n, r
    and ah_n; through the sigmoids into the summed pre-activations of r and z, which reach ax and ah alike;
    then the products. ah_n is the only part where the two projections differ."""
    x, h_prev, Wx, Wh, r, z, n, ah_n = cache
    dz, dn = dh * (h_prev - n), dh * (1 - z)
    dan = dn * (1 - n * n)
    dr = dan * ah_n
    dar, daz = dr * r * (1 - r), dz * z * (1 - z)
    dax = np.concatenate([dar, daz, dan], axis=1)
    dah = np.concatenate([dar, daz, dan * r], axis=1)
    return {"x": dax @ Wx.T, "h_prev": dah @ Wh.T + dh * z, "Wx": x.T @ dax, "Wh": h_prev.T @ dah,
            "bx": dax.sum(axis=0), "bh": dah.sum(axis=0)}
