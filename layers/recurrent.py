"""Recurrent layers on sequences (N, T, D), batch first: RNN, LSTM and GRU, and the sequence layers around them,
Embedding and TemporalAffine.

A recurrent layer is a step, ``h_t = step(x_t, h_{t-1})``, run over time from a zero state. Forward projects
every step's input at once (one matrix product ``x Wx`` for all N * T rows), then loops over time for the part
that needs the previous state; backward (backpropagation through time) loops back over time once, collecting the
pre-activation gradients of every step, and forms the input projections' gradients with one product each. The
loop over time is the only Python loop. Parameters use the course's ``x @ W`` layout, like ``Affine``: ``Wx`` (D,
kH), ``Wh`` (H, kH), the k gates side by side.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Array, Layer, as_float_array, check_dout
from .init import float_dtype, make_rng


class Recurrent(Layer, register=False):
    """What RNN, LSTM and GRU share: sizes, parameters, input checks and the choice of outputs.

    x : (N, T, D) floating, T >= 1; out : (N, T, H) every hidden state with ``return_sequences``, else (N, H),
    the last one. Weights are drawn from N(0, 1/fan_in) (fan_in D for ``Wx``, H for ``Wh``), biases are 0.
    """

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, return_sequences: bool = False, *,
                 rng: np.random.Generator | int | None = None, dtype: Any = np.float32) -> None:
        super().__init__()
        name = type(self).__name__
        if not (isinstance(input_size, int) and input_size >= 1 and isinstance(hidden_size, int) and hidden_size >= 1):
            raise ValueError(f"{name}: input_size and hidden_size must be integers >= 1, got {input_size!r}, "
                             f"{hidden_size!r}")
        self.input_size, self.hidden_size, self.return_sequences = input_size, hidden_size, bool(return_sequences)
        dt, g = float_dtype(dtype, name), make_rng(rng)
        k = self.gates * hidden_size
        self.params = {"Wx": (g.standard_normal((input_size, k)) / np.sqrt(input_size)).astype(dt),
                       "Wh": (g.standard_normal((hidden_size, k)) / np.sqrt(hidden_size)).astype(dt)}
        self.params.update({name: np.zeros(k, dt) for name in self.bias_names()})
        self.grads = {key: np.zeros_like(value) for key, value in self.params.items()}
        self.cache: Any = None

    def bias_names(self) -> tuple[str, ...]:
        return ("b",)

    def __repr__(self) -> str:
        extra = ", return_sequences=True" if self.return_sequences else ""
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}{extra})"

    def check_input(self, x: Any) -> Array:
        x = as_float_array(self, x)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"{self!r}: expected x of shape (N, T, {self.input_size}) (batch, time, features), "
                             f"got {x.shape}")
        if x.shape[1] == 0:
            raise ValueError(f"{self!r}: the sequences have length 0; a recurrent layer needs at least one step")
        if x.dtype != self.params["Wx"].dtype:
            raise TypeError(f"{self!r}: x has dtype {x.dtype} but the parameters are {self.params['Wx'].dtype}; "
                            f"build the layer with dtype={x.dtype} or call .astype(np.{x.dtype})")
        return x

    def projected(self, x: Array) -> Array:
        """Every step's input projection at once: x Wx + b, shape (N, T, kH). For a few features (MNIST-1D's one)
        a sum of broadcast products: a matrix product with an inner size of 1 took 4x as long. The bias is added
        in place (one (N, T, kH) array, not two: 1.26 against 1.44 ms at MNIST-1D's GRU)."""
        N, T, D = x.shape
        Wx, b = self.params["Wx"], self.params[self.bias_names()[0]]
        if D <= 4:
            out = x[:, :, 0, None] * Wx[0]
            for d in range(1, D):
                out += x[:, :, d, None] * Wx[d]
        else:
            out = (x.reshape(N * T, D) @ Wx).reshape(N, T, -1)
        out += b
        return out

    def output(self, hs: Array) -> Array:
        return hs if self.return_sequences else hs[:, -1]

    def incoming(self, dout: Array, shape: tuple[int, int, int]) -> tuple[Array | None, Array]:
        """The gradient arriving at the hidden states from above: every step's (N, T, H) with
        ``return_sequences`` (None otherwise), and the last step's (N, H), where backpropagation starts."""
        N, T, H = shape
        check_dout(self, dout, (N, T, H) if self.return_sequences else (N, H))
        return (dout, dout[:, -1].copy()) if self.return_sequences else (None, dout.copy())

    def input_gradients(self, x: Array, h_prev: Array, da_x: Array, da_h: Array) -> Array:
        """From the pre-activation gradients of every step, on the input side (N, T, kH) and the recurrent side:
        fill dWx, dWh and the biases' gradients with one product each; return dx."""
        N, T, D = x.shape
        rows_x, rows_h = da_x.reshape(N * T, -1), da_h.reshape(N * T, -1)
        self.grads["Wx"] = x.reshape(N * T, D).T @ rows_x
        self.grads["Wh"] = h_prev.reshape(N * T, -1).T @ rows_h
        names = self.bias_names()
        self.grads[names[0]] = rows_x.sum(axis=0)
        if len(names) > 1:
            self.grads[names[1]] = rows_h.sum(axis=0)
        return (rows_x @ self.params["Wx"].T).reshape(N, T, D)

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        layer = cls(3, 4, return_sequences=bool(rng.integers(2)), rng=rng, dtype=np.float64)
        for name in layer.bias_names():
            layer.params[name][:] = 0.5 * rng.standard_normal(layer.params[name].shape)
        return layer, (rng.standard_normal((batch, 5, 3)),)


class RNN(Recurrent, leaf=True):
    """The vanilla recurrent layer: h_t = f(x_t Wx + h_{t-1} Wh + b), f = tanh or relu, h_0 = 0.

    Parameters ``Wx`` (D, H), ``Wh`` (H, H), ``b`` (H,). Local gradient: da_t = dh_t * f'(a_t) (1 - h_t**2 for
    tanh), and dh_{t-1} gets da_t Wh^T. Caches x, every state and the states before them.
    """

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh", return_sequences: bool = False,
                 *, rng: np.random.Generator | int | None = None, dtype: Any = np.float32) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, return_sequences, rng=rng, dtype=dtype)

    def __repr__(self) -> str:
        extra = ", nonlinearity='relu'" if self.nonlinearity == "relu" else ""
        return super().__repr__()[:-1] + extra + ")"

    def forward(self, x: Array) -> Array:
        x = self.check_input(x)
        xa, Wh = self.projected(x), self.params["Wh"]
        N, T, H = xa.shape
        hs, h = np.empty_like(xa), np.zeros((N, H), dtype=x.dtype)
        f = np.tanh if self.nonlinearity == "tanh" else relu
        for t in range(T):
            h = f(xa[:, t] + h @ Wh, out=hs[:, t])
        self.cache = (x, hs)
        return self.output(hs)

    def backward(self, dout: Array) -> Array:
        x, hs = self.cached(self.cache)
        dhs, dh = self.incoming(dout, hs.shape)
        Wh_T = self.params["Wh"].T
        local = 1 - hs * hs if self.nonlinearity == "tanh" else (hs > 0).astype(hs.dtype)  # f'(a), all steps
        das = np.empty_like(hs)
        for t in reversed(range(hs.shape[1])):
            if dhs is not None and t < hs.shape[1] - 1:
                dh += dhs[:, t]
            da = np.multiply(dh, local[:, t], out=das[:, t])
            dh = da @ Wh_T
        return self.input_gradients(x, previous_states(hs), das, das)

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        layer, inputs = super().example(rng, batch)
        assert isinstance(layer, RNN)
        if rng.integers(2):  # relu, with its kink at 0 away from every pre-activation (all positive)
            layer = cls(3, 4, "relu", layer.return_sequences, rng=rng, dtype=np.float64)
            layer.params["Wx"][:] = np.abs(layer.params["Wx"])
            layer.params["Wh"][:] = np.abs(layer.params["Wh"]) * 0.5
            layer.params["b"][:] = 0.5
            inputs = (np.abs(inputs[0]) + 0.1,)
        return layer, inputs


def relu(a: Array, out: Array) -> Array:
    return np.maximum(a, 0, out=out)


def previous_states(hs: Array) -> Array:
    """The state before each step: h_0 = 0, then h_1 ... h_{T-1}; shape (N, T, H)."""
    prev = np.zeros_like(hs)
    prev[:, 1:] = hs[:, :-1]
    return prev


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
        xa, Wh = self.projected(x), self.params["Wh"]
        N, T, H4 = xa.shape
        H = H4 // 4
        gates, cs, hs = np.empty_like(xa), np.empty((N, T, H), x.dtype), np.empty((N, T, H), x.dtype)
        h, c = np.zeros((N, H), x.dtype), np.zeros((N, H), x.dtype)
        with np.errstate(over="ignore", under="ignore"):  # exp(-a) = inf: the gate is 0, as it should be
            for t in range(T):
                a = xa[:, t] + h @ Wh
                ifo = np.reciprocal(1 + np.exp(-a[:, :3 * H]), out=gates[:, t, :3 * H])
                g = np.tanh(a[:, 3 * H:], out=gates[:, t, 3 * H:])
                c = np.add(ifo[:, H:2 * H] * c, ifo[:, :H] * g, out=cs[:, t])
                h = np.multiply(ifo[:, 2 * H:], np.tanh(c), out=hs[:, t])
        self.cache = (x, gates, cs, hs)
        return self.output(hs)

    def backward(self, dout: Array) -> Array:
        x, gates, cs, hs = self.cached(self.cache)
        dhs, dh = self.incoming(dout, hs.shape)
        H, T, Wh_T = hs.shape[2], hs.shape[1], self.params["Wh"].T
        i, f, o, g = (gates[:, :, k * H:(k + 1) * H] for k in range(4))
        tanh_c = np.tanh(cs)
        # what does not depend on the gradient flowing back, for every step at once: the loop keeps only products
        to_cell = o * (1 - tanh_c * tanh_c)                    # dc += dh * to_cell
        local = np.empty_like(gates)
        local[:, :, :H] = g * i * (1 - i)                        # da_i = dc * local_i
        local[:, :, H:2 * H] = previous_states(cs) * f * (1 - f)  # da_f = dc * local_f
        local[:, :, 2 * H:3 * H] = tanh_c * o * (1 - o)          # da_o = dh * local_o
        local[:, :, 3 * H:] = i * (1 - g * g)                    # da_g = dc * local_g
        das = np.empty_like(gates)
        dc = np.zeros_like(dh)
        for t in reversed(range(T)):
            if dhs is not None and t < T - 1:
                dh += dhs[:, t]
            dc += dh * to_cell[:, t]
            da, lt = das[:, t], local[:, t]
            np.multiply(dc, lt[:, :H], out=da[:, :H])
            np.multiply(dc, lt[:, H:2 * H], out=da[:, H:2 * H])
            np.multiply(dh, lt[:, 2 * H:3 * H], out=da[:, 2 * H:3 * H])
            np.multiply(dc, lt[:, 3 * H:], out=da[:, 3 * H:])
            dc *= f[:, t]
            dh = da @ Wh_T
        return self.input_gradients(x, previous_states(hs), das, das)


class GRU(Recurrent, leaf=True):
    """Gated recurrent unit, PyTorch's equations and gate order (reset, update, new):
    r = sigmoid(x Wx_r + bx_r + h Wh_r + bh_r), z = sigmoid(x Wx_z + bx_z + h Wh_z + bh_z),
    n = tanh(x Wx_n + bx_n + r * (h Wh_n + bh_n)), h' = (1 - z) * n + z * h; h_0 = 0.

    Parameters ``Wx`` (D, 3H), ``Wh`` (H, 3H), ``bx`` (3H,), ``bh`` (3H,): PyTorch's ``weight_ih_l0.T``,
    ``weight_hh_l0.T``, ``bias_ih_l0``, ``bias_hh_l0``. Caches x, the gates, h Wh_n + bh_n and the states.
    """

    gates = 3

    def bias_names(self) -> tuple[str, ...]:
        return ("bx", "bh")

    def forward(self, x: Array) -> Array:
        x = self.check_input(x)
        xa, Wh, bh = self.projected(x), self.params["Wh"], self.params["bh"]
        N, T, H3 = xa.shape
        H = H3 // 3
        gates, hn_all, hs = np.empty_like(xa), np.empty((N, T, H), x.dtype), np.empty((N, T, H), x.dtype)
        h = np.zeros((N, H), x.dtype)
        with np.errstate(over="ignore", under="ignore"):  # exp(-a) = inf: the gate is 0, as it should be
            for t in range(T):
                ha = h @ Wh
                ha += bh
                rz = np.reciprocal(1 + np.exp(-(xa[:, t, :2 * H] + ha[:, :2 * H])), out=gates[:, t, :2 * H])
                hn = hn_all[:, t]
                hn[...] = ha[:, 2 * H:]
                n = np.tanh(xa[:, t, 2 * H:] + rz[:, :H] * hn, out=gates[:, t, 2 * H:])
                h = np.add(n, rz[:, H:] * (h - n), out=hs[:, t])
        self.cache = (x, gates, hn_all, hs)
        return self.output(hs)

    def backward(self, dout: Array) -> Array:
        x, gates, hn_all, hs = self.cached(self.cache)
        dhs, dh = self.incoming(dout, hs.shape)
        H, T, Wh_T = hs.shape[2], hs.shape[1], self.params["Wh"].T
        h_prev = previous_states(hs)
        r, z, n = gates[:, :, :H], gates[:, :, H:2 * H], gates[:, :, 2 * H:]
        # what does not depend on the gradient flowing back, for every step at once: the loop keeps only products
        to_n = (1 - z) * (1 - n * n)          # da_n = dh * to_n
        to_z = (h_prev - n) * z * (1 - z)      # da_z = dh * to_z
        to_r = hn_all * r * (1 - r)            # da_r = da_n * to_r
        da_x, da_h = np.empty_like(gates), np.empty_like(gates)
        for t in reversed(range(T)):
            if dhs is not None and t < T - 1:
                dh += dhs[:, t]
            ax, ah = da_x[:, t], da_h[:, t]
            dn = np.multiply(dh, to_n[:, t], out=ax[:, 2 * H:])
            np.multiply(dh, to_z[:, t], out=ax[:, H:2 * H])
            np.multiply(dn, to_r[:, t], out=ax[:, :H])
            ah[:, :2 * H] = ax[:, :2 * H]
            np.multiply(dn, r[:, t], out=ah[:, 2 * H:])
            dh = dh * z[:, t]
            dh += ah @ Wh_T
        return self.input_gradients(x, h_prev, da_x, da_h)


class Embedding(Layer, leaf=True):
    """out[n, t] = W[idx[n, t]]: integer indices (N, T) (any shape) in, vectors (N, T, E) out.

    Parameter ``W`` (V, E), drawn from N(0, 1). dW adds dout[n, t] into row idx[n, t], so a repeated index
    accumulates (``np.add.at``); indices have no gradient (backward returns None). Caches the indices.
    """

    integer_input = True  # the Solver leaves integer data as it is for a model holding one

    def __init__(self, num_embeddings: int, embedding_dim: int, *, rng: np.random.Generator | int | None = None,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        if not (isinstance(num_embeddings, int) and num_embeddings >= 1 and isinstance(embedding_dim, int)
                and embedding_dim >= 1):
            raise ValueError(f"Embedding: num_embeddings and embedding_dim must be integers >= 1, got "
                             f"{num_embeddings!r}, {embedding_dim!r}")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        dt = float_dtype(dtype, "Embedding")
        self.params = {"W": make_rng(rng).standard_normal((num_embeddings, embedding_dim)).astype(dt)}
        self.grads = {"W": np.zeros_like(self.params["W"])}
        self.idx: Any = None

    def __repr__(self) -> str:
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"

    def forward(self, idx: Any) -> Array:
        idx = np.asarray(idx)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"{self!r}: expected integer indices, got {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_embeddings):
            bad = idx[(idx < 0) | (idx >= self.num_embeddings)].ravel()[0]
            raise ValueError(f"{self!r}: index {bad} is out of range: expected 0..{self.num_embeddings - 1}")
        self.idx = idx
        return self.params["W"][idx]

    def backward(self, dout: Array) -> None:
        idx = self.cached(self.idx)
        check_dout(self, dout, (*idx.shape, self.embedding_dim))
        dW = np.zeros_like(self.params["W"])
        np.add.at(dW, idx.ravel(), dout.reshape(-1, self.embedding_dim))
        self.grads["W"] = dW
        return None

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Any, ...]]:
        layer = cls(5, 3, rng=rng, dtype=np.float64)
        return layer, (rng.integers(0, 5, (batch, 6)),)  # six indices from five rows: repeats


class TemporalAffine(Layer, leaf=True):
    """out[:, t] = x[:, t] W + b at every time step: x (N, T, D) in, (N, T, M) out, the course's temporal
    affine. Parameters ``W`` (D, M) drawn from N(0, 1/D) and ``b`` (M,), as ``Affine``'s. Caches x."""

    features_last_axis = True  # in_features is x's last axis (a config fills it in so), not all but the first

    def __init__(self, in_features: int, out_features: int, *, rng: np.random.Generator | int | None = None,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        if not (isinstance(in_features, int) and in_features >= 1 and isinstance(out_features, int)
                and out_features >= 1):
            raise ValueError(f"TemporalAffine: in_features and out_features must be integers >= 1, got "
                             f"{in_features!r}, {out_features!r}")
        self.in_features, self.out_features = in_features, out_features
        dt = float_dtype(dtype, "TemporalAffine")
        W = (make_rng(rng).standard_normal((in_features, out_features)) / np.sqrt(in_features)).astype(dt)
        self.params = {"W": W, "b": np.zeros(out_features, dt)}
        self.grads = {"W": np.zeros_like(W), "b": np.zeros(out_features, dt)}
        self.x: Any = None

    def __repr__(self) -> str:
        return f"TemporalAffine({self.in_features}, {self.out_features})"

    def forward(self, x: Array) -> Array:
        x = as_float_array(self, x)
        if x.ndim != 3 or x.shape[2] != self.in_features:
            raise ValueError(f"{self!r}: expected x of shape (N, T, {self.in_features}), got {x.shape}")
        if x.dtype != self.params["W"].dtype:
            raise TypeError(f"{self!r}: x has dtype {x.dtype} but the parameters are {self.params['W'].dtype}")
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout: Array) -> Array:
        x = self.cached(self.x)
        N, T, D = x.shape
        check_dout(self, dout, (N, T, self.out_features))
        rows = dout.reshape(N * T, -1)
        self.grads["W"] = x.reshape(N * T, D).T @ rows
        self.grads["b"] = rows.sum(axis=0)
        return dout @ self.params["W"].T

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        layer = cls(4, 3, rng=rng, dtype=np.float64)
        layer.params["b"][:] = rng.standard_normal(3)
        return layer, (rng.standard_normal((batch, 5, 4)),)
