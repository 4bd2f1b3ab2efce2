"""Two-input gates of the computational-graph lecture: Add, Mul, Max.

Each follows numpy broadcasting: ``forward(x, y)`` returns an array of the
broadcast shape and ``backward(dout)`` returns ``(dx, dy)`` summed back to the
shapes of x and y. Both inputs must share one floating dtype. Returned
gradients may share memory with ``dout``; treat them as read-only.
"""

from __future__ import annotations

import numpy as np

from ..base import Array, Layer, Mask, as_float_array, away_from_zero, check_dout


def unbroadcast(grad: Array, shape: tuple[int, ...]) -> Array:
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``."""
    if grad.shape == shape:
        return grad
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=stretched, keepdims=True) if stretched else grad


def gate_inputs(gate: Layer, x: Array, y: Array) -> tuple[Array, Array, tuple[int, ...]]:
    """Check two gate inputs: floating, one dtype, broadcastable. Returns them and the output shape."""
    x, y = as_float_array(gate, x, "x"), as_float_array(gate, y, "y")
    if x.dtype != y.dtype:
        raise TypeError(f"{gate!r}: x is {x.dtype} but y is {y.dtype}; a gate needs one dtype")
    try:
        shape = np.broadcast_shapes(x.shape, y.shape)
    except ValueError:
        raise ValueError(f"{gate!r}: x of shape {x.shape} and y of shape {y.shape} do not broadcast") from None
    return x, y, shape


class TwoInputGate(Layer, register=False):
    """Shared example for the two-input gates: x of shape (N, 2, 3), y of shape (3,) broadcast."""

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        return cls(), (rng.standard_normal((batch, 2, 3)), rng.standard_normal(3))


class Add(TwoInputGate, leaf=True):
    """out = x + y. Gradient distributor: dx = dy = dout (reduced to each shape). Caches the shapes."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: tuple[tuple[int, ...], ...] | None = None

    def forward(self, x: Array, y: Array) -> Array:
        x, y, shape = gate_inputs(self, x, y)
        self.shapes = (x.shape, y.shape, shape)
        return x + y

    def backward(self, dout: Array) -> tuple[Array, Array]:
        x_shape, y_shape, shape = self.cached(self.shapes)
        check_dout(self, dout, shape)
        return unbroadcast(dout, x_shape), unbroadcast(dout, y_shape)


class Mul(TwoInputGate, leaf=True):
    """out = x * y. Gradient switcher: dx = dout * y, dy = dout * x. Caches x and y."""

    def __init__(self) -> None:
        super().__init__()
        self.xy: tuple[Array, Array] | None = None

    def forward(self, x: Array, y: Array) -> Array:
        x, y, _ = gate_inputs(self, x, y)
        self.xy = (x, y)
        return x * y

    def backward(self, dout: Array) -> tuple[Array, Array]:
        x, y = self.cached(self.xy)
        check_dout(self, dout, np.broadcast_shapes(x.shape, y.shape))
        return unbroadcast(dout * y, x.shape), unbroadcast(dout * x, y.shape)


class Max(TwoInputGate, leaf=True):
    """out = max(x, y). Gradient router: dout goes to the larger input, the other gets 0.

    Ties (x == y) route the whole gradient to x. Caches the winner mask x >= y and the shapes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.mask: Mask | None = None
        self.shapes: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())

    def forward(self, x: Array, y: Array) -> Array:
        x, y, _ = gate_inputs(self, x, y)
        self.mask, self.shapes = x >= y, (x.shape, y.shape)
        return np.maximum(x, y)

    def backward(self, dout: Array) -> tuple[Array, Array]:
        mask = self.cached(self.mask)
        check_dout(self, dout, mask.shape)
        # products with the mask, not np.where: a random mask makes np.where's branches mispredict
        return unbroadcast(dout * mask, self.shapes[0]), unbroadcast(dout * ~mask, self.shapes[1])

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        y = rng.standard_normal(3)
        return cls(), (y + away_from_zero(rng, (batch, 2, 3)), y)



class MatMul(Layer, leaf=True):
    """out = x @ y for x of shape (N, K) or (K,) and y of shape (K, M) or (K,).

    dx = dout @ y.T and dy = x.T @ dout, with vectors treated as a row (x) or a
    column (y), so for W x the gradients are outer(dout, x) and W.T dout. Caches x and y.
    """

    def __init__(self) -> None:
        super().__init__()
        self.xy: tuple[Array, Array] | None = None

    def forward(self, x: Array, y: Array) -> Array:
        x, y = as_float_array(self, x, "x"), as_float_array(self, y, "y")
        if x.dtype != y.dtype:
            raise TypeError(f"{self!r}: x is {x.dtype} but y is {y.dtype}; a gate needs one dtype")
        if x.ndim not in (1, 2) or y.ndim not in (1, 2) or x.shape[-1] != y.shape[0]:
            raise ValueError(f"{self!r}: expected x of shape (N, K) or (K,) and y of shape (K, M) or (K,), "
                             f"got {x.shape} and {y.shape}")
        self.xy = (x, y)
        return x @ y

    def backward(self, dout: Array) -> tuple[Array, Array]:
        x, y = self.cached(self.xy)
        x2 = x if x.ndim == 2 else x[None, :]
        y2 = y if y.ndim == 2 else y[:, None]
        check_dout(self, np.asarray(dout), x.shape[:-1] + y.shape[1:])
        d2 = np.reshape(dout, (x2.shape[0], y2.shape[1]))
        return (d2 @ y2.T).reshape(x.shape), (x2.T @ d2).reshape(y.shape)

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        return cls(), (rng.standard_normal((batch, 4)), rng.standard_normal((4, 2)))
