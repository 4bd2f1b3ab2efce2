"""Recurrent layers: RNN, LSTM, GRU, Embedding and TemporalAffine against PyTorch in float64 (outputs, input and
every parameter gradient, with and without return_sequences), against closed forms where they are short, and
their errors."""

import numpy as np
import pytest

from layers import GRU, LSTM, RNN, Embedding, TemporalAffine
from layers.gradcheck import assert_gradients
from tests.torch_reference import torch_reference

SHAPES = [(2, 5, 3, 4), (1, 1, 2, 3), (3, 7, 1, 6), (4, 3, 6, 2)]  # N, T, D, H; D > 4 takes a matrix product


def torch_module(torch, layer):
    """The PyTorch module with the layer's weights, converted between the layouts (x @ W against W x)."""
    D, H = layer.input_size, layer.hidden_size
    p = {k: torch.tensor(v) for k, v in layer.params.items()}
    if isinstance(layer, RNN):
        module = torch.nn.RNN(D, H, nonlinearity=layer.nonlinearity, batch_first=True).double()
        weights = (p["Wx"].T, p["Wh"].T, p["b"], torch.zeros(H, dtype=torch.float64))
    elif isinstance(layer, LSTM):
        order = torch.cat([torch.arange(k * H, (k + 1) * H) for k in (0, 1, 3, 2)])  # (i, f, o, g) -> (i, f, g, o)
        module = torch.nn.LSTM(D, H, batch_first=True).double()
        weights = (p["Wx"].T[order], p["Wh"].T[order], p["b"][order], torch.zeros(4 * H, dtype=torch.float64))
    else:
        module = torch.nn.GRU(D, H, batch_first=True).double()
        weights = (p["Wx"].T, p["Wh"].T, p["bx"], p["bh"])
    with torch.no_grad():
        for target, value in zip((module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0),
                                 weights, strict=True):
            target.copy_(value)
    return module, order if isinstance(layer, LSTM) else None


def back_to_ours(layer, grad, order):
    """A PyTorch weight gradient in this layer's layout."""
    g = grad.numpy()
    if order is not None:
        g = g[np.argsort(order.numpy())]
    return g.T if g.ndim == 2 else g


@pytest.mark.parametrize("sequences", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("make", [lambda D, H, s, g: RNN(D, H, return_sequences=s, rng=g, dtype=np.float64),
                                  lambda D, H, s, g: RNN(D, H, "relu", s, rng=g, dtype=np.float64),
                                  lambda D, H, s, g: LSTM(D, H, s, rng=g, dtype=np.float64),
                                  lambda D, H, s, g: GRU(D, H, s, rng=g, dtype=np.float64)],
                         ids=["rnn-tanh", "rnn-relu", "lstm", "gru"])
def test_recurrent_layers_match_pytorch_in_float64(make, shape, sequences, request):
    N, T, D, H = shape
    rng = np.random.default_rng(N * 100 + T)
    layer = make(D, H, sequences, rng)
    for name in ("b", "bx", "bh"):
        if name in layer.params:
            layer.params[name][:] = 0.3 * rng.standard_normal(layer.params[name].shape)
    x = rng.standard_normal((N, T, D))
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)

    def compute(torch):
        module, order = torch_module(torch, layer)
        xt = torch.tensor(x, requires_grad=True)
        hs, _ = module(xt)
        ref = hs if sequences else hs[:, -1]
        ref.backward(torch.tensor(dout))
        return {"out": ref.detach().numpy(), "dx": xt.grad.numpy(),
                "Wx": back_to_ours(layer, module.weight_ih_l0.grad, order),
                "Wh": back_to_ours(layer, module.weight_hh_l0.grad, order),
                "b_ih": back_to_ours(layer, module.bias_ih_l0.grad, order), "b_hh": module.bias_hh_l0.grad.numpy()}

    theirs = torch_reference(f"recurrent_{request.node.callspec.id}", compute)
    np.testing.assert_allclose(out, theirs["out"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, theirs["dx"], rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(layer.grads["Wx"], theirs["Wx"], rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(layer.grads["Wh"], theirs["Wh"], rtol=1e-9, atol=1e-11)
    bias = layer.grads.get("b", layer.grads.get("bx"))
    np.testing.assert_allclose(bias, theirs["b_ih"], rtol=1e-9, atol=1e-11)
    if "bh" in layer.grads:
        np.testing.assert_allclose(layer.grads["bh"], theirs["b_hh"], rtol=1e-9, atol=1e-11)


def test_one_rnn_step_is_the_course_formula():
    rng = np.random.default_rng(0)
    layer = RNN(3, 2, return_sequences=True, rng=rng, dtype=np.float64)
    x = rng.standard_normal((4, 2, 3))
    Wx, Wh, b = layer.params["Wx"], layer.params["Wh"], layer.params["b"]
    h1 = np.tanh(x[:, 0] @ Wx + b)
    h2 = np.tanh(x[:, 1] @ Wx + h1 @ Wh + b)
    np.testing.assert_allclose(layer.forward(x), np.stack([h1, h2], axis=1), rtol=1e-14)


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def step_by_step(layer, x):
    """The docstrings' equations one step at a time in the batch-first (N, H) layout: every state."""
    p, H = layer.params, layer.hidden_size
    h, c, states = np.zeros((len(x), H)), np.zeros((len(x), H)), []
    for t in range(x.shape[1]):
        if isinstance(layer, RNN):
            h = np.tanh(x[:, t] @ p["Wx"] + h @ p["Wh"] + p["b"])
        elif isinstance(layer, LSTM):
            a = x[:, t] @ p["Wx"] + h @ p["Wh"] + p["b"]
            i, f, o, g = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), sigmoid(a[:, 2 * H:3 * H]), np.tanh(a[:, 3 * H:])
            c = f * c + i * g
            h = o * np.tanh(c)
        else:
            ax, ah = x[:, t] @ p["Wx"] + p["bx"], h @ p["Wh"] + p["bh"]
            r, z = sigmoid(ax[:, :H] + ah[:, :H]), sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
            n = np.tanh(ax[:, 2 * H:] + r * ah[:, 2 * H:])
            h = (1 - z) * n + z * h
        states.append(h)
    return np.stack(states, axis=1)


@pytest.mark.parametrize("cls", [RNN, LSTM, GRU])
@pytest.mark.parametrize("D", [2, 7])  # up to 4 features the projection is a sum of products, above a product
def test_recurrent_layers_are_their_step_equations_and_check_numerically(cls, D):
    rng = np.random.default_rng(D)
    layer = cls(D, 3, return_sequences=True, rng=rng, dtype=np.float64)
    for name in layer.bias_names():
        layer.params[name][:] = 0.5 * rng.standard_normal(layer.params[name].shape)
    x = rng.standard_normal((5, 4, D))
    np.testing.assert_allclose(layer.forward(x), step_by_step(layer, x), rtol=1e-12, atol=1e-14)
    assert_gradients(layer, x)


@pytest.mark.parametrize("cls", [RNN, LSTM, GRU])
def test_arrays_kept_between_calls_never_change_what_an_earlier_call_returned(cls):
    """The layer reuses its arrays while the batch keeps its shape: outputs and input gradients handed out are
    copies, a second backward gives the same gradients, and a batch of another shape in between changes nothing."""
    rng = np.random.default_rng(0)
    layer = cls(2, 4, return_sequences=True, rng=rng, dtype=np.float64)
    x1, x2, small = rng.standard_normal((6, 5, 2)), rng.standard_normal((6, 5, 2)), rng.standard_normal((2, 3, 2))
    dout = rng.standard_normal((6, 5, 4))
    out1 = layer.forward(x1)
    dx1 = layer.backward(dout)
    grads1 = {k: v.copy() for k, v in layer.grads.items()}
    kept = (out1.copy(), dx1.copy())
    np.testing.assert_array_equal(layer.backward(dout), dx1)
    for name, value in grads1.items():
        np.testing.assert_array_equal(layer.grads[name], value)
    layer.forward(x2)
    layer.backward(dout)
    layer.forward(small)
    np.testing.assert_array_equal(out1, kept[0])
    np.testing.assert_array_equal(dx1, kept[1])
    np.testing.assert_array_equal(layer.forward(x1), out1)
    np.testing.assert_array_equal(layer.backward(dout), dx1)


def test_embedding_gathers_rows_and_repeated_indices_accumulate():
    layer = Embedding(4, 2, rng=0, dtype=np.float64)
    idx = np.array([[1, 1, 3], [0, 1, 3]])
    out = layer.forward(idx)
    np.testing.assert_array_equal(out, layer.params["W"][idx])
    assert layer.backward(np.ones((2, 3, 2))) is None
    np.testing.assert_array_equal(layer.grads["W"], [[1, 1], [3, 3], [0, 0], [2, 2]])  # row 1 three times


def test_embedding_and_temporal_affine_match_pytorch():
    rng = np.random.default_rng(3)
    emb, lin = Embedding(6, 4, rng=rng, dtype=np.float64), TemporalAffine(4, 3, rng=rng, dtype=np.float64)
    lin.params["b"][:] = rng.standard_normal(3)
    idx = rng.integers(0, 6, (2, 5))
    dout = rng.standard_normal((2, 5, 3))
    lin.forward(emb.forward(idx))
    emb.backward(lin.backward(dout))

    def compute(torch):
        t_emb, t_lin = torch.nn.Embedding(6, 4).double(), torch.nn.Linear(4, 3).double()
        with torch.no_grad():
            t_emb.weight.copy_(torch.tensor(emb.params["W"]))
            t_lin.weight.copy_(torch.tensor(lin.params["W"].T))
            t_lin.bias.copy_(torch.tensor(lin.params["b"]))
        t_lin(t_emb(torch.tensor(idx))).backward(torch.tensor(dout))
        return {"emb_W": t_emb.weight.grad.numpy(), "lin_W": t_lin.weight.grad.numpy().T,
                "lin_b": t_lin.bias.grad.numpy()}

    theirs = torch_reference("embedding_temporal_affine", compute)
    np.testing.assert_allclose(emb.grads["W"], theirs["emb_W"], rtol=1e-12)
    np.testing.assert_allclose(lin.grads["W"], theirs["lin_W"], rtol=1e-12)
    np.testing.assert_allclose(lin.grads["b"], theirs["lin_b"], rtol=1e-12)


@pytest.mark.parametrize("cls", [RNN, LSTM, GRU])
def test_float32_in_float32_out_and_long_sequences_stay_finite(cls):
    rng = np.random.default_rng(1)
    layer = cls(2, 8, return_sequences=True, rng=rng)
    x = (10 * rng.standard_normal((3, 500, 2))).astype(np.float32)  # T = 500, large inputs
    out = layer.forward(x)
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == np.float32 and all(g.dtype == np.float32 for g in layer.grads.values())
    assert np.isfinite(out).all() and np.isfinite(dx).all() and all(np.isfinite(g).all() for g in layer.grads.values())


def test_the_lstm_forget_gate_bias_starts_at_one():
    b = LSTM(3, 4).params["b"]
    np.testing.assert_array_equal(b, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])


@pytest.mark.parametrize("call, message", [
    (lambda: RNN(3, 4).forward(np.zeros((2, 3), np.float32)), r"RNN\(3, 4\): expected x of shape \(N, T, 3\)"),
    (lambda: GRU(3, 4).forward(np.zeros((2, 0, 3), np.float32)), r"GRU\(3, 4\): the sequences have length 0"),
    (lambda: LSTM(3, 4).forward(np.zeros((2, 5, 2), np.float32)), r"expected x of shape \(N, T, 3\).*got \(2, 5, 2\)"),
    (lambda: Embedding(5, 2).forward(np.array([[0, 5]])), r"Embedding\(5, 2\): index 5 is out of range: expected 0..4"),
    (lambda: Embedding(5, 2).forward(np.array([[0.0, 1.0]])), r"Embedding\(5, 2\): expected integer indices"),
    (lambda: RNN(3, 4, "sigmoid"), r"RNN: nonlinearity must be 'tanh' or 'relu'"),
    (lambda: TemporalAffine(4, 3).forward(np.zeros((2, 4), np.float32)), r"expected x of shape \(N, T, 4\)"),
])
def test_errors_name_the_layer_and_the_shapes(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_a_sequence_model_trains_with_labels_per_step_and_padding_left_out():
    """Embedding, GRU over the sequence, TemporalAffine at each step; labels (N, T) with padded steps."""
    from layers import Sequential
    from optim import Adam
    from solver import Solver

    rng = np.random.default_rng(0)
    X = rng.integers(0, 5, (300, 6))
    y = (X + 1) % 5  # the next symbol of a rotation: learnable from the current step alone
    y[:, 4:] = -100  # the last two steps are padding
    data = {"X_train": X[:200], "y_train": y[:200], "X_val": X[200:], "y_val": y[200:]}
    model = Sequential(Embedding(5, 8, rng=rng), GRU(8, 16, return_sequences=True, rng=rng),
                       TemporalAffine(16, 5, rng=rng))
    solver = Solver(model, data, optimizer=Adam(lr=1e-2, clip_norm=5.0), epochs=15, batch_size=20, verbose=False)
    metrics = solver.train()
    assert metrics["best_val_acc"] == 1.0 and solver.predict(X[:3]).shape == (3, 6)
    assert len(solver.clip_history) == 15 and all(c >= 0 for c in solver.clip_history)
