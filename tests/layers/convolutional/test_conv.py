"""Convolution, pooling, shape layers and spatial normalization: against naive loops, closed forms, the
course's published numbers, and PyTorch in float64 where it is installed."""

import numpy as np
import pytest

from layers import (
    AvgPool1D,
    AvgPool2D,
    BatchNorm,
    Conv1D,
    Conv2D,
    Flatten,
    GlobalAvgPool,
    GroupNorm,
    MaxPool1D,
    MaxPool2D,
    ReLU,
    Reshape,
    Sequential,
)
from layers.gradcheck import assert_gradients
from tests import conv_reference as ref
from tests.torch_reference import torch_reference

CONV_CASES = [  # cls, in, out, kernel, stride, padding, dilation, groups, input shape
    (Conv1D, 3, 4, 3, 1, 0, 1, 1, (2, 3, 7)),
    (Conv1D, 4, 6, 3, 2, 1, 2, 2, (2, 4, 9)),
    (Conv1D, 2, 2, 1, 1, 0, 1, 2, (3, 2, 5)),
    (Conv2D, 3, 2, 3, 1, 1, 1, 1, (2, 3, 5, 5)),
    (Conv2D, 2, 4, (3, 2), (2, 1), (1, 0), (1, 2), 2, (2, 2, 6, 5)),
    (Conv2D, 4, 4, 2, 2, 0, 1, 4, (1, 4, 4, 4)),
]


def make_conv(case, rng):
    cls, cin, cout, k, s, p, d, g, shape = case
    layer = cls(cin, cout, k, stride=s, padding=p, dilation=d, groups=g, rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.standard_normal(cout)
    return layer, rng.standard_normal(shape)


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0].__name__}-{c[1:8]}")
def test_convolution_matches_the_naive_loops(case, rng):
    layer, x = make_conv(case, rng)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    g = layer.geometry
    expected = ref.conv(x, layer.params["W"], layer.params["b"], g.stride, g.padding, g.dilation, layer.groups,
                        dout)
    np.testing.assert_allclose(out, expected[0], rtol=1e-12, atol=1e-12)
    dx = layer.backward(dout)
    for got, want in zip((dx, layer.grads["W"], layer.grads["b"]), expected[1:], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0].__name__}-{c[1:8]}")
def test_convolution_gradients_check(case, rng):
    layer, x = make_conv(case, rng)
    assert_gradients(layer, x)


def test_conv_forward_matches_the_course_numbers():
    """The course's conv_forward_naive check: x, w, b from linspace, stride 2, pad 1."""
    x = np.linspace(-0.1, 0.5, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    w = np.linspace(-0.2, 0.3, num=3 * 3 * 4 * 4).reshape(3, 3, 4, 4)
    b = np.linspace(-0.1, 0.2, num=3)
    layer = Conv2D(3, 3, 4, stride=2, padding=1, dtype=np.float64)
    layer.params["W"][...], layer.params["b"][...] = w, b
    correct = np.array([[[[-0.08759809, -0.10987781], [-0.18387192, -0.2109216]],
                         [[0.21027089, 0.21661097], [0.22847626, 0.23004637]],
                         [[0.50813986, 0.54309974], [0.64082444, 0.67101435]]],
                        [[[-0.98053589, -1.03143541], [-1.19128892, -1.24695841]],
                         [[0.69108355, 0.66880383], [0.59480972, 0.56776003]],
                         [[2.36270298, 2.36904306], [2.38090835, 2.38247847]]]])
    np.testing.assert_allclose(layer.forward(x), correct, rtol=1e-7)


def test_max_pool_forward_matches_the_course_numbers():
    x = np.linspace(-0.3, 0.4, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    correct = np.array([[[[-0.26315789, -0.24842105], [-0.20421053, -0.18947368]],
                         [[-0.14526316, -0.13052632], [-0.08631579, -0.07157895]],
                         [[-0.02736842, -0.01263158], [0.03157895, 0.04631579]]],
                        [[[0.09052632, 0.10526316], [0.14947368, 0.16421053]],
                         [[0.20842105, 0.22315789], [0.26736842, 0.28210526]],
                         [[0.32631579, 0.34105263], [0.38526316, 0.4]]]])
    np.testing.assert_allclose(MaxPool2D(2, stride=2).forward(x), correct, rtol=1e-7)


POOL_CASES = [  # cls, kernel, stride, padding, input shape
    (MaxPool1D, 3, None, 0, (2, 3, 9)), (MaxPool1D, 3, 2, 1, (2, 2, 8)),
    (AvgPool1D, 2, 1, 1, (2, 3, 5)), (MaxPool2D, 2, None, 0, (2, 2, 4, 6)),
    (MaxPool2D, (3, 2), (2, 1), (1, 1), (2, 2, 5, 5)), (AvgPool2D, 3, 2, 1, (2, 3, 5, 6)),
    # disjoint windows that leave inputs out (a last row and column, padding, a stride past the kernel)
    (MaxPool2D, 2, None, 0, (2, 2, 5, 7)), (AvgPool2D, 2, None, 0, (2, 2, 5, 7)), (MaxPool1D, 2, None, 1, (2, 3, 5)),
    (AvgPool1D, 2, 3, 0, (2, 2, 8)), (MaxPool1D, 2, 3, 1, (2, 2, 9)), (AvgPool2D, (1, 2), None, 0, (2, 2, 3, 4)),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: f"{c[0].__name__}-{c[1:4]}")
def test_pooling_matches_the_naive_loops_and_checks(case, rng):
    cls, k, s, p, shape = case
    layer = cls(k, stride=s, padding=p)
    x = rng.permutation(int(np.prod(shape))).reshape(shape) / 10.0  # distinct values: no ties
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    g = layer.geometry
    want_out, want_dx = ref.pool(x, g.kernel, g.stride, g.padding, "max" if "Max" in cls.__name__ else "avg", dout)
    np.testing.assert_allclose(out, want_out, rtol=1e-12)
    np.testing.assert_allclose(layer.backward(dout), want_dx, rtol=1e-12, atol=1e-12)
    assert_gradients(layer, x)


def test_a_max_pool_tie_sends_the_gradient_to_the_first_input():
    layer = MaxPool1D(2)
    layer.forward(np.array([[[1.0, 1.0, 3.0, 2.0]]]))
    np.testing.assert_array_equal(layer.backward(np.array([[[5.0, 7.0]]])), [[[5.0, 0.0, 7.0, 0.0]]])


def test_float32_stays_float32(rng):
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    net = Sequential(Conv2D(3, 4, 3, padding=1, rng=0), BatchNorm(4), MaxPool2D(2), GroupNorm(2, 4),
                     AvgPool2D(3), GlobalAvgPool(), Reshape([2, 2]), Flatten())
    out = net.forward(x)
    assert out.dtype == np.float32 and out.shape == (2, 4)
    assert net.backward(np.ones_like(out)).dtype == np.float32
    assert all(g.dtype == np.float32 for g in net.grads.values())


def test_a_conv_stack_keeps_its_products_channel_major_and_its_values(rng):
    """The layout the windows module promises: conv outputs, pooled values and input gradients stay (C, N, ...)
    in memory (an N-major copy would transpose on every pass), with the values of C-ordered inputs."""
    def stack():
        return Sequential(Conv2D(3, 4, 3, padding=1, rng=0, dtype=np.float64), ReLU(), MaxPool2D(2),
                          Conv2D(4, 5, 3, padding=1, rng=1, dtype=np.float64), AvgPool2D(2))

    def channel_major(a):  # channels outermost in memory, then examples, then positions
        return a.strides[1] > a.strides[0] > a.strides[2]

    net, x = stack(), rng.standard_normal((3, 3, 8, 8))
    hidden = net.layers[2].forward(net.layers[1].forward(net.layers[0].forward(x)))
    out = net.layers[4].forward(net.layers[3].forward(hidden))
    assert channel_major(hidden) and channel_major(out)
    dout = rng.standard_normal(out.shape)
    d_hidden = net.layers[3].backward(net.layers[4].backward(dout))
    d_relu = net.layers[2].backward(np.ascontiguousarray(d_hidden))  # as an Affine's gradient would come
    assert channel_major(d_hidden) and channel_major(d_relu)
    reference = stack()  # the same weights, fed C-ordered copies between layers
    h = x
    for layer in reference.layers:
        h = np.ascontiguousarray(layer.forward(h))
    g = np.ascontiguousarray(dout)
    for layer in reference.layers[:0:-1]:
        g = np.ascontiguousarray(layer.backward(g))
    np.testing.assert_allclose(out, h, rtol=1e-12)
    np.testing.assert_allclose(net.layers[1].backward(d_relu), g, rtol=1e-12)


def test_spatial_batchnorm_normalizes_each_channel_over_batch_and_positions(rng):
    x = 3 + 2 * rng.standard_normal((4, 3, 5, 5))
    out = BatchNorm(3, dtype=np.float64).forward(x)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, rtol=1e-4)
    assert_gradients(BatchNorm(3, dtype=np.float64), x[:2, :, :3, :3])
    assert_gradients(BatchNorm(3, dtype=np.float64), x[:2, :, :3, :3], mode="eval")


def test_group_norm_normalizes_each_group_of_each_example(rng):
    x = 1 + rng.standard_normal((2, 6, 4))
    out = GroupNorm(3, 6, dtype=np.float64).forward(x).reshape(2, 3, -1)
    np.testing.assert_allclose(out.mean(axis=2), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=2), 1, rtol=1e-4)


@pytest.mark.parametrize("make, shape, message", [
    (lambda: Conv2D(3, 4, 3), (2, 3, 5),
     r"Conv2D\(3, 4, kernel_size=3\): expected x of shape \(N, 3, H, W\), got \(2, 3, 5\)"),
    (lambda: Conv1D(3, 4, 3), (2, 2, 5), r"expected x of shape \(N, 3, L\), got \(2, 2, 5\)"),
    (lambda: Conv1D(1, 1, 5), (2, 1, 3), r"the kernel spans 5 positions .* padded input has 3"),
    (lambda: MaxPool2D(4), (1, 1, 3, 3), r"the kernel spans 4 positions .* padded input has 3"),
    (lambda: GroupNorm(2, 4), (2, 3, 5), r"expected x of shape \(N, 4\) or \(N, 4, \*spatial\), got \(2, 3, 5\)"),
    (lambda: Reshape([4, 2]), (2, 3, 3), r"cannot reshape examples of shape \(3, 3\) \(9 values\) to \(4, 2\)"),
])
def test_bad_shapes_are_errors_naming_the_layer_and_the_shapes(make, shape, message):
    with pytest.raises(ValueError, match=message):
        make().forward(np.zeros(shape, np.float32))


@pytest.mark.parametrize("make, message", [
    (lambda: Conv2D(4, 6, 3, groups=4), r"Conv2D: groups=4 must divide in_channels=4 and out_channels=6"),
    (lambda: Conv1D(3, 4, 0), r"Conv1D: kernel_size must be an integer >= 1 or 1 of them, got 0"),
    (lambda: Conv2D(3, 4, (3, 3, 3)), r"kernel_size must be an integer >= 1 or 2 of them"),
    (lambda: Conv2D(3, 4, 3, padding="same"), r"Conv2D: padding must be an integer >= 0 or 2 of them, got 'same'"),
    (lambda: Conv1D(3, 4, "3"), r"Conv1D: kernel_size must be an integer >= 1 or 1 of them, got '3'"),
    (lambda: MaxPool2D(2, stride=["a", 1]), r"MaxPool2D: stride must be an integer >= 1 or 2 of them"),
    (lambda: GroupNorm(4, 6), r"GroupNorm: num_groups=4 must divide num_channels=6"),
    (lambda: MaxPool1D(2, padding=2), r"padding 2 must be at most half the kernel size 2"),
])
def test_bad_arguments_are_errors_naming_the_layer(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0].__name__}-{c[1:8]}")
def test_convolution_equals_pytorch_in_float64(case, rng, request):
    layer, x = make_conv(case, rng)
    cls, cin, cout, k, s, p, d, g, _ = case
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)

    def compute(torch):
        conv = (torch.nn.Conv1d if cls is Conv1D else torch.nn.Conv2d)(cin, cout, k, s, p, d, g).double()
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(layer.params["W"]))
            conv.bias.copy_(torch.from_numpy(layer.params["b"]))
        xt = torch.from_numpy(x).requires_grad_()
        ref = conv(xt)
        ref.backward(torch.from_numpy(dout))
        return {"out": ref.detach().numpy(), "dx": xt.grad.numpy(), "W": conv.weight.grad.numpy(),
                "b": conv.bias.grad.numpy()}

    theirs = torch_reference(f"conv_{request.node.callspec.id}", compute)
    np.testing.assert_allclose(out, theirs["out"], rtol=1e-10, atol=1e-12)
    dx = layer.backward(dout)
    np.testing.assert_allclose(dx, theirs["dx"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], theirs["W"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], theirs["b"], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: f"{c[0].__name__}-{c[1:4]}")
def test_pooling_equals_pytorch_in_float64(case, rng, request):
    cls, k, s, p, shape = case
    x = rng.standard_normal(shape)
    layer = cls(k, stride=s, padding=p)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)

    def compute(torch):
        pool = getattr(torch.nn, cls.__name__.replace("1D", "1d").replace("2D", "2d"))(k, stride=s, padding=p)
        xt = torch.from_numpy(x).requires_grad_()
        ref = pool(xt)
        ref.backward(torch.from_numpy(dout))
        return {"out": ref.detach().numpy(), "dx": xt.grad.numpy()}

    theirs = torch_reference(f"pool_{request.node.callspec.id}", compute)
    np.testing.assert_allclose(out, theirs["out"], rtol=1e-12)
    np.testing.assert_allclose(layer.backward(dout), theirs["dx"], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("which", ["BatchNorm", "GroupNorm"])
def test_spatial_normalization_equals_pytorch_in_float64(which, mode, rng):
    x = 1 + 2 * rng.standard_normal((3, 4, 5, 2))
    ours = BatchNorm(4, dtype=np.float64) if which == "BatchNorm" else GroupNorm(2, 4, dtype=np.float64)
    gamma, beta = 1 + 0.1 * rng.standard_normal(4), 0.1 * rng.standard_normal(4)
    ours.params["gamma"][...], ours.params["beta"][...] = gamma, beta
    for _ in range(2):  # move the running statistics off their start
        ours.forward(x * 1.5)
    ours.train(mode == "train")
    dout = rng.standard_normal(x.shape)

    def compute(torch):
        theirs = torch.nn.BatchNorm2d(4).double() if which == "BatchNorm" else torch.nn.GroupNorm(2, 4).double()
        with torch.no_grad():
            theirs.weight.copy_(torch.from_numpy(gamma))
            theirs.bias.copy_(torch.from_numpy(beta))
        for _ in range(2):
            theirs(torch.from_numpy(x * 1.5))
        theirs.train(mode == "train")
        xt = torch.from_numpy(x).requires_grad_()
        out = theirs(xt)
        out.backward(torch.from_numpy(dout))
        running = {"running_mean": theirs.running_mean.numpy(), "running_var": theirs.running_var.numpy()} \
            if which == "BatchNorm" else {}
        return {"out": out.detach().numpy(), "dx": xt.grad.numpy(), "gamma": theirs.weight.grad.numpy(),
                "beta": theirs.bias.grad.numpy(), **running}

    theirs = torch_reference(f"spatial_{which}_{mode}", compute)
    np.testing.assert_allclose(ours.forward(x), theirs["out"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.backward(dout), theirs["dx"], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ours.grads["gamma"], theirs["gamma"], rtol=1e-9)
    np.testing.assert_allclose(ours.grads["beta"], theirs["beta"], rtol=1e-9)
    if which == "BatchNorm":
        np.testing.assert_allclose(ours.buffers["running_mean"], theirs["running_mean"], rtol=1e-12)
        np.testing.assert_allclose(ours.buffers["running_var"], theirs["running_var"], rtol=1e-12)


CONV_CONFIG = """
[data]
source = "npz"
path = "images.npz"
standardize = "channel"
[model]
imports = ["slowlayer"]
layers = [{ type = "Conv2D", out_channels = 4, kernel_size = 3, padding = 1 }, { type = "BatchNorm" },
          { type = "ReLU" }, { type = "SlowIdentity" }, { type = "MaxPool2D", kernel_size = 2 },
          { type = "Dropout", p = 0.1 }, { type = "Affine", out_features = 3 }]
[optim]
type = "adam"
lr = 0.01
[solver]
epochs = 10
batch_size = 20
verbose = false
[output]
plot = true
checkpoint_seconds = 0.0
"""


def image_data(folder, rng):
    """A config and an npz of 2-channel 6x6 images; the user layers' folder on sys.path for in-process loads."""
    import sys

    from tests.subprocess_runs import ROOT

    if str(ROOT / "tests" / "userlayers") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests" / "userlayers"))
    X = rng.standard_normal((120, 2, 6, 6))
    y = (X[:, 0, :3].mean(axis=(1, 2)) > 0).astype(np.int64) + (X[:, 1, 3:].mean(axis=(1, 2)) > 0)
    np.savez(folder / "images.npz", X_train=X[:90], y_train=y[:90], X_test=X[90:], y_test=y[90:])
    (folder / "conv.toml").write_text(CONV_CONFIG)
    return folder / "conv.toml", X[90:], y[90:]


@pytest.mark.slow
def test_a_conv_run_is_killed_resumed_bit_identical_and_loads_back(tmp_path, rng):
    from chainrule import load_run
    from tests.subprocess_runs import assert_same_checkpoint_arrays, run_killed_and_resumed

    cfg, X_test, _ = image_data(tmp_path, rng)
    full, killed = run_killed_and_resumed(cfg, tmp_path, epochs=10)
    files = assert_same_checkpoint_arrays(full, killed)
    assert "param/0.W" in files and "buffer/1.running_var" in files
    with np.load(full / "checkpoint.npz") as a:
        assert a["pre/mean"].shape == (1, 2, 1, 1)  # per channel
    model = load_run(full)
    assert model.input_shape == (2, 6, 6)
    np.testing.assert_array_equal(model.predict(X_test), load_run(killed).predict(X_test))
    np.testing.assert_array_equal(model.predict(X_test.reshape(30, -1)), model.predict(X_test))  # csv-like rows


@pytest.mark.slow
def test_evaluate_draws_the_filters_and_saliency_of_a_conv_run(tmp_path, rng):
    pytest.importorskip("matplotlib")
    from chainrule.cli import main
    from chainrule.trained.model import load_run
    from chainrule.trained.pictures import saliency
    from tests.subprocess_runs import cli

    cfg, X_test, _ = image_data(tmp_path, rng)
    assert cli(cfg, "--set", f"output.dir='{tmp_path / 'r'}'").returncode == 0
    assert main(["evaluate", str(tmp_path / "r")]) == 0
    for name in ("filters.png", "saliency.png", "confusion.png"):
        assert (tmp_path / "r" / name).stat().st_size > 1000, name
    model = load_run(tmp_path / "r")
    predicted, grads = saliency(model, X_test[:2])
    # the saliency is d score / d raw input: compare one entry with a centred difference
    h, index = 1e-2, (0, 1, 2, 3)
    plus, minus = X_test[:2].copy(), X_test[:2].copy()
    plus[index] += h
    minus[index] -= h
    numeric = (model.scores(plus)[0, predicted[0]] - model.scores(minus)[0, predicted[0]]) / (2 * h)
    assert grads[index] == pytest.approx(numeric, rel=2e-2, abs=1e-3)


def test_a_conv_config_error_names_the_layer_position(tmp_path, rng):
    from tests.subprocess_runs import cli

    cfg, _, _ = image_data(tmp_path, rng)
    cfg.write_text(CONV_CONFIG.replace("kernel_size = 3, padding = 1", "kernel_size = 9"))
    result = cli(cfg, "--set", f"output.dir='{tmp_path / 'r'}'")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "model.layers[0] (Conv2D)" in result.stderr and "kernel spans 9 positions" in result.stderr
    assert not (tmp_path / "r").exists()
