"""Every compiled kernel against its numpy twin: the same layer run with CHAINRULE_KERNELS=numba and =numpy gives
the same output, input gradient and parameter gradients (float32 within 1e-6 of the largest value, float64 within
1e-12), in either memory layout, for every geometry the layers' examples use; max pooling's ties go to the same
winner."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import layers.kernels as kernels
from layers import GELU, GRU, LSTM, RNN, AvgPool1D, AvgPool2D, Conv1D, Conv2D, MaxPool1D, MaxPool2D, ReLU
from layers.convolutional.conv import EXAMPLES_1D, EXAMPLES_2D
from layers.convolutional.pooling import POOL_EXAMPLES

pytest.importorskip("numba")


TOLERANCE = {np.float32: 1e-6, np.float64: 1e-12}


@pytest.fixture(autouse=True)
def kernels_at_every_size(monkeypatch):
    """The kernels run from their smallest sizes (SMALLEST), so that these small inputs reach them."""
    for family in list(kernels.SMALLEST):
        monkeypatch.setitem(kernels.SMALLEST, family, 0)


def both_paths(monkeypatch: pytest.MonkeyPatch, layer: Any, x: np.ndarray, dout_seed: int = 1) -> dict[str, tuple]:
    """The layer's output, input gradient and parameter gradients on each path, from one random dout."""
    results = {}
    for path in ("numba", "numpy"):
        monkeypatch.setenv("CHAINRULE_KERNELS", path)
        out = np.array(layer.forward(x))
        dout = np.random.default_rng(dout_seed).standard_normal(out.shape).astype(x.dtype)
        dx = np.array(layer.backward(dout))
        results[path] = (out, dx, {k: v.copy() for k, v in layer.grads.items()})
    return results


def assert_same(results: dict[str, tuple], dtype: Any) -> None:
    (out, dx, grads), (out_ref, dx_ref, grads_ref) = results["numba"], results["numpy"]
    pairs = [("out", out, out_ref), ("dx", dx, dx_ref), *((k, grads[k], grads_ref[k]) for k in grads_ref)]
    for name, got, want in pairs:
        assert got.shape == want.shape and got.dtype == want.dtype == dtype, name
        scale = max(float(np.abs(want).max()), 1.0)
        np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE[dtype] * scale, err_msg=name)


def channel_major(x: np.ndarray) -> np.ndarray:
    """x (N, C, ...) as a view of (C, N, ...) memory, the layout convolutions return."""
    return np.ascontiguousarray(x.swapaxes(0, 1)).swapaxes(0, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "channel-major"])
@pytest.mark.parametrize("cls, geometry", [(Conv1D, g) for g in EXAMPLES_1D] + [(Conv2D, g) for g in EXAMPLES_2D]
                         + [(Conv2D, (3, 1, 1, 1, 1))])
def test_convolution_kernels_match_numpy(monkeypatch, cls, geometry, layout, dtype):
    rng = np.random.default_rng(0)
    kernel, stride, padding, dilation, groups = geometry
    layer = cls(4, 6, kernel, stride, padding, dilation, groups, rng=rng, dtype=dtype)
    layer.params["b"][:] = rng.standard_normal(6)
    x = rng.standard_normal((3, 4, 9) if cls is Conv1D else (3, 4, 7, 6)).astype(dtype)
    assert_same(both_paths(monkeypatch, layer, x if layout == "contiguous" else channel_major(x)), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "channel-major"])
@pytest.mark.parametrize("cls", [MaxPool1D, MaxPool2D, AvgPool1D, AvgPool2D])
@pytest.mark.parametrize("geometry", [*POOL_EXAMPLES, (2, 2, 0), (2, 1, 1)])
def test_pooling_kernels_match_numpy(monkeypatch, cls, geometry, layout, dtype):
    kernel, stride, padding = geometry
    layer = cls(kernel, stride=stride, padding=padding)
    shape = (3, 2, 9) if cls in (MaxPool1D, AvgPool1D) else (3, 2, 8, 7)
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    assert_same(both_paths(monkeypatch, layer, x if layout == "contiguous" else channel_major(x)), dtype)


@pytest.mark.parametrize("geometry", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_max_pooling_ties_go_to_the_same_winner(monkeypatch, geometry):
    """Integer values in a small range: most windows hold ties; the gradient goes to the first of them in both."""
    kernel, stride, padding = geometry
    x = np.random.default_rng(0).integers(0, 3, (4, 3, 8, 8)).astype(np.float32)
    results = both_paths(monkeypatch, MaxPool2D(kernel, stride=stride, padding=padding), x)
    winners, winners_ref = results["numba"][1] != 0, results["numpy"][1] != 0
    np.testing.assert_array_equal(winners, winners_ref)
    assert np.count_nonzero(winners_ref) < x.size // 2  # ties happened: most inputs got nothing
    assert_same(results, np.float32)  # overlapping windows: the same sums, added in another order


def test_a_max_pooling_window_holding_nan_gives_nan(monkeypatch):
    monkeypatch.setenv("CHAINRULE_KERNELS", "numba")
    x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
    x[0, 0, 1, 1] = np.nan
    for layer in (MaxPool2D(2), MaxPool2D(3, stride=1, padding=1)):
        out = layer.forward(x)
        assert np.isnan(out[0, 0, 0, 0]) and not np.isnan(out[0, 1]).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "channel-major"])
def test_relu_kernel_matches_numpy(monkeypatch, layout, dtype):
    x = np.random.default_rng(0).standard_normal((16, 4, 32, 32)).astype(dtype)
    x[0, 0, 0, :4] = 0.0  # the kink: no gradient at 0 on either path
    assert_same(both_paths(monkeypatch, ReLU(), x if layout == "contiguous" else channel_major(x)), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_kernel_matches_numpy_in_both_tails(monkeypatch, dtype):
    x = np.random.default_rng(0).standard_normal((64, 32, 32)).astype(dtype) * 3
    x[0, 0, :6] = [-30, -12, -6, 6, 12, 30]  # Phi(x) down to 1e-33 (float64) and up to 1
    results = both_paths(monkeypatch, GELU(), x)
    assert_same(results, dtype)
    assert results["numba"][0][0, 0, 1] < 0  # x Phi(x) at -12: tiny, negative, not rounded to 0


def test_relu_kernel_takes_dout_in_another_layout(monkeypatch):
    monkeypatch.setenv("CHAINRULE_KERNELS", "numba")
    x = channel_major(np.random.default_rng(0).standard_normal((16, 4, 32, 32)).astype(np.float32))
    layer = ReLU()
    out = layer.forward(x)
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)  # C order, x is not
    np.testing.assert_array_equal(layer.backward(dout), dout * (x > 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("cls, features", [(LSTM, 1), (LSTM, 6), (GRU, 1), (GRU, 6), (RNN, 2)])
def test_recurrent_kernels_match_numpy(monkeypatch, cls, features, return_sequences, dtype):
    rng = np.random.default_rng(0)
    layer = cls(features, 8, return_sequences=return_sequences, rng=rng, dtype=dtype)
    for name in layer.bias_names():
        layer.params[name][:] = 0.5 * rng.standard_normal(layer.params[name].shape)
    x = rng.standard_normal((5, 7, features)).astype(dtype)
    assert_same(both_paths(monkeypatch, layer, x), dtype)
