"""Residual and Parallel: values by hand, gradients through the branches, the shapes they refuse, and their
names in a tree; state_dict, save, load and summary on a model built in code."""

import numpy as np
import pytest

import layers
from layers import (
    GELU,
    Affine,
    BatchNorm,
    Conv2D,
    GlobalAvgPool,
    LayerNorm,
    MultiHeadAttention,
    Parallel,
    ReLU,
    Residual,
    Sequential,
    Tanh,
    TemporalAffine,
)
from layers.gradcheck import gradcheck
from layers.summary import summary_table

RNG = np.random.default_rng(0)


def affine(i, o):
    return Affine(i, o, rng=RNG, dtype=np.float64)


def test_residual_adds_the_identity_or_the_shortcut_and_backward_adds_both_paths():
    x, dout = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))
    fc = affine(3, 3)
    block = Residual([fc, Tanh()])
    body = np.tanh(x @ fc.params["W"] + fc.params["b"])
    np.testing.assert_allclose(block.forward(x), body + x, rtol=1e-12)
    dbody = (dout * (1 - body ** 2)) @ fc.params["W"].T
    np.testing.assert_allclose(block.backward(dout), dbody + dout, rtol=1e-12)
    fc1, proj = affine(3, 5), affine(3, 5)
    projected = Residual([fc1], shortcut=proj)
    out = projected.forward(x)
    np.testing.assert_allclose(out, x @ fc1.params["W"] + fc1.params["b"] + x @ proj.params["W"] + proj.params["b"])
    d5 = RNG.standard_normal((4, 5))
    np.testing.assert_allclose(projected.backward(d5), d5 @ fc1.params["W"].T + d5 @ proj.params["W"].T)
    np.testing.assert_allclose(proj.grads["W"], x.T @ d5)
    assert sorted(projected.params) == ["body.0.W", "body.0.b", "shortcut.W", "shortcut.b"]


def test_parallel_concatenates_on_the_feature_or_channel_axis_and_adds():
    x = RNG.standard_normal((2, 3))
    a, b = affine(3, 2), affine(3, 4)
    both = Parallel([a, [b, Tanh()], []])
    out = both.forward(x)
    expected = np.concatenate([x @ a.params["W"] + a.params["b"], np.tanh(x @ b.params["W"] + b.params["b"]), x], 1)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    dout = RNG.standard_normal(out.shape)
    tb = np.tanh(x @ b.params["W"] + b.params["b"])
    dx = dout[:, :2] @ a.params["W"].T + (dout[:, 2:6] * (1 - tb ** 2)) @ b.params["W"].T + dout[:, 6:]
    np.testing.assert_allclose(both.backward(dout), dx, rtol=1e-12)
    images = RNG.standard_normal((2, 1, 4, 4))
    convs = Parallel([Conv2D(1, 2, 1, rng=RNG, dtype=np.float64), Conv2D(1, 3, 3, padding=1, rng=RNG,
                                                                           dtype=np.float64)])
    assert convs.forward(images).shape == (2, 5, 4, 4)
    added = Parallel([affine(3, 4), affine(3, 4)], combine="add")
    first, second = added.branches
    np.testing.assert_allclose(added.forward(x), first.forward(x) + second.forward(x))


@pytest.mark.parametrize("make, words", [
    (lambda: Residual([affine(3, 4)]), "the layers give (4,) per example but the input (the identity shortcut) "
                                       "gives (3,)"),
    (lambda: Residual([affine(3, 4)], shortcut=affine(3, 5)), "the shortcut gives (5,)"),
    (lambda: Parallel([affine(3, 4), affine(3, 5)], combine="add"), "[(4,), (5,)] per example"),
    (lambda: Parallel([[affine(3, 4)], [affine(3, 4), layers.Reshape((2, 2))]]), "equal but on axis 1"),
])
def test_shapes_that_cannot_be_joined_are_named(make, words):
    with pytest.raises(ValueError) as e:
        make().forward(RNG.standard_normal((2, 3)))
    assert words in str(e.value)


@pytest.mark.parametrize("make, words", [
    (lambda: Residual([]), "layers is empty"),
    (lambda: Residual("Affine"), "expected a layer or a list of layers, got str"),
    (lambda: Parallel([]), "non-empty list"),
    (lambda: Parallel([ReLU()], combine="max"), "'concat' or 'add'"),
    (lambda: Parallel([ReLU()], axis=0), "0 is the batch"),
    (lambda: Parallel([[ReLU(), 3]]), "item 1 is a int"),
])
def test_bad_container_arguments(make, words):
    with pytest.raises((TypeError, ValueError)) as e:
        make()
    assert words in str(e.value)


@pytest.mark.parametrize("block", [
    lambda: Residual([Conv2D(2, 2, 3, padding=1, rng=RNG, dtype=np.float64), BatchNorm(2, dtype=np.float64),
                      ReLU()], shortcut=[Conv2D(2, 2, 1, rng=RNG, dtype=np.float64)]),
    lambda: Parallel([[Conv2D(2, 1, 1, rng=RNG, dtype=np.float64)], [Conv2D(2, 3, 3, padding=1, rng=RNG,
                                                                           dtype=np.float64), Tanh()]]),
])
def test_gradients_through_nested_blocks_of_convolutions(block):
    report = gradcheck(Sequential(block(), GlobalAvgPool()), RNG.standard_normal((3, 2, 4, 4)))
    assert report.passed, report
    assert len(report.checks) >= 5  # the input and every parameter of both paths


def test_a_transformer_block_written_with_residual_containers_equals_transformer_block():
    from chainrule.build import build_model

    d, heads = 8, 2
    cfg = {"dtype": "float64", "init": "", "layers": [
        {"type": "Residual", "layers": [{"type": "LayerNorm"},
                                        {"type": "MultiHeadAttention", "num_heads": heads, "causal": True}]},
        {"type": "Residual", "layers": [{"type": "LayerNorm"}, {"type": "TemporalAffine", "out_features": 4 * d},
                                        {"type": "GELU"}, {"type": "TemporalAffine", "out_features": d}]}]}
    x = RNG.standard_normal((2, 5, d))
    net = build_model(cfg, x, np.random.default_rng(1))
    first, second = net.layers
    assert isinstance(first.body[1], MultiHeadAttention) and isinstance(second.body[2], GELU)
    assert isinstance(second.body[0], LayerNorm) and isinstance(second.body[3], TemporalAffine)
    block = layers.TransformerBlock(d, heads, causal=True, rng=RNG, dtype=np.float64)
    for value in block.params.values():
        value[:] = RNG.standard_normal(value.shape) * 0.3
    ours = {"ln1": "0.body.0", "attn": "0.body.1", "ln2": "1.body.0", "fc1": "1.body.1", "fc2": "1.body.3"}
    state = {f"{ours[k.split('.')[0]]}.{k.split('.')[1]}": v for k, v in block.params.items()}
    net.load_state_dict(state)
    np.testing.assert_allclose(net.forward(x), block.forward(x), rtol=1e-12)
    dout = RNG.standard_normal(x.shape)
    np.testing.assert_allclose(net.backward(dout), block.backward(dout), rtol=1e-10)
    grads = net.grads
    for key, value in block.grads.items():
        np.testing.assert_allclose(grads[f"{ours[key.split('.')[0]]}.{key.split('.')[1]}"], value, rtol=1e-10)


def small_net(rng, dtype=np.float32):
    return Sequential(Conv2D(1, 4, 3, padding=1, rng=rng, dtype=dtype), BatchNorm(4, dtype=dtype), ReLU(),
                      Residual([Conv2D(4, 4, 3, padding=1, rng=rng, dtype=dtype)]), GlobalAvgPool(),
                      Affine(4, 3, rng=rng, dtype=dtype))


def test_state_dict_is_a_copy_by_dotted_name_and_load_state_dict_writes_in_place():
    net = small_net(np.random.default_rng(0))
    net.train().forward(RNG.standard_normal((5, 1, 6, 6)).astype(np.float32))  # moves BatchNorm's statistics
    state = net.state_dict()
    assert list(state) == ["0.W", "0.b", "1.gamma", "1.beta", "3.body.0.W", "3.body.0.b", "5.W", "5.b",
                           "1.running_mean", "1.running_var"]
    assert not np.shares_memory(state["0.W"], net.params["0.W"])
    other = small_net(np.random.default_rng(1))
    W = other.params["0.W"]
    assert other.load_state_dict(state) == ([], [])
    assert other.params["0.W"] is W  # in place: an optimizer's references stay valid
    for key, value in state.items():
        np.testing.assert_array_equal({**other.params, **other.buffers}[key], value)
    assert other.params["0.W"].dtype == np.float32
    other.load_state_dict({k: v.astype(np.float64) for k, v in state.items()})  # cast to the model's dtype
    assert other.params["0.W"].dtype == np.float32


def test_load_state_dict_names_missing_unexpected_and_misshaped_keys():
    net, state = small_net(RNG), small_net(RNG).state_dict()
    del state["3.body.0.b"]
    state["9.W"] = np.zeros(2)
    with pytest.raises(ValueError, match=r"missing '3.body.0.b'; unexpected '9.W' \(strict=False"):
        net.load_state_dict(state)
    bias = net.params["3.body.0.b"].copy()
    state["0.W"] = state["0.W"] + 1
    assert net.load_state_dict(state, strict=False) == (["3.body.0.b"], ["9.W"])
    np.testing.assert_array_equal(net.params["0.W"], state["0.W"])
    np.testing.assert_array_equal(net.params["3.body.0.b"], bias)  # missing: left as it was
    state["5.W"] = np.zeros((5, 3))
    with pytest.raises(ValueError, match=r"'5.W' has shape \(5, 3\) in the state, the model's is \(4, 3\)"):
        net.load_state_dict(state, strict=False)
    state["5.W"] = np.zeros((4, 3), np.int64)
    with pytest.raises(TypeError, match="'5.W' is int64 in the state, the model's is float32"):
        net.load_state_dict(state, strict=False)
    with pytest.raises(TypeError, match="expected a dict"):
        net.load_state_dict([1, 2])


def test_save_and_load_round_trip_without_pickle(tmp_path):
    net, other = small_net(np.random.default_rng(0)), small_net(np.random.default_rng(1))
    layers.save(net, tmp_path / "net.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz"]  # no temporary left behind
    layers.load(other, tmp_path / "net.npz")
    x = RNG.standard_normal((2, 1, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(net.eval().forward(x), other.eval().forward(x))
    np.savez(tmp_path / "pickled.npz", **{"0.W": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError, match="allow_pickle"):
        layers.load(other, tmp_path / "pickled.npz", strict=False)
    with pytest.raises(ValueError, match="should end in .npz"):
        layers.save(net, tmp_path / "net.bin")


def test_summary_gives_every_layers_output_shape_and_the_totals(capsys):
    net = small_net(RNG)
    layers.summary(net, (1, 6, 6))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["layer", "output", "parameters"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["0"].split()[-4:] == ["(4,", "6,", "6)", "40"]
    assert rows["3.body.0"].split()[-4:] == ["(4,", "6,", "6)", "148"]
    assert rows["4"].split()[-2:] == ["(4,)", "0"]
    assert rows["5"].split()[-2:] == ["(3,)", "15"]
    assert rows["total"].split()[-1] == "211"
    assert lines[-1].split()[-1] == "8"  # BatchNorm's running mean and variance, not trained
    assert summary_table(net, np.zeros((2, 1, 6, 6), np.float32)) == "\n".join(lines)


def test_a_container_inside_itself_is_named_not_a_recursion_error():
    from layers.containers import CycleError

    net = Sequential(ReLU())
    net.layers.append(net)
    assert repr(net).endswith("(1) Sequential(... itself ...)\n)")
    with pytest.raises(ValueError, match="is at both '\\(top\\)' and '1'"):
        _ = net.params
    with pytest.raises(CycleError, match="a container holds itself"):
        net.forward(np.ones((1, 2), np.float32))
    block = Residual([ReLU()])
    block.body.layers.append(block)
    with pytest.raises(CycleError):
        block.forward(np.ones((1, 2), np.float32))
