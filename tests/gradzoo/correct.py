"""A zoo of correct user layers of the kinds people write; the gradient checker must pass every one at every seed.
Elementwise and normalizing layers are here, those with more structure in ``correct_structured``."""

import numpy as np

from tests.gradzoo.correct_structured import (
    Affine3D,
    Bilinear,
    CumSum,
    LearnedSine,
    Lorentzian,
    MatrixSquare,
    Outer,
    RowVariance,
    ScaledExp,
    SelfAttention,
    SumOfSquares,
    UserDropout,
    ZooConv1D,
)
from tests.gradzoo.zoo import ZooLayer, both_signs


class Cube(ZooLayer):
    def forward(self, x):
        self.cache = x
        return x**3

    def backward(self, dout):
        return 3 * self.cached(self.cache) ** 2 * dout


class Polynomial(ZooLayer):
    """a + b x + c x^2 with learned per-feature coefficients."""

    def __init__(self, rng=None):
        rng = rng or np.random.default_rng(1)
        super().__init__(a=rng.standard_normal(4), b=rng.standard_normal(4), c=rng.standard_normal(4))

    @classmethod
    def example(cls, rng, batch=3):
        return cls(rng), (rng.standard_normal((batch, 4)),)

    def forward(self, x):
        self.cache = x
        p = self.params
        return p["a"] + p["b"] * x + p["c"] * x**2

    def backward(self, dout):
        x = self.cached(self.cache)
        self.grads["a"] = dout.sum(0)
        self.grads["b"] = (dout * x).sum(0)
        self.grads["c"] = (dout * x**2).sum(0)
        return dout * (self.params["b"] + 2 * self.params["c"] * x)


class ZooSoftmax(ZooLayer):
    def forward(self, x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        self.cache = e / e.sum(axis=1, keepdims=True)
        return self.cache

    def backward(self, dout):
        s = self.cached(self.cache)
        return s * (dout - (dout * s).sum(axis=1, keepdims=True))


class UserBatchNorm(ZooLayer):
    """Batch normalization over rows, learned gamma and beta; needs at least 2 rows."""

    def __init__(self, rng=None):
        rng = rng or np.random.default_rng(2)
        super().__init__(gamma=1 + 0.1 * rng.standard_normal(4), beta=0.1 * rng.standard_normal(4))

    @classmethod
    def example(cls, rng, batch=3):
        return cls(rng), (rng.standard_normal((max(batch, 2), 4)),)

    def forward(self, x):
        mu, var = x.mean(0), x.var(0)
        xhat = (x - mu) / np.sqrt(var + 1e-5)
        self.cache = (xhat, 1 / np.sqrt(var + 1e-5))
        return self.params["gamma"] * xhat + self.params["beta"]

    def backward(self, dout):
        xhat, inv = self.cached(self.cache)
        self.grads["gamma"] = (dout * xhat).sum(0)
        self.grads["beta"] = dout.sum(0)
        dxhat = dout * self.params["gamma"]
        return inv * (dxhat - dxhat.mean(0) - xhat * (dxhat * xhat).mean(0))


class UserLayerNorm(ZooLayer):
    def __init__(self, rng=None):
        rng = rng or np.random.default_rng(3)
        super().__init__(gamma=1 + 0.1 * rng.standard_normal(4), beta=0.1 * rng.standard_normal(4))

    @classmethod
    def example(cls, rng, batch=3):
        return cls(rng), (rng.standard_normal((batch, 4)),)

    def forward(self, x):
        mu, var = x.mean(1, keepdims=True), x.var(1, keepdims=True)
        inv = 1 / np.sqrt(var + 1e-5)
        xhat = (x - mu) * inv
        self.cache = (xhat, inv)
        return self.params["gamma"] * xhat + self.params["beta"]

    def backward(self, dout):
        xhat, inv = self.cached(self.cache)
        self.grads["gamma"] = (dout * xhat).sum(0)
        self.grads["beta"] = dout.sum(0)
        g = dout * self.params["gamma"]
        return inv * (g - g.mean(1, keepdims=True) - xhat * (g * xhat).mean(1, keepdims=True))


class ZooSwish(ZooLayer):
    def __init__(self):
        super().__init__(beta=np.array(0.7))

    def forward(self, x):
        s = 1 / (1 + np.exp(-self.params["beta"] * x))
        self.cache = (x, s)
        return x * s

    def backward(self, dout):
        x, s = self.cached(self.cache)
        ds = dout * x * s * (1 - s)
        self.grads["beta"] = np.sum(ds * x)
        return dout * s + ds * self.params["beta"]


class ZooPReLU(ZooLayer):
    def __init__(self):
        super().__init__(a=np.full(4, 0.25))

    @classmethod
    def example(cls, rng, batch=3):
        return cls(), (both_signs(rng, (batch, 4)),)

    def forward(self, x):
        self.cache = x
        return np.where(x > 0, x, self.params["a"] * x)

    def backward(self, dout):
        x = self.cached(self.cache)
        self.grads["a"] = np.sum(np.where(x > 0, 0, dout * x), axis=0)
        return np.where(x > 0, dout, dout * self.params["a"])


GELU_C = np.sqrt(2 / np.pi)


class ZooGELU(ZooLayer):
    """The tanh approximation: 0.5 x (1 + tanh(c (x + 0.044715 x^3)))."""

    k = GELU_C

    def forward(self, x):
        t = np.tanh(GELU_C * (x + 0.044715 * x**3))
        self.cache = (x, t)
        return 0.5 * x * (1 + t)

    def backward(self, dout):
        x, t = self.cached(self.cache)
        dt = (1 - t**2) * self.k * (1 + 3 * 0.044715 * x**2)
        return dout * (0.5 * (1 + t) + 0.5 * x * dt)


class Softplus(ZooLayer):
    def forward(self, x):
        self.cache = x
        return np.logaddexp(0, x)

    def backward(self, dout):
        return dout / (1 + np.exp(-self.cached(self.cache)))


class RowNormalize(ZooLayer):
    """x / ||x|| per row."""

    def forward(self, x):
        n = np.sqrt((x * x).sum(1, keepdims=True))
        self.cache = (x / n, n)
        return self.cache[0]

    def backward(self, dout):
        u, n = self.cached(self.cache)
        return (dout - u * (dout * u).sum(1, keepdims=True)) / n


class LogSumExp(ZooLayer):
    """Row-wise log-sum-exp: (N, D) -> (N,)."""

    def forward(self, x):
        m = x.max(1, keepdims=True)
        e = np.exp(x - m)
        self.cache = e / e.sum(1, keepdims=True)
        return (m + np.log(e.sum(1, keepdims=True)))[:, 0]

    def backward(self, dout):
        return self.cached(self.cache) * dout[:, None]


CORRECT = [Cube, Polynomial, ZooSoftmax, UserBatchNorm, UserLayerNorm, ZooSwish, ZooPReLU, ZooGELU, Softplus,
           RowNormalize, LogSumExp, Bilinear, ZooConv1D, SelfAttention, Outer, CumSum, LearnedSine, Lorentzian,
           MatrixSquare, RowVariance, SumOfSquares, UserDropout, ScaledExp, Affine3D]
