"""The gated recurrent layers, LSTM and GRU, fused over time as ``Recurrent`` (``layers.recurrent.fused``) lays
out: one product for every step's input projection, a loop over time for the rest. Each is its step functions
in ``layers.recurrent.steps`` computed for a whole sequence; with numba installed each step's elementwise part
runs as one compiled pass (``layers.kernels.recurrent``), the numpy loop beside it the reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..base import Array
from ..kernels import compiled
from .fused import Recurrent, sigmoid_, sigmoid_slope, tanh_slope


class LSTM(Recurrent, leaf=True):
    """Long short-term memory, the course's equations and gate order: a_t = x_t Wx + h_{t-1} Wh + b split into
    (i, f, o, g); i, f, o = sigmoid, g = tanh; c_t = f * c_{t-1} + i * g; h_t = o * tanh(c_t); h_0 = c_0 = 0.

    Parameters ``Wx`` (D, 4H), ``Wh`` (H, 4H), ``b`` (4H,). The forget gate's bias starts at 1, not 0: the cell
    then keeps about 73% of itself each step at the start, so gradients reach early steps of long sequences
    (Jozefowicz et al., 2015). Caches x, the gates, the cells and the states.
    """

    gates = 4

    def __init__(self, input_size: int, hidden_size: int, return_sequences: bool = False, *,
                 rng: np.random.Generator | int | None = None, dtype: Any = np.float32) -> None:
        super().__init__(input_size, hidden_size, return_sequences, rng=rng, dtype=dtype)
        self.params["b"][hidden_size:2 * hidden_size] = 1.0

    def forward(self, x: Array) -> Array:
        x = self.check_input(x)
        (inputs, gates), Wh_T = self.projected(x), self.params["Wh"].T  # gates: pre-activations, then gates
        T, H4, N = gates.shape
        H = H4 // 4
        cs, hs = self.states("cs", T, H, N, x.dtype), self.states("hs", T, H, N, x.dtype)
        tanh_cs = self.scratch("tanh c", (T, H, N), x.dtype)
        recurrent, ig = np.empty((H4, N), x.dtype), np.empty((H, N), x.dtype)
        kernels = compiled("recurrent", gates.size)
        with np.errstate(over="ignore", under="ignore"):
            for t in range(T):
                a = gates[t]
                if kernels:  # the same gates, three numpy calls fewer and one tanh for the four
                    kernels.lstm_preactivations(a, np.matmul(Wh_T, hs[t], out=recurrent))
                    kernels.lstm_cell(np.tanh(a, out=a), cs[t], cs[t + 1])
                else:
                    a += np.matmul(Wh_T, hs[t], out=recurrent)
                    i, f, o = sigmoid_(a[:3 * H]).reshape(3, H, N)
                    g = np.tanh(a[3 * H:], out=a[3 * H:])
                    c = np.multiply(f, cs[t], out=cs[t + 1])
                    c += np.multiply(i, g, out=ig)
                np.multiply(a[2 * H:3 * H], np.tanh(cs[t + 1], out=tanh_cs[t]), out=hs[t + 1])
        self.cache = (inputs, gates, cs, hs, tanh_cs)
        return self.output(hs)

    def backward(self, dout: Array) -> Array:
        inputs, gates, cs, hs, tanh_c = self.cached(self.cache)
        T, H4, N = gates.shape
        H, Wh = H4 // 4, self.params["Wh"]
        dhs, dh = self.incoming(dout, (T, H, N))
        kernels = compiled("recurrent", gates.size)
        if kernels:
            return self.backward_compiled(kernels, inputs, gates, cs, hs, tanh_c, dhs, dh)
        i, f, o, g = (gates[:, k * H:(k + 1) * H] for k in range(4))
        # what does not depend on the gradient flowing back, for every step at once, written in place (no
        # temporaries: new pages cost more than the arithmetic); the loop keeps only products
        to_cell = tanh_slope(tanh_c, out=self.scratch("to cell", hs[1:].shape, hs.dtype))
        to_cell *= o                                         # dc += dh * to_cell
        local = self.scratch("local", gates.shape, gates.dtype)
        local_i, local_f, local_o, local_g = (local[:, k * H:(k + 1) * H] for k in range(4))
        sigmoid_slope(i, out=local_i)
        local_i *= g                                         # da_i = dc * local_i
        sigmoid_slope(f, out=local_f)
        local_f *= cs[:-1]                                   # da_f = dc * local_f
        sigmoid_slope(o, out=local_o)
        local_o *= tanh_c                                    # da_o = dh * local_o
        tanh_slope(g, out=local_g)
        local_g *= i                                         # da_g = dc * local_g
        dc, through = np.zeros_like(dh), np.empty_like(dh)
        for t in reversed(range(T)):
            if dhs is not None and t < T - 1:
                dh += dhs[t]
            dc += np.multiply(dh, to_cell[t], out=through)
            da = local[t]  # the local gradients become da_t in place
            for k, d in enumerate((dc, dc, dh, dc)):  # i, f, o, g
                gate = da[k * H:(k + 1) * H]
                gate *= d
            dc *= f[t]
            dh = np.matmul(Wh, da, out=dh)
        return self.input_gradients(inputs, hs[:-1], local, local)

    def backward_compiled(self, kernels: Any, inputs: Array, gates: Array, cs: Array, hs: Array, tanh_c: Array,
                          dhs: Array | None, dh: Array) -> Array:
        """``backward`` with each step's elementwise part in one compiled pass (``kernels.lstm_step_backward``)."""
        T, H4, N = gates.shape
        rows = self.scratch("da by feature", (H4, T, N), gates.dtype)  # written feature by feature: no copy after
        dc, Wh = np.zeros_like(dh), self.params["Wh"]
        for t in reversed(range(T)):
            if dhs is not None and t < T - 1:
                dh += dhs[t]
            kernels.lstm_step_backward(dh, dc, gates[t], cs[t], tanh_c[t], rows, t)
            dh = np.matmul(Wh, rows[:, t], out=dh)
        rows_2d = rows.reshape(H4, T * N)
        return self.gradients_from_rows(inputs, hs[:-1], rows_2d, rows_2d)


class GRU(Recurrent, leaf=True):
    """Gated recurrent unit, PyTorch's equations and gate order (reset, update, new):
    r = sigmoid(x Wx_r + bx_r + h Wh_r + bh_r), z = sigmoid(x Wx_z + bx_z + h Wh_z + bh_z),
    n = tanh(x Wx_n + bx_n + r * (h Wh_n + bh_n)), h' = (1 - z) * n + z * h; h_0 = 0.

    Parameters ``Wx`` (D, 3H), ``Wh`` (H, 3H), ``bx`` (3H,), ``bh`` (3H,): PyTorch's ``weight_ih_l0.T``,
    ``weight_hh_l0.T``, ``bias_ih_l0``, ``bias_hh_l0``. Caches x, the gates, h Wh + bh and the states.
    """

    gates = 3

    def bias_names(self) -> tuple[str, ...]:
        return ("bx", "bh")

    def forward(self, x: Array) -> Array:
        x = self.check_input(x)
        (inputs, gates), Wh_T, bh = self.projected(x), self.params["Wh"].T, self.params["bh"][:, None]
        T, H3, N = gates.shape
        H = H3 // 3
        has, hs = self.scratch("has", gates.shape, x.dtype), self.states("hs", T, H, N, x.dtype)
        with np.errstate(over="ignore", under="ignore"):
            for t in range(T):
                ha = np.matmul(Wh_T, hs[t], out=has[t])  # h Wh + bh
                ha += bh
                a = gates[t]                               # x Wx + bx, turned into r, z and n in place
                rz = sigmoid_(np.add(a[:2 * H], ha[:2 * H], out=a[:2 * H]))
                r, z, n, h = rz[:H], rz[H:], a[2 * H:], hs[t + 1]
                n += np.multiply(r, ha[2 * H:], out=h)     # h's memory holds r * (h Wh_n + bh_n) until h is due
                np.tanh(n, out=n)
                np.subtract(hs[t], n, out=h)
                h *= z
                h += n
        self.cache = (inputs, gates, has, hs)
        return self.output(hs)

    def backward(self, dout: Array) -> Array:
        inputs, gates, has, hs = self.cached(self.cache)
        T, H3, N = gates.shape
        H, Wh = H3 // 3, self.params["Wh"]
        dhs, dh = self.incoming(dout, (T, H, N))
        h_prev = hs[:-1]
        kernels = compiled("recurrent", gates.size)
        if kernels:
            return self.backward_compiled(kernels, inputs, gates, has, hs, dhs, dh)
        r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
        # what does not depend on the gradient flowing back, for every step at once, written in place; the loop
        # keeps only products
        one_minus_z = np.subtract(1, z, out=self.scratch("1 - z", h_prev.shape, hs.dtype))
        to_n = tanh_slope(n, out=self.scratch("to n", h_prev.shape, hs.dtype))
        to_n *= one_minus_z                        # da_n = dh * to_n
        to_z = np.subtract(h_prev, n, out=self.scratch("to z", h_prev.shape, hs.dtype))
        to_z *= z
        to_z *= one_minus_z                        # da_z = dh * to_z
        to_r = sigmoid_slope(r, out=self.scratch("to r", h_prev.shape, hs.dtype))
        to_r *= has[:, 2 * H:]                     # da_r = da_n * to_r
        da_x, da_h = self.scratch("da_x", gates.shape, hs.dtype), self.scratch("da_h", gates.shape, hs.dtype)
        recurrent = np.empty_like(dh)
        for t in reversed(range(T)):
            if dhs is not None and t < T - 1:
                dh += dhs[t]
            ax, ah = da_x[t], da_h[t]
            dn = np.multiply(dh, to_n[t], out=ax[2 * H:])
            np.multiply(dh, to_z[t], out=ax[H:2 * H])
            np.multiply(dn, to_r[t], out=ax[:H])
            ah[:2 * H] = ax[:2 * H]
            np.multiply(dn, r[t], out=ah[2 * H:])
            dh *= z[t]
            dh += np.matmul(Wh, ah, out=recurrent)
        return self.input_gradients(inputs, h_prev, da_x, da_h)

    def backward_compiled(self, kernels: Any, inputs: Array, gates: Array, has: Array, hs: Array,
                          dhs: Array | None, dh: Array) -> Array:
        """``backward`` with each step's elementwise part in one compiled pass (``kernels.gru_step_backward``)."""
        T, H3, N = gates.shape
        Wh, ah_n = self.params["Wh"], has[:, 2 * (H3 // 3):]
        rows_x = self.scratch("da_x by feature", (H3, T, N), hs.dtype)  # feature by feature: no copy after
        rows_h = self.scratch("da_h by feature", (H3, T, N), hs.dtype)
        recurrent = np.empty_like(dh)
        for t in reversed(range(T)):
            if dhs is not None and t < T - 1:
                dh += dhs[t]
            kernels.gru_step_backward(dh, gates[t], hs[t], ah_n[t], rows_x, rows_h, t)
            dh += np.matmul(Wh, rows_h[:, t], out=recurrent)
        return self.gradients_from_rows(inputs, hs[:-1], rows_x.reshape(H3, -1), rows_h.reshape(H3, -1))
