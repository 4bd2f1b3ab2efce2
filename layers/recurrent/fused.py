"""Recurrent layers on sequences (N, T, D), batch first: RNN, LSTM and GRU, fused over time. Each computes, over a
whole sequence, what its step function in ``layers.recurrent.steps`` (the course's ``rnn_step_forward``,
``lstm_step_backward``, ...) computes one step at a time; read those for the equations and the backward pass
gate by gate, and this module for how the sequence is computed fast.

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

from ..base import Array, Layer, as_float_array, check_dout, check_flags, check_sizes
from ..init import float_dtype, make_rng
from ..kernels import compiled


class Recurrent(Layer, register=False):
    """What RNN, LSTM and GRU share: sizes, parameters, input checks and the choice of outputs.

    x : (N, T, D) floating, T >= 1; out : (N, T, H) every hidden state with ``return_sequences``, else (N, H),
    the last one. Weights are drawn from N(0, 1/fan_in) (fan_in D for ``Wx``, H for ``Wh``), biases are 0.

    Inside, every step's arrays are feature-major, (kH, N) for the pre-activations and (H, N) for a state, and
    the steps are stacked time-major, (T, kH, N): a gate is then a contiguous block of rows, so each
    elementwise operation of the loop makes one pass over contiguous memory, where column slices of (N, kH)
    rows took a pass per row. The states are kept with h_0 = 0 in front, (T + 1, H, N), so the states before
    each step are a view, not a copy.

    Memory: the layer keeps its large arrays between calls (``workspace``) and uses them again while the batch
    keeps its shape, so a training step makes no new pages (benchmarks/rnn_bench.py measures the steps). It holds
    about 5 (RNN), 17 (LSTM) or 24 (GRU) values per hidden unit, time step and example, forward's cache
    included, and a copy of the input.
    """

    variants = 2  # the examples: every state, or the last

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, return_sequences: bool = False, *,
                 rng: np.random.Generator | int | None = None, dtype: Any = np.float32) -> None:
        super().__init__()
        name = type(self).__name__
        check_sizes(self, input_size=input_size, hidden_size=hidden_size)
        check_flags(self, return_sequences=return_sequences)
        self.input_size, self.hidden_size, self.return_sequences = input_size, hidden_size, bool(return_sequences)
        dt, g = float_dtype(dtype, name), make_rng(rng)
        k = self.gates * hidden_size
        self.params = {"Wx": (g.standard_normal((input_size, k)) / np.sqrt(input_size)).astype(dt),
                       "Wh": (g.standard_normal((hidden_size, k)) / np.sqrt(hidden_size)).astype(dt)}
        self.params.update({name: np.zeros(k, dt) for name in self.bias_names()})
        self.grads = {key: np.zeros_like(value) for key, value in self.params.items()}
        self.cache: Any = None
        self.workspace: dict[str, Array] = {}

    def scratch(self, name: str, shape: tuple[int, ...], dtype: Any) -> Array:
        """An uninitialized array the layer keeps, handed out again at the next call of the same shape and
        dtype (a new one otherwise). Nothing it returns to the caller lives here: outputs are copies."""
        kept = self.workspace.get(name)
        if kept is None or kept.shape != shape or kept.dtype != dtype:
            kept = self.workspace[name] = np.empty(shape, dtype=dtype)
        return kept

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

    def projected(self, x: Array) -> tuple[Array, Array]:
        """The inputs feature by feature, (D, T * N), kept for the weights' gradient, and every step's input
        projection at once, time-major and feature-major: (x Wx + b) as (T, kH, N). For a few features
        (MNIST-1D's one) a sum of broadcast products: a matrix product with an inner size of 1 took 4x as long."""
        N, T, D = x.shape
        Wx, b = self.params["Wx"], self.params[self.bias_names()[0]]
        inputs = self.by_feature("x", x.transpose(1, 2, 0))
        steps = inputs.reshape(D, T, 1, N)
        out = self.scratch("projected", (T, Wx.shape[1], N), x.dtype)
        kernels = compiled("recurrent", out.size)
        if kernels and D <= 4:
            kernels.project(inputs.reshape(D, T, N), Wx, b, out)
            return inputs, out
        if D <= 4:
            np.multiply(steps[0], Wx[0, :, None], out=out)
            for d in range(1, D):
                out += steps[d] * Wx[d, :, None]
        else:
            np.matmul(Wx.T, steps[:, :, 0].transpose(1, 0, 2), out=out)
        out += b[:, None]
        return inputs, out

    def states(self, name: str, T: int, H: int, N: int, dtype: Any) -> Array:
        """(T + 1, H, N) for the states, the first (h_0 or c_0) zero."""
        out = self.scratch(name, (T + 1, H, N), dtype)
        out[0] = 0
        return out

    def output(self, hs: Array) -> Array:
        """The layer's output from the states (T + 1, H, N): every one but h_0 as (N, T, H), or the last (N, H)."""
        if self.return_sequences:
            return hs[1:].transpose(2, 0, 1).copy()  # a copy: the states' memory is used again next call
        return hs[-1].T.copy()

    def incoming(self, dout: Array, shape: tuple[int, int, int]) -> tuple[Array | None, Array]:
        """The gradient arriving at the hidden states from above, feature-major: every step's (T, H, N) with
        ``return_sequences`` (None otherwise), and the last step's (H, N), where backpropagation starts."""
        T, H, N = shape
        check_dout(self, dout, (N, T, H) if self.return_sequences else (N, H))
        if self.return_sequences:
            every = np.ascontiguousarray(dout.transpose(1, 2, 0))
            return every, every[-1].copy()
        return None, dout.T.copy()  # a copy in C order: backward updates it in place

    def input_gradients(self, inputs: Array, h_prev: Array, da_x: Array, da_h: Array) -> Array:
        """From the pre-activation gradients of every step (T, kH, N), on the input side and the recurrent side:
        fill dWx, dWh and the biases' gradients with one product each over all N * T columns (``inputs`` as
        ``projected`` gave them, (D, T * N)); return dx (N, T, D). The columns are gathered feature by feature
        first (a copy): per-step products have an inner size of N, which made a GRU with N = 32 and H = 256 half
        again as slow."""
        rows_x = self.by_feature("da_x", da_x)
        rows_h = rows_x if da_h is da_x else self.by_feature("da_h", da_h)
        return self.gradients_from_rows(inputs, h_prev, rows_x, rows_h)

    def gradients_from_rows(self, inputs: Array, h_prev: Array, rows_x: Array, rows_h: Array) -> Array:
        """``input_gradients`` from the pre-activation gradients already feature by feature, (kH, T * N). Where both
        sides share them (RNN, LSTM), every parameter's gradient is one product: [h_prev; x; 1] rows_x^T."""
        T, H, N = h_prev.shape
        D, names = inputs.shape[0], self.bias_names()
        if rows_x is rows_h:
            stacked = self.scratch("h_prev, x, 1 by feature", (H + D + 1, T, N), h_prev.dtype)
            np.copyto(stacked[:H], h_prev.transpose(1, 0, 2))
            stacked[H:H + D] = inputs.reshape(D, T, N)
            stacked[-1] = 1
            product = stacked.reshape(H + D + 1, T * N) @ rows_x.T
            self.grads["Wh"], self.grads["Wx"], self.grads[names[0]] = product[:H], product[H:H + D], product[-1]
        else:
            self.grads["Wx"] = inputs @ rows_x.T
            self.grads["Wh"] = self.by_feature("h_prev", h_prev) @ rows_h.T
            self.grads[names[0]] = rows_x.sum(axis=1)
            self.grads[names[1]] = rows_h.sum(axis=1)
        return (self.params["Wx"] @ rows_x).reshape(D, T, N).transpose(2, 1, 0).copy()

    def by_feature(self, name: str, steps: Array) -> Array:
        """(T, K, N) as (K, T * N): every step's columns side by side, copied into an array the layer keeps."""
        T, K, N = steps.shape
        out = self.scratch(name + " by feature", (K, T, N), steps.dtype)
        np.copyto(out, steps.transpose(1, 0, 2))
        return out.reshape(K, T * N)

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3, variant: int = 0) -> tuple[Layer, tuple[Array, ...]]:
        """Variant 0 returns every state (``return_sequences``), 1 the last one."""
        layer = cls(3, 4, return_sequences=variant % 2 == 0, rng=rng, dtype=np.float64)
        for name in layer.bias_names():
            layer.params[name][:] = 0.5 * rng.standard_normal(layer.params[name].shape)
        return layer, (rng.standard_normal((batch, 5, 3)),)


class RNN(Recurrent, leaf=True):
    """The vanilla recurrent layer: h_t = f(x_t Wx + h_{t-1} Wh + b), f = tanh or relu, h_0 = 0.

    Parameters ``Wx`` (D, H), ``Wh`` (H, H), ``b`` (H,). Local gradient: da_t = dh_t * f'(a_t) (1 - h_t**2 for
    tanh), and dh_{t-1} gets da_t Wh^T. Caches x and the states.
    """

    variants = 4  # the examples: tanh or relu, every state or the last

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
        (inputs, xa), Wh_T = self.projected(x), self.params["Wh"].T
        T, H, N = xa.shape
        hs = self.states("hs", T, H, N, x.dtype)
        f = np.tanh if self.nonlinearity == "tanh" else relu
        for t in range(T):
            h = np.matmul(Wh_T, hs[t], out=hs[t + 1])
            h += xa[t]
            f(h, out=h)
        self.cache = (inputs, hs)
        return self.output(hs)

    def backward(self, dout: Array) -> Array:
        inputs, hs = self.cached(self.cache)
        T, Wh = hs.shape[0] - 1, self.params["Wh"]
        dhs, dh = self.incoming(dout, (T, *hs.shape[1:]))
        after, local = hs[1:], self.scratch("local", (T, *hs.shape[1:]), hs.dtype)  # local: f'(a) at every step
        if self.nonlinearity == "tanh":
            tanh_slope(after, out=local)
        else:
            np.greater(after, 0, out=local)
        for t in reversed(range(T)):
            if dhs is not None and t < T - 1:
                dh += dhs[t]
            da = local[t]  # f'(a_t) becomes da_t in place
            da *= dh
            dh = np.matmul(Wh, da, out=dh)
        return self.input_gradients(inputs, hs[:-1], local, local)

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3, variant: int = 0) -> tuple[Layer, tuple[Array, ...]]:
        """Variants 0 and 1 as ``Recurrent``'s, tanh; 2 and 3 the same with relu."""
        layer, inputs = super().example(rng, batch, variant)
        assert isinstance(layer, RNN)
        if variant >= 2:  # relu, with its kink at 0 away from every pre-activation (all positive)
            layer = cls(3, 4, "relu", layer.return_sequences, rng=rng, dtype=np.float64)
            layer.params["Wx"][:] = np.abs(layer.params["Wx"])
            layer.params["Wh"][:] = np.abs(layer.params["Wh"]) * 0.5
            layer.params["b"][:] = 0.5
            inputs = (np.abs(inputs[0]) + 0.1,)
        return layer, inputs


def relu(a: Array, out: Array) -> Array:
    return np.maximum(a, 0, out=out)


def sigmoid_(a: Array) -> Array:
    """a = 1 / (1 + exp(-a)), in place (exp(-a) = inf gives 0, as it should: overflow is not an error here)."""
    np.negative(a, out=a)
    np.exp(a, out=a)
    a += 1
    return np.reciprocal(a, out=a)


def sigmoid_slope(s: Array, out: Array) -> Array:
    """out = s * (1 - s), the sigmoid's derivative from its value s."""
    np.subtract(1, s, out=out)
    return np.multiply(out, s, out=out)


def tanh_slope(t: Array, out: Array) -> Array:
    """out = 1 - t * t, tanh's derivative from its value t."""
    np.multiply(t, t, out=out)
    return np.subtract(1, out, out=out)
