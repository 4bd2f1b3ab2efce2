"""The gates: the lecture's numbers by hand, local gradients and broadcasting."""

import numpy as np

from layers import Add, Max, Mul


def test_lecture_example_chained_by_hand():
    # f(x, y, z) = (x + y) z at x = -2, y = 5, z = -4
    add, mul = Add(), Mul()
    q = add.forward(np.array(-2.0), np.array(5.0))
    f = mul.forward(q, np.array(-4.0))
    assert f == -12.0
    dq, dz = mul.backward(np.array(1.0))
    dx, dy = add.backward(dq)
    assert (float(dx), float(dy), float(dz)) == (-4.0, -4.0, 3.0)


def test_mul_swaps_its_operands():
    gate = Mul()
    gate.forward(np.array([2.0, 3.0]), np.array([5.0, 7.0]))
    dx, dy = gate.backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(dx, [5.0, 70.0])
    np.testing.assert_array_equal(dy, [2.0, 30.0])


def test_add_broadcast_reduces_gradient_to_input_shapes():
    gate = Add()
    x, b = np.ones((4, 3)), np.zeros(3)
    assert gate.forward(x, b).shape == (4, 3)
    dout = np.arange(12.0).reshape(4, 3)
    dx, db = gate.backward(dout)
    np.testing.assert_array_equal(dx, dout)
    np.testing.assert_array_equal(db, [18.0, 22.0, 26.0])


def test_mul_broadcast_over_stretched_axes():
    gate = Mul()
    x = np.arange(6.0).reshape(2, 1, 3)
    y = np.array([[1.0], [2.0]])  # (2, 1) -> broadcast to (2, 2, 3)
    out = gate.forward(x, y)
    assert out.shape == (2, 2, 3)
    dx, dy = gate.backward(np.ones((2, 2, 3)))
    assert dx.shape == (2, 1, 3) and dy.shape == (2, 1)
    np.testing.assert_array_equal(dx, np.full((2, 1, 3), 3.0))
    np.testing.assert_array_equal(dy, [[15.0], [15.0]])


def test_max_with_scalar_broadcast():
    gate = Max()
    out = gate.forward(np.array([-1.0, 2.0, 0.5]), np.array(0.0))
    np.testing.assert_array_equal(out, [0.0, 2.0, 0.5])
    dx, dy = gate.backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(dx, [0.0, 2.0, 3.0])
    assert dy.shape == () and float(dy) == 1.0
