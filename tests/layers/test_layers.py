"""Forward and backward of every layer against independent references, closed forms and errors."""

import numpy as np
import pytest

from layers import ELU, Affine, LeakyReLU, Maxout, ReLU, Sequential, Sigmoid, Tanh
from layers.base import away_from_zero
from tests import reference


@pytest.mark.parametrize("name", sorted(reference.REFERENCE))
def test_activation_matches_scalar_reference(name, rng):
    f, df = reference.REFERENCE[name]()
    layer = {"ReLU": ReLU(), "LeakyReLU": LeakyReLU(0.1), "ELU": ELU(1.5), "Sigmoid": Sigmoid(), "Tanh": Tanh()}[name]
    x = away_from_zero(rng, (4, 3, 2)) * 3
    dout = rng.standard_normal(x.shape)
    out_ref, dx_ref = reference.elementwise(f, df, x, dout)
    np.testing.assert_allclose(layer.forward(x), out_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.backward(dout), dx_ref, rtol=1e-10, atol=1e-12)


def test_affine_matches_loop_reference(rng):
    layer = Affine(6, 4, rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.standard_normal(4)
    x = rng.standard_normal((5, 2, 3))
    dout = rng.standard_normal((5, 4))
    out_ref, dx_ref, dW_ref, db_ref = reference.affine(x, layer.params["W"], layer.params["b"], dout)
    np.testing.assert_allclose(layer.forward(x), out_ref, rtol=1e-10, atol=1e-12)
    dx = layer.backward(dout)
    assert dx.shape == (5, 2, 3)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], dW_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], db_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("pieces", [2, 3])
def test_maxout_matches_loop_reference(pieces, rng):
    layer = Maxout(5, 3, pieces=pieces, rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.standard_normal(3 * pieces)
    x = rng.standard_normal((4, 5))
    dout = rng.standard_normal((4, 3))
    out_ref, dx_ref, dW_ref, db_ref = reference.maxout(x, layer.params["W"], layer.params["b"], pieces, dout)
    np.testing.assert_allclose(layer.forward(x), out_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.backward(dout), dx_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], dW_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], db_ref, rtol=1e-10, atol=1e-12)


def test_maxout_two_pieces_is_max_of_two_affine_maps():
    layer = Maxout(2, 1, pieces=2, dtype=np.float64)
    layer.params["W"][:] = [[1.0, -1.0], [2.0, 0.5]]  # column 0: piece 0, column 1: piece 1
    layer.params["b"][:] = [0.0, 1.0]
    x = np.array([[1.0, 1.0], [-1.0, 0.0]])
    # piece 0: x0 + 2 x1; piece 1: -x0 + 0.5 x1 + 1
    np.testing.assert_allclose(layer.forward(x), [[3.0], [2.0]])
    dx = layer.backward(np.array([[1.0], [1.0]]))
    np.testing.assert_allclose(dx, [[1.0, 2.0], [-1.0, 0.5]])
    np.testing.assert_allclose(layer.grads["W"], [[1.0, -1.0], [1.0, 0.0]])
    np.testing.assert_allclose(layer.grads["b"], [1.0, 1.0])


def test_sigmoid_derivative_is_s_times_one_minus_s(rng):
    x = rng.standard_normal(7)
    s = 1 / (1 + np.exp(-x))
    layer = Sigmoid()
    np.testing.assert_allclose(layer.forward(x), s, rtol=1e-14)
    np.testing.assert_allclose(layer.backward(np.ones(7)), s * (1 - s), rtol=1e-12)


def test_sigmoid_is_exact_and_silent_at_extremes():
    x = np.array([-1000.0, -np.inf, 0.0, 1000.0, np.inf])
    out = Sigmoid().forward(x)  # filterwarnings=error turns any overflow warning into a failure
    np.testing.assert_array_equal(out, [0.0, 0.0, 0.5, 1.0, 1.0])


def test_leaky_relu_with_slope_zero_equals_relu(rng):
    x = rng.standard_normal((3, 4))
    leaky, relu = LeakyReLU(0.0), ReLU()
    np.testing.assert_array_equal(leaky.forward(x), relu.forward(x))
    dout = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(leaky.backward(dout), relu.backward(dout))


@pytest.mark.parametrize("slope", [-0.5, 0.0, 0.3, 1.0, 2.5])
def test_leaky_relu_matches_scalar_reference_for_any_slope(slope, rng):
    f, df = reference.REFERENCE["LeakyReLU"](slope)
    x = np.concatenate([away_from_zero(rng, (20,)) * 3, [0.0]])
    dout = rng.standard_normal(x.shape)
    out_ref, dx_ref = reference.elementwise(f, df, x, dout)
    layer = LeakyReLU(slope)
    np.testing.assert_array_equal(layer.forward(x), out_ref)  # exact: one product, then a select
    np.testing.assert_array_equal(layer.backward(dout), dx_ref)


@pytest.mark.parametrize("layer", [LeakyReLU(0.2), ELU(0.7)])
def test_piecewise_backward_passes_dout_unchanged_where_x_is_positive(layer, rng):
    x, dout = np.array([0.5, 2.0, -1.0], dtype=np.float32), rng.standard_normal(3).astype(np.float32)
    layer.forward(x)
    dx = layer.backward(dout)
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dx[:2], dout[:2])


def test_lecture_leaky_relu_slope():
    layer = LeakyReLU(0.1)
    np.testing.assert_allclose(layer.forward(np.array([-2.0, 3.0])), [-0.2, 3.0])
    np.testing.assert_allclose(layer.backward(np.array([1.0, 1.0])), [0.1, 1.0])


def test_relu_gradient_at_zero_is_zero():
    layer = ReLU()
    layer.forward(np.array([0.0, 1.0]))
    np.testing.assert_array_equal(layer.backward(np.array([5.0, 5.0])), [0.0, 5.0])


def test_elu_closed_form():
    layer = ELU(alpha=2.0)
    out = layer.forward(np.array([-1.0, 0.5]))
    np.testing.assert_allclose(out, [2.0 * (np.exp(-1.0) - 1), 0.5])
    np.testing.assert_allclose(layer.backward(np.ones(2)), [2.0 * np.exp(-1.0), 1.0])


def test_sequential_chains_and_names_parameters(rng):
    a1, a2 = Affine(4, 3, rng=rng, dtype=np.float64), Affine(3, 2, rng=rng, dtype=np.float64)
    net = Sequential(a1, ReLU(), Sequential(a2))
    assert list(net.params) == ["0.W", "0.b", "2.0.W", "2.0.b"]
    assert net.params["2.0.W"] is a2.params["W"]
    x = rng.standard_normal((5, 4))
    h = np.maximum(x @ a1.params["W"] + a1.params["b"], 0)
    np.testing.assert_allclose(net.forward(x), h @ a2.params["W"] + a2.params["b"], rtol=1e-12)
    dout = rng.standard_normal((5, 2))
    dx = net.backward(dout)
    dh = dout @ a2.params["W"].T * (h > 0)
    np.testing.assert_allclose(dx, dh @ a1.params["W"].T, rtol=1e-12)
    np.testing.assert_allclose(net.grads["0.W"], x.T @ dh, rtol=1e-12)
    np.testing.assert_allclose(net.grads["2.0.b"], dout.sum(0), rtol=1e-12)


def small_net(rng):
    return Sequential(Affine(4, 3, rng=rng, dtype=np.float64), ReLU(), Affine(3, 2, rng=rng, dtype=np.float64))


def test_sequential_view_sees_a_replaced_layer(rng):
    net = small_net(rng)
    assert net.params["2.W"].shape == (3, 2)
    new = Affine(3, 5, rng=rng, dtype=np.float64)
    net.layers[2] = new
    assert net.params["2.W"] is new.params["W"] and net.grads["2.W"] is new.grads["W"]
    net.layers[1] = Sigmoid()  # no parameters: the names stay, the view must too
    assert list(net.params) == ["0.W", "0.b", "2.W", "2.b"]


def test_sequential_view_sees_a_rebound_parameter_or_gradient_array(rng):
    net = small_net(rng)
    old_W, old_g = net.params["0.W"], net.grads["0.b"]
    net[0].params["W"] = np.zeros((4, 3))
    net[0].grads["b"] = np.ones(3)
    assert net.params["0.W"] is net[0].params["W"] and net.params["0.W"] is not old_W
    assert net.grads["0.b"] is net[0].grads["b"] and net.grads["0.b"] is not old_g
    net[2].params["V"] = net[2].params.pop("W")  # a renamed key
    assert list(net.params) == ["0.W", "0.b", "2.b", "2.V"]


def test_sequential_view_sees_appended_and_removed_layers(rng):
    net = small_net(rng)
    assert len(net.params) == 4
    extra = Affine(2, 2, rng=rng, dtype=np.float64)
    net.layers.append(extra)
    assert list(net.params)[-2:] == ["3.W", "3.b"] and net.params["3.W"] is extra.params["W"]
    del net.layers[0]
    assert list(net.params) == ["1.W", "1.b", "2.W", "2.b"]
    net.layers.insert(0, ReLU())  # no new arrays, but every position moves
    assert list(net.params) == ["2.W", "2.b", "3.W", "3.b"]
    inner = Sequential(Affine(2, 2, rng=rng, dtype=np.float64))
    net.layers.append(inner)
    assert net.params["4.0.W"] is inner[0].params["W"]
    inner.layers.append(Affine(2, 2, rng=rng, dtype=np.float64))  # inside a nested container
    assert net.params["4.1.W"] is inner[1].params["W"]


def test_assigning_into_a_merged_view_rebinds_the_owner_and_removing_is_refused(rng):
    net = small_net(rng)
    view = net.params
    W = np.zeros((4, 3))
    view["0.W"] = W
    assert net[0].params["W"] is W and net.params["0.W"] is W
    with pytest.raises(TypeError, match="merged view"):
        del view["2.b"]
    with pytest.raises(KeyError, match="no layer owns '7.W'"):
        view["7.W"] = W
    assert "2.b" in net.params and net[2].params["b"] is view["2.b"]


def test_backward_overwrites_gradients(rng):
    layer = Affine(3, 2, rng=rng, dtype=np.float64)
    x = rng.standard_normal((4, 3))
    dout = rng.standard_normal((4, 2))
    layer.forward(x)
    layer.backward(dout)
    first = layer.grads["W"].copy()
    layer.backward(dout)
    np.testing.assert_array_equal(layer.grads["W"], first)


@pytest.mark.parametrize("scheme, expected_std", [("he", np.sqrt(2 / 400)), ("xavier", np.sqrt(2 / 600)),
                                                   ("normal", 0.01)])
def test_init_schemes_have_the_documented_scale(scheme, expected_std):
    W = Affine(400, 200, init=scheme, rng=0).params["W"]
    assert W.dtype == np.float32
    assert abs(W.std() / expected_std - 1) < 0.02
    assert abs(W.mean()) < 0.05 * expected_std


def test_init_is_seeded_and_needs_no_global_state():
    a = Affine(5, 4, rng=np.random.default_rng(7)).params["W"]
    b = Affine(5, 4, rng=7).params["W"]
    c = Affine(5, 4, rng=8).params["W"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_normal_init_scale():
    W = Affine(300, 300, init="normal", scale=0.5, rng=1, dtype=np.float64).params["W"]
    assert abs(W.std() - 0.5) < 0.01


def test_backward_params_fills_the_same_grads_as_backward_and_returns_nothing(rng):
    for layer in (Affine(3, 2, rng=rng, dtype=np.float64), Maxout(3, 2, pieces=2, rng=rng, dtype=np.float64)):
        x, dout = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
        layer.forward(x)
        assert layer.backward(dout).shape == (4, 3)
        expected = {k: v.copy() for k, v in layer.grads.items()}
        layer.grads["W"][...] = 0
        assert layer.backward_params(dout) is None
        for key, value in expected.items():
            np.testing.assert_array_equal(layer.grads[key], value)


class Spy(ReLU, register=False):
    """ReLU that records which backward was asked of it."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def backward(self, dout):
        self.calls.append("backward")
        return super().backward(dout)

    def backward_params(self, dout):
        self.calls.append("backward_params")
        ReLU.backward(self, dout)


def test_sequential_backward_params_skips_only_the_first_layers_input_gradient(rng):
    first, inner = Spy(), Spy()
    net = Sequential(first, Affine(3, 4, rng=rng, dtype=np.float64), inner, Affine(4, 2, rng=rng, dtype=np.float64))
    x, dout = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    net.forward(x)
    dx = net.backward(dout)
    full = {k: v.copy() for k, v in net.grads.items()}
    assert net.backward_params(dout) is None and dx.shape == (5, 3)
    assert first.calls == ["backward", "backward_params"] and inner.calls == ["backward", "backward"]
    for key, value in full.items():
        np.testing.assert_array_equal(net.grads[key], value)


def test_sigmoid_has_full_relative_precision_in_both_tails():
    from scipy.special import expit

    x = np.array([-40.0, -30.0, -20.0, -5.0, 0.0, 5.0, 20.0, 30.0, 40.0])
    np.testing.assert_allclose(Sigmoid().forward(x), expit(x), rtol=4e-16, atol=0)
    x32 = np.array([-80.0, -40.0, -10.0, 10.0, 40.0], np.float32)
    out = Sigmoid().forward(x32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expit(x32.astype(np.float64)), rtol=2e-7, atol=0)
    np.testing.assert_array_equal(Sigmoid().forward(np.array([-np.inf, np.inf, -1000.0])), [0.0, 1.0, 0.0])
