"""Property tests: shapes and dtypes preserved, dout and inputs never mutated, bounded outputs."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from layers import ELU, Add, LeakyReLU, Max, Mul, ReLU, Sigmoid, Tanh

ELEMENTWISE = [ReLU, Sigmoid, Tanh, ELU, LeakyReLU]
floats = st.floats(-50, 50, allow_nan=False, width=32)
dtypes = st.sampled_from([np.float32, np.float64])


@st.composite
def array_and_dout(draw):
    dtype = draw(dtypes)
    shape = draw(array_shapes(min_dims=1, max_dims=4, max_side=5))
    x = draw(arrays(dtype, shape, elements=floats))
    dout = draw(arrays(dtype, shape, elements=floats))
    return x, dout


@settings(deadline=None, max_examples=40)
@given(st.sampled_from(ELEMENTWISE), array_and_dout())
def test_elementwise_preserves_shape_dtype_and_arguments(cls, data):
    x, dout = data
    x0, dout0 = x.copy(), dout.copy()
    layer = cls()
    out = layer.forward(x)
    dx = layer.backward(dout)
    assert out.shape == dx.shape == x.shape
    assert out.dtype == dx.dtype == x.dtype
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dout, dout0)


@settings(deadline=None, max_examples=40)
@given(arrays(np.float64, array_shapes(max_dims=3), elements=st.floats(-1000, 1000)))
def test_sigmoid_stays_in_closed_unit_interval_without_warnings(x):
    out = Sigmoid().forward(x)
    assert np.all((out >= 0) & (out <= 1))
    inner = np.abs(x) < 30  # away from saturation the output is strictly inside (0, 1)
    assert np.all((out[inner] > 0) & (out[inner] < 1))


@settings(deadline=None, max_examples=30)
@given(arrays(np.float64, array_shapes(max_dims=3), elements=floats))
def test_leaky_relu_zero_slope_is_relu(x):
    np.testing.assert_array_equal(LeakyReLU(0.0).forward(x), ReLU().forward(x))


@st.composite
def broadcast_pair(draw):
    shape = draw(array_shapes(min_dims=1, max_dims=3, max_side=4))
    y_shape = tuple(draw(st.sampled_from([1, n])) for n in shape[draw(st.integers(0, len(shape))):])
    dtype = draw(dtypes)
    x = draw(arrays(dtype, shape, elements=floats))
    y = draw(arrays(dtype, y_shape, elements=floats))
    return x, y


@settings(deadline=None, max_examples=40)
@given(st.sampled_from([Add, Mul, Max]), broadcast_pair())
def test_gate_gradients_match_input_shapes(cls, pair):
    x, y = pair
    gate = cls()
    out = gate.forward(x, y)
    assert out.shape == np.broadcast_shapes(x.shape, y.shape) and out.dtype == x.dtype
    dout = np.ones_like(out)
    dout0 = dout.copy()
    dx, dy = gate.backward(dout)
    assert dx.shape == x.shape and dy.shape == y.shape
    assert dx.dtype == dy.dtype == x.dtype
    np.testing.assert_array_equal(dout, dout0)
    if cls is Add:  # each gradient counts how many outputs its element fed
        assert dx.sum() == dy.sum() == out.size
    if cls is Max:  # the router hands every unit of gradient to exactly one input
        assert dx.sum() + dy.sum() == out.size
