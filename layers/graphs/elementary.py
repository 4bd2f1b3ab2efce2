"""Single-input elementary gates for writing the lecture's expressions as graphs.

Each states its local gradient; backward multiplies it by ``dout`` (the chain rule)
and never mutates ``dout``. Shapes and dtypes are preserved except by ``Sum``.
"""

from __future__ import annotations

import numpy as np

from ..base import Array, Layer, as_float_array, check_dout


class Exp(Layer, leaf=True):
    """out = exp(x); local gradient exp(x) = out. Caches out."""

    def __init__(self) -> None:
        super().__init__()
        self.out: Array | None = None

    def forward(self, x: Array) -> Array:
        self.out = out = np.exp(as_float_array(self, x))
        return out

    def backward(self, dout: Array) -> Array:
        out = self.cached(self.out)
        check_dout(self, dout, out.shape)
        return dout * out


class Reciprocal(Layer, leaf=True):
    """out = 1 / x; local gradient -1 / x**2 = -out**2. Caches out."""

    def __init__(self) -> None:
        super().__init__()
        self.out: Array | None = None

    def forward(self, x: Array) -> Array:
        x = as_float_array(self, x)
        self.out = out = 1 / x
        return out

    def backward(self, dout: Array) -> Array:
        out = self.cached(self.out)
        check_dout(self, dout, out.shape)
        return -dout * out * out

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        x = rng.uniform(0.5, 2.0, (batch, 2, 3)) * rng.choice([-1.0, 1.0], (batch, 2, 3))
        return cls(), (x,)


class Scale(Layer, leaf=True):
    """out = c * x for a constant c; local gradient c. Caches the input shape."""

    def __init__(self, c: float = 1.0) -> None:
        super().__init__()
        self.c = float(c)
        self.shape: tuple[int, ...] | None = None

    def __repr__(self) -> str:
        return f"Scale(c={self.c:g})"

    def forward(self, x: Array) -> Array:
        x = as_float_array(self, x)
        self.shape = x.shape
        return x * x.dtype.type(self.c)

    def backward(self, dout: Array) -> Array:
        check_dout(self, dout, self.cached(self.shape))
        return dout * dout.dtype.type(self.c)

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        return cls(-1.5), (rng.standard_normal((batch, 2, 3)),)


class AddConst(Layer, leaf=True):
    """out = x + c for a constant c; local gradient 1 (dout passes through). Caches the input shape."""

    def __init__(self, c: float = 0.0) -> None:
        super().__init__()
        self.c = float(c)
        self.shape: tuple[int, ...] | None = None

    def __repr__(self) -> str:
        return f"AddConst(c={self.c:g})"

    def forward(self, x: Array) -> Array:
        x = as_float_array(self, x)
        self.shape = x.shape
        return x + x.dtype.type(self.c)

    def backward(self, dout: Array) -> Array:
        check_dout(self, dout, self.cached(self.shape))
        return dout

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        return cls(1.0), (rng.standard_normal((batch, 2, 3)),)


class Square(Layer, leaf=True):
    """out = x**2; local gradient 2x. Caches x."""

    def __init__(self) -> None:
        super().__init__()
        self.x: Array | None = None

    def forward(self, x: Array) -> Array:
        self.x = x = as_float_array(self, x)
        return x * x

    def backward(self, dout: Array) -> Array:
        x = self.cached(self.x)
        check_dout(self, dout, x.shape)
        return 2 * dout * x


class Sum(Layer, leaf=True):
    """out = x.sum(axis) (all elements, a 0-d array, when axis is None); local gradient 1:
    dout is copied back to every summed element. Caches the input shape.
    """

    def __init__(self, axis: int | None = None) -> None:
        super().__init__()
        self.axis = axis
        self.shape: tuple[int, ...] | None = None

    def __repr__(self) -> str:
        return f"Sum(axis={self.axis})"

    def forward(self, x: Array) -> Array:
        x = as_float_array(self, x)
        if self.axis is not None and not -x.ndim <= self.axis < x.ndim:
            raise ValueError(f"{self!r}: axis {self.axis} is out of range for x of shape {x.shape}")
        self.shape = x.shape
        return np.asarray(x.sum(axis=self.axis))

    def backward(self, dout: Array) -> Array:
        shape = self.cached(self.shape)
        dout = np.asarray(dout)
        axis = None if self.axis is None else self.axis % len(shape)
        check_dout(self, dout, () if axis is None else shape[:axis] + shape[axis + 1:])
        kept = dout if self.axis is None else np.expand_dims(dout, self.axis)
        dx = np.empty(shape, dtype=dout.dtype)
        dx[...] = kept
        return dx
