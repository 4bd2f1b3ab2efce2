"""The course's step functions: checked numerically, and the fused layers held to them over whole sequences."""

import numpy as np
import pytest

from layers import GRU, LSTM, RNN
from layers.recurrent.steps import (
    gru_step_backward,
    gru_step_forward,
    lstm_step_backward,
    lstm_step_forward,
    rnn_step_backward,
    rnn_step_forward,
)


def numeric(f, x, dout, h=1e-6):
    """Centred differences of sum(f() * dout) with respect to x, changed in place."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        plus = np.sum(f() * dout)
        x[i] = old - h
        minus = np.sum(f() * dout)
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def step_arrays(rng, kind, N=3, D=4, H=5):
    k = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    arrays = {"x": rng.standard_normal((N, D)), "h_prev": rng.standard_normal((N, H)),
              "Wx": 0.5 * rng.standard_normal((D, k * H)), "Wh": 0.5 * rng.standard_normal((H, k * H))}
    if kind == "gru":
        arrays.update(bx=rng.standard_normal(3 * H), bh=rng.standard_normal(3 * H))
    else:
        arrays["b"] = rng.standard_normal(k * H)
    if kind == "lstm":
        arrays["c_prev"] = rng.standard_normal((N, H))
    return arrays


def forward(kind, a):
    if kind == "rnn":
        return rnn_step_forward(a["x"], a["h_prev"], a["Wx"], a["Wh"], a["b"])[0]
    if kind == "gru":
        return gru_step_forward(a["x"], a["h_prev"], a["Wx"], a["Wh"], a["bx"], a["bh"])[0]
    h, c, _ = lstm_step_forward(a["x"], a["h_prev"], a["c_prev"], a["Wx"], a["Wh"], a["b"])
    return np.concatenate([h, c], axis=1)  # both outputs, so one dout reaches both


def backward(kind, a, dout):
    if kind == "rnn":
        return rnn_step_backward(dout, rnn_step_forward(a["x"], a["h_prev"], a["Wx"], a["Wh"], a["b"])[1])
    if kind == "gru":
        return gru_step_backward(dout, gru_step_forward(a["x"], a["h_prev"], a["Wx"], a["Wh"], a["bx"], a["bh"])[1])
    H = a["h_prev"].shape[1]
    cache = lstm_step_forward(a["x"], a["h_prev"], a["c_prev"], a["Wx"], a["Wh"], a["b"])[2]
    return lstm_step_backward(dout[:, :H], dout[:, H:], cache)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_each_step_backward_is_its_forward_differentiated(kind):
    rng = np.random.default_rng(1)
    a = step_arrays(rng, kind)
    dout = rng.standard_normal(forward(kind, a).shape)
    grads = backward(kind, a, dout)
    assert set(grads) == set(a)
    for name, value in a.items():
        np.testing.assert_allclose(grads[name], numeric(lambda: forward(kind, a), value, dout), rtol=1e-6,
                                   atol=1e-8, err_msg=name)


def run_steps(layer, x, dout):
    """The layer's output and gradients computed with the step functions: forward over time, then
    backpropagation through time, one step backward at a time."""
    p, H = layer.params, layer.hidden_size
    h, c = np.zeros((len(x), H)), np.zeros((len(x), H))
    caches, hs = [], []
    for t in range(x.shape[1]):
        if isinstance(layer, LSTM):
            h, c, cache = lstm_step_forward(x[:, t], h, c, p["Wx"], p["Wh"], p["b"])
        elif isinstance(layer, GRU):
            h, cache = gru_step_forward(x[:, t], h, p["Wx"], p["Wh"], p["bx"], p["bh"])
        else:
            h, cache = rnn_step_forward(x[:, t], h, p["Wx"], p["Wh"], p["b"])
        caches.append(cache)
        hs.append(h)
    grads = {name: np.zeros_like(value) for name, value in p.items()}
    dx, dh, dc = np.zeros_like(x), np.zeros((len(x), H)), np.zeros((len(x), H))
    for t in reversed(range(x.shape[1])):
        dh = dh + dout[:, t]
        if isinstance(layer, LSTM):
            step = lstm_step_backward(dh, dc, caches[t])
            dc = step["c_prev"]
        else:
            step = (gru_step_backward if isinstance(layer, GRU) else rnn_step_backward)(dh, caches[t])
        dx[:, t], dh = step["x"], step["h_prev"]
        for name in grads:
            grads[name] += step[name]
    return np.stack(hs, axis=1), dx, grads


@pytest.mark.parametrize("cls", [RNN, LSTM, GRU])
def test_the_fused_layers_compute_what_their_steps_compute(cls):
    rng = np.random.default_rng(2)
    layer = cls(4, 5, return_sequences=True, rng=rng, dtype=np.float64)
    for name in layer.bias_names():
        layer.params[name][:] = 0.5 * rng.standard_normal(layer.params[name].shape)
    x = rng.standard_normal((3, 6, 4))
    dout = rng.standard_normal((3, 6, 5))
    out, dx, grads = run_steps(layer, x, dout)
    np.testing.assert_allclose(layer.forward(x), out, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.backward(dout), dx, rtol=1e-10, atol=1e-12)
    for name, value in grads.items():
        np.testing.assert_allclose(layer.grads[name], value, rtol=1e-10, atol=1e-12, err_msg=name)
