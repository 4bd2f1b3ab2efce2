"""Activations: ReLU, LeakyReLU, ELU, Sigmoid, Tanh, GELU elementwise, and Softmax along an axis.

Each takes x of any shape and floating dtype, returns out of the same shape and
dtype, and backward returns dx = dout * f'(x) without touching dout.
Non-finite input propagates as IEEE arithmetic does (NaN in, NaN out);
Sigmoid maps -inf and +inf to exactly 0 and 1.

Sigmoid, Tanh and ELU cache their output for backward and return it as a read-only view (no copy): writing
into it raises instead of silently changing the gradient; copy it first (``out.copy()``) to modify it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtr, softmax

from .base import Array, Layer, Mask, as_float_array, away_from_zero, check_dout, read_only
from .kernels import compiled


def kink_example(cls: type[Layer], rng: np.random.Generator, batch: int) -> tuple[Layer, tuple[Array, ...]]:
    """Inputs kept at least 0.1 away from the kink at 0, so centred differences never cross it."""
    return cls(), (away_from_zero(rng, (batch, 2, 3)),)


class ReLU(Layer, leaf=True):
    """out = max(0, x); the gradient passes where x > 0 (0 at x == 0). Caches the mask x > 0."""

    def __init__(self) -> None:
        super().__init__()
        self.mask: Mask | None = None

    def forward(self, x: Array) -> Array:
        x = as_float_array(self, x)
        kernels = compiled("activations", x.size)
        both = kernels.relu(x) if kernels else None
        if both:
            out, self.mask = both
            return out
        self.mask = x > 0
        return np.maximum(x, 0, dtype=x.dtype)

    def backward(self, dout: Array) -> Array:
        mask = self.cached(self.mask)
        check_dout(self, dout, mask.shape)
        kernels = compiled("activations", mask.size)
        dx = kernels.relu_backward(dout, mask) if kernels else None
        return dout * mask if dx is None else dx

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        return kink_example(cls, rng, batch)


class LeakyReLU(Layer, leaf=True):
    """out = x where x > 0 else negative_slope * x (the lecture draws max(0.1x, x)).

    The slope at x == 0 is taken as negative_slope. Caches the mask x > 0.
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        if not np.isfinite(negative_slope):
            raise ValueError(f"LeakyReLU: negative_slope must be finite, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)
        self.mask: Mask | None = None

    def __repr__(self) -> str:
        return f"LeakyReLU(negative_slope={self.negative_slope})"

    def forward(self, x: Array) -> Array:
        x = as_float_array(self, x)
        self.mask = x > 0
        out = x * x.dtype.type(self.negative_slope)
        # max(x, slope x) for slope <= 1, min for slope > 1: np.where on a random mask took 13x as long
        # (1740 against 130 µs at 256x1024 float32)
        return (np.maximum if self.negative_slope <= 1 else np.minimum)(out, x, out=out)

    def backward(self, dout: Array) -> Array:
        mask = self.cached(self.mask)
        check_dout(self, dout, mask.shape)
        slope = dout.dtype.type(self.negative_slope)
        return dout * (mask + ~mask * slope)  # f'(x): 1 where x > 0, slope elsewhere

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        return cls(0.1), (away_from_zero(rng, (batch, 2, 3)),)


class ELU(Layer, leaf=True):
    """out = x where x > 0 else alpha * (exp(x) - 1); alpha >= 0.

    f'(x) = 1 where x > 0 else out + alpha. Caches out (out > 0 exactly where x > 0).
    """

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        if not (np.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"ELU: alpha must be a finite number >= 0, got {alpha!r}")
        self.alpha = float(alpha)
        self.out: Array | None = None

    def __repr__(self) -> str:
        return f"ELU(alpha={self.alpha})"

    def forward(self, x: Array) -> Array:
        x = as_float_array(self, x)
        negative = np.minimum(x, 0)
        np.expm1(negative, out=negative)
        negative *= x.dtype.type(self.alpha)
        out = np.maximum(x, 0)
        out += negative  # x + 0 where x > 0, 0 + alpha (exp(x) - 1) elsewhere
        self.out = out
        return read_only(out)

    def backward(self, dout: Array) -> Array:
        out = self.cached(self.out)
        check_dout(self, dout, out.shape)
        positive = out > 0
        local = np.minimum(out, 0)               # f'(x): out + alpha where x <= 0 (min: no inf * 0 at x = inf),
        local += out.dtype.type(self.alpha)
        local *= ~positive
        local += positive                         # 1 where x > 0 (exact: 0 + 1)
        local *= dout
        return local

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        return cls(1.5), (away_from_zero(rng, (batch, 2, 3)),)


class Sigmoid(Layer, leaf=True):
    """out = 1 / (1 + exp(-x)), computed as written, in place: full relative precision in both tails (for
    x = -40, exp(40) is exact to rounding and so is its reciprocal; for x = 40 the result rounds to 1), and
    -inf and +inf give exactly 0 and 1. Where exp(-x) overflows (x below about -88 in float32, -709 in
    float64) the result is 0 instead of a subnormal.

    f'(x) = out * (1 - out). Caches out.
    """

    def __init__(self) -> None:
        super().__init__()
        self.out: Array | None = None

    def forward(self, x: Array) -> Array:
        x = as_float_array(self, x)
        # In place, one array for every step (an array even for 0-d input): 1.3x faster than
        # 1 / (1 + np.exp(-x)) at 256x1024 float32 (284-344 against 428-431 µs)
        out = np.negative(x, out=np.empty_like(x))
        # exp(-x) = inf for very negative x: 1 / inf = 0, as it should be; for large x, exp(-x) underflows
        # to 0 and the result is 1: neither is an error, even under np.errstate(all="raise")
        with np.errstate(over="ignore", under="ignore"):
            np.exp(out, out=out)
        out += x.dtype.type(1)
        np.reciprocal(out, out=out)
        self.out = out
        return read_only(out)

    def backward(self, dout: Array) -> Array:
        out = self.cached(self.out)
        check_dout(self, dout, out.shape)
        with np.errstate(under="ignore"):  # out * (1 - out) below the smallest normal number is just that
            return dout * out * (1 - out)


class Tanh(Layer, leaf=True):
    """out = tanh(x); f'(x) = 1 - out**2. Caches out."""

    def __init__(self) -> None:
        super().__init__()
        self.out: Array | None = None

    def forward(self, x: Array) -> Array:
        self.out = out = np.tanh(as_float_array(self, x))
        return read_only(out)

    def backward(self, dout: Array) -> Array:
        out = self.cached(self.out)
        check_dout(self, dout, out.shape)
        return dout * (1 - out * out)


class GELU(Layer, leaf=True):
    """out = x * Phi(x), Phi the standard normal's CDF, as PyTorch's ``GELU()``; with ``approximate="tanh"``,
    out = x/2 * (1 + t), t = tanh(sqrt(2/pi) (x + 0.044715 x^3)), as ``GELU(approximate="tanh")``.

    f'(x) = Phi(x) + x phi(x) (phi the normal's density); for tanh, (1 + t)/2 + x/2 (1 - t^2) u'(x). Caches x
    and Phi(x) (or t): scipy's normal CDF is most of the layer's time, so backward does not compute it again.
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        self.cache: tuple[Array, Array] | None = None

    def forward(self, x: Array) -> Array:
        x = as_float_array(self, x)
        if self.approximate == "tanh":
            t = np.tanh(gelu_u(x))
            self.cache = (x, t)
            return x.dtype.type(0.5) * x * (1 + t)
        kernels = compiled("activations", x.size)
        both = kernels.gelu(x) if kernels else None
        if both:
            out, cdf = both
        else:
            cdf = ndtr(x)
            out = x * cdf
        self.cache = (x, cdf)
        return out

    def backward(self, dout: Array) -> Array:
        x, kept = self.cached(self.cache)
        check_dout(self, dout, x.shape)
        half = x.dtype.type(0.5)
        if self.approximate == "tanh":
            du = x.dtype.type(np.sqrt(2 / np.pi)) * (1 + x.dtype.type(3 * 0.044715) * x * x)
            return dout * (half * (1 + kept) + half * x * (1 - kept * kept) * du)
        pdf = np.exp(-half * x * x) * x.dtype.type(1 / np.sqrt(2 * np.pi))
        return dout * (kept + x * pdf)

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3, variant: int = 0) -> tuple[Layer, tuple[Array, ...]]:
        """Variant 0: the exact GELU; 1: the tanh approximation."""
        return cls("none" if variant == 0 else "tanh"), (rng.standard_normal((batch, 2, 3)),)

    variants = 2


def gelu_u(x: Array) -> Array:
    """The tanh approximation's argument, sqrt(2/pi) (x + 0.044715 x^3)."""
    return x.dtype.type(np.sqrt(2 / np.pi)) * (x + x.dtype.type(0.044715) * x * x * x)


class Softmax(Layer, leaf=True):
    """out = exp(x) / sum(exp(x)) along ``axis`` (the last by default), stable (scipy's ``softmax``).

    dx = out * (dout - sum(dout * out)), the sum along ``axis``: the Jacobian diag(out) - out out^T applied to
    dout. Caches out.
    """

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        if not isinstance(axis, int) or isinstance(axis, bool) or axis == 0:
            raise ValueError(f"Softmax: axis must be an integer other than 0 (the batch), got {axis!r}")
        self.axis = axis
        self.out: Array | None = None

    def forward(self, x: Array) -> Array:
        x = as_float_array(self, x)
        if not -x.ndim <= self.axis < x.ndim or self.axis % x.ndim == 0:
            raise ValueError(f"{self!r}: axis {self.axis} is not an axis of one example of x of shape {x.shape}")
        self.out = out = softmax(x, axis=self.axis).astype(x.dtype, copy=False)
        return read_only(out)

    def backward(self, dout: Array) -> Array:
        out = self.cached(self.out)
        check_dout(self, dout, out.shape)
        return out * (dout - (dout * out).sum(axis=self.axis, keepdims=True))

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Any, ...]]:
        return cls(), (rng.standard_normal((batch, 2, 3)),)
