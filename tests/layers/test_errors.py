"""Bad input, call order and dtype handling, pinned to their messages."""

import numpy as np
import pytest

from layers import (
    ELU,
    LSTM,
    REGISTRY,
    RNN,
    Add,
    Affine,
    BatchNorm,
    Conv1D,
    Layer,
    LayerNorm,
    LeakyReLU,
    Max,
    Maxout,
    Mul,
    ReLU,
    Sequential,
    Sigmoid,
    Sum,
    Tanh,
)
from losses import SoftmaxCrossEntropy, SVMLoss
from optim import SGD


def test_backward_before_forward_names_the_layer():
    with pytest.raises(RuntimeError, match=r"Affine\(in_features=3, out_features=2\): backward\(\) called before"):
        Affine(3, 2).backward(np.zeros((1, 2), np.float32))
    with pytest.raises(RuntimeError, match=r"ReLU\(\): backward\(\) called before forward"):
        ReLU().backward(np.zeros(3))


def test_wrong_shape_names_layer_and_shapes():
    expected = r"Affine\(in_features=4, out_features=3\): expected x of shape \(N, 4\).*got \(8, 5\)"
    with pytest.raises(ValueError, match=expected):
        Affine(4, 3).forward(np.zeros((8, 5), np.float32))
    with pytest.raises(ValueError, match=r"Maxout\(in_features=4.*got \(4,\)"):
        Maxout(4, 3).forward(np.zeros(4, np.float32))


def test_wrong_dout_shape_is_refused():
    layer = ReLU()
    layer.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"ReLU\(\): expected dout of shape \(2, 3\).*got \(3, 2\)"):
        layer.backward(np.ones((3, 2)))


@pytest.mark.parametrize("layer", [ReLU(), Sigmoid(), Tanh(), ELU(), LeakyReLU(), Affine(3, 2)])
def test_integer_input_is_a_type_error(layer):
    with pytest.raises(TypeError, match=r"expected x with a floating dtype.*got int64"):
        layer.forward(np.ones((2, 3), dtype=np.int64))


def test_dtype_mismatch_with_parameters_is_a_type_error():
    with pytest.raises(TypeError, match=r"x has dtype float64 but the parameters are float32"):
        Affine(3, 2).forward(np.ones((2, 3)))


def test_gates_refuse_mixed_dtypes_and_bad_broadcasts():
    with pytest.raises(TypeError, match=r"Add\(\): x is float32 but y is float64"):
        Add().forward(np.ones(3, np.float32), np.ones(3))
    with pytest.raises(ValueError, match=r"Mul\(\): x of shape \(2, 3\) and y of shape \(2,\) do not broadcast"):
        Mul().forward(np.ones((2, 3)), np.ones(2))


def test_sequential_notes_the_failing_position():
    net = Sequential(Affine(4, 3), ReLU(), Affine(5, 2))
    with pytest.raises(ValueError) as info:
        net.forward(np.ones((2, 4), np.float32))
    assert "in layer 2 (Affine(in_features=5, out_features=2)) of Sequential.forward" in info.value.__notes__


def test_sequential_refuses_non_layers_and_reused_instances():
    relu = ReLU()
    with pytest.raises(TypeError, match="item 1 is a int, not a Layer"):
        Sequential(relu, 3)
    with pytest.raises(ValueError, match=r"item 1 \(ReLU\(\)\) appears twice"):
        Sequential(relu, relu)


@pytest.mark.parametrize("kwargs, match", [
    ({"init": "uniform"}, "unknown scheme 'uniform'; expected one of he, xavier, normal"),
    ({"scale": -1.0}, "scale must be positive"),
    ({"dtype": np.int32}, "dtype must be float32 or float64, got int32"),
    ({"rng": "seed"}, "expected a numpy.random.Generator or an integer seed, got str"),
])
def test_bad_hyperparameters(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Affine(3, 2, **kwargs)


def test_bad_activation_hyperparameters():
    with pytest.raises(ValueError, match="ELU: alpha must be"):
        ELU(alpha=-1.0)
    with pytest.raises(ValueError, match="LeakyReLU: negative_slope must be finite"):
        LeakyReLU(float("nan"))
    with pytest.raises(ValueError, match="Maxout: need .* pieces >= 2"):
        Maxout(3, 2, pieces=1)


def test_duplicate_registry_name_is_refused():
    with pytest.raises(ValueError, match="name 'ReLU' is already registered by layers.activations.ReLU"):
        type("ReLU", (Layer,), {})


def test_helper_base_can_stay_out_of_the_registry():
    class Helper(Layer, register=False):
        pass

    assert "Helper" not in REGISTRY


@pytest.mark.parametrize("name", sorted(n for n, c in REGISTRY.items() if c.__module__.startswith("layers.")))
def test_float32_stays_float32(name):
    layer, inputs = REGISTRY[name].example(np.random.default_rng(0))
    layer.astype(np.float32)
    inputs = tuple(x.astype(np.float32) if x.dtype.kind == "f" else x for x in inputs)  # indices stay integers
    out = layer.forward(*inputs)
    assert out.dtype == np.float32
    grads = layer.backward(np.ones_like(out))
    for g in grads if isinstance(grads, tuple) else (grads,):
        assert g is None or g.dtype == np.float32
    assert all(v.dtype == np.float32 for v in layer.grads.values())


@pytest.mark.parametrize("name", sorted(n for n, c in REGISTRY.items() if c.__module__.startswith("layers.")
                                         and n != "Graph"))  # a Graph takes any array-like dout, as its output's dtype
def test_an_integer_dout_is_refused_naming_the_layer(name):
    layer, inputs = REGISTRY[name].example(np.random.default_rng(0))
    out = layer.forward(*inputs)
    with pytest.raises(TypeError, match=r"^\w+\(.*\): expected dout as a floating array of shape .*got dtype int64"):
        layer.backward(np.ones(out.shape, dtype=np.int64))


def test_a_dout_that_is_not_an_array_is_refused_and_sum_checks_its_shape():
    relu = ReLU()
    relu.forward(np.ones((2, 3)))
    with pytest.raises(TypeError, match=r"ReLU\(\): expected dout as a floating array of shape \(2, 3\).*got list"):
        relu.backward([[1.0, 1.0, 1.0]] * 2)
    total = Sum(axis=1)
    total.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"Sum\(axis=1\): expected dout of shape \(2,\).*got \(3,\)"):
        total.backward(np.ones(3))  # would broadcast into dx without the check


def test_non_finite_input_propagates():
    x = np.array([np.nan, np.inf, -np.inf, 1.0])
    out = ReLU().forward(x)
    assert np.isnan(out[0]) and out[1] == np.inf and out[2] == 0.0 and out[3] == 1.0
    assert np.isnan(Tanh().forward(x)[0])
    np.testing.assert_array_equal(Tanh().forward(x)[1:], [1.0, -1.0, np.tanh(1.0)])


def test_max_routes_ties_to_x():
    gate = Max()
    gate.forward(np.array([1.0, 2.0]), np.array([1.0, 3.0]))
    dx, dy = gate.backward(np.array([10.0, 20.0]))
    np.testing.assert_array_equal(dx, [10.0, 0.0])
    np.testing.assert_array_equal(dy, [0.0, 20.0])


@pytest.mark.parametrize("dtype, big", [(np.float64, 800.0), (np.float32, 100.0)])
@pytest.mark.parametrize("layer", [Sigmoid, Tanh, ELU, ReLU, LeakyReLU])
def test_extreme_inputs_raise_nothing_under_errstate_raise(layer, dtype, big):
    """Users set np.errstate(all="raise") to hunt numerical bugs: an activation must not trip it on inputs
    where its result is exact (exp underflowing to 0 on the way to sigmoid(-800) = 0 is no error)."""
    x = np.array([[-big, -big / 2, -1.0, 0.0, 1.0, big / 2, big]], dtype)
    with np.errstate(all="raise"):
        unit = layer()
        out = unit.forward(x)
        dx = unit.backward(np.ones_like(out))
    assert np.isfinite(out).all() and np.isfinite(dx).all()
    if layer is Sigmoid:
        assert out[0, 0] == 0 and out[0, -1] == 1 and dx[0, 0] == 0


@pytest.mark.parametrize("dtype, big", [(np.float64, 800.0), (np.float32, 100.0)])
@pytest.mark.parametrize("loss", ["softmax", "svm"])
def test_losses_raise_nothing_under_errstate_raise_on_extreme_scores(loss, dtype, big):
    from losses import LOSSES

    scores = np.array([[-big, 0.0, big], [big, -big, 0.0]], dtype)
    with np.errstate(all="raise"):
        fn = LOSSES.lookup(loss)()
        value = fn.forward(scores, np.array([2, 1]))
        grad = fn.backward()
    assert np.isfinite(value) and np.isfinite(grad).all()


def test_elu_at_infinity_and_read_only_outputs():
    from layers import ELU, Sigmoid, Tanh

    elu = ELU()
    elu.forward(np.array([np.inf, -np.inf, 1.0]))
    np.testing.assert_array_equal(elu.backward(np.ones(3)), [1.0, 0.0, 1.0])
    for layer in (Sigmoid(), Tanh(), ELU()):
        out = layer.forward(np.array([0.5, -0.5]))
        with pytest.raises(ValueError, match="read-only"):
            out[0] = 3.0
        fresh_layer = type(layer)()
        fresh_layer.forward(np.array([0.5, -0.5]))
        np.testing.assert_array_equal(layer.backward(np.ones(2)), fresh_layer.backward(np.ones(2)))


def empty_case(cls, variant):
    """The class's example with every batched input cut to no rows."""
    rng = np.random.default_rng(0)
    layer, inputs = cls.example(rng, batch=5, variant=variant) if cls.variants > 1 else cls.example(rng, batch=5)
    batched = [np.ndim(x) and len(x) == 5 for x in inputs]
    return layer, tuple(np.asarray(x)[:0] if b else x for x, b in zip(inputs, batched, strict=True)), all(batched)


@pytest.mark.parametrize("name, variant", [(n, v) for n, c in sorted(REGISTRY.items())
                                           if c.__module__.startswith("layers.") for v in range(c.variants)])
def test_an_empty_batch_goes_through_every_layer_or_is_refused_naming_it(name, variant):
    layer, inputs, all_batched = empty_case(REGISTRY[name], variant)
    if not all_batched:  # a gate whose second input is not batched: nothing to cut
        return
    try:
        out = layer.forward(*inputs)
    except ValueError as e:  # only where the answer cannot be computed: a batch statistic of no rows
        assert name == "BatchNorm" and "a batch of 0 in training mode has no variance" in str(e)
        return
    grads = layer.backward(np.zeros_like(out))
    grads = grads if isinstance(grads, tuple) else (grads,)
    for x, dx in zip(inputs, grads, strict=False):
        assert dx is None or (np.shape(dx) == np.shape(x) and np.shape(x)[0] == 0)
    assert np.ndim(out) == 0 or np.shape(out)[0] == 0  # a whole-array Sum gives a scalar


def test_global_average_pooling_over_no_positions_says_so():
    from layers import GlobalAvgPool

    with pytest.raises(ValueError, match=r"GlobalAvgPool\(\): x of shape \(2, 3, 0\) has no positions to average"):
        GlobalAvgPool().forward(np.zeros((2, 3, 0)))


@pytest.mark.parametrize("make, match", [
    (lambda: Conv1D(2, 3, 3, bias="no"), r"^Conv1D: bias must be true or false, got 'no'"),
    (lambda: RNN(3, 4, return_sequences="yes"),
     r"^RNN: return_sequences must be true or false, got 'yes'"),
    (lambda: RNN(True, 4), r"^RNN: input_size must be an integer >= 1, got True"),
    (lambda: LSTM(3, 2.5), r"^LSTM: hidden_size must be an integer >= 1, got 2.5"),
    (lambda: Affine(0, 3), r"^Affine: in_features must be an integer >= 1, got 0"),
    (lambda: Maxout(4, 3, pieces="2"), r"^Maxout: pieces must be an integer >= 1, got '2'"),
    (lambda: Affine(3, 2, dtype=np.float16), r"^Affine: dtype must be float32 or float64, got float16"),
    (lambda: Affine(3, 2, dtype="floaty"), r"^Affine: dtype must be float32 or float64, got 'floaty'"),
    (lambda: SGD(lr=True), r"^SGD: lr must be a positive number, got True"),
    (lambda: SoftmaxCrossEntropy(ignore_index=2.5),
     r"^SoftmaxCrossEntropy: ignore_index must be an integer \(a label\), got 2.5"),
    (lambda: SVMLoss(ignore_index="x"), r"^SVMLoss: ignore_index must be an integer"),
])
def test_constructors_check_their_arguments_with_the_configs_words(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


@pytest.mark.parametrize("make, axis", [(lambda: LayerNorm(6), -1), (lambda: BatchNorm(6), 0)])
def test_normalization_of_float32_values_near_1e20_normalizes_them(make, axis):
    import warnings

    x = (np.random.default_rng(0).standard_normal((4, 6)) * 1e20).astype(np.float32)
    wide = x.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        out = make().forward(x)
    expected = (wide - wide.mean(axis, keepdims=True)) / wide.std(axis, keepdims=True)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-5)  # not the zeros an overflowed variance gave


def test_batchnorm_in_eval_after_a_variance_past_float32_says_so():
    layer = BatchNorm(6)
    layer.forward((np.random.default_rng(0).standard_normal((4, 6)) * 1e20).astype(np.float32))
    layer.eval()
    with pytest.raises(ValueError, match=r"^BatchNorm\(num_features=6\): running_var of feature\(s\) "
                       r"\[0, 1, 2, 3, 5\] is inf: the training batches' variance overflowed float32, so eval "
                       "mode cannot normalize"):
        layer.forward(np.ones((2, 6), np.float32))
