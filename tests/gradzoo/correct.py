"""A zoo of correct user layers of the kinds people write; the gradient checker must pass every one at every seed."""

import numpy as np

from layers import Layer


class ZooLayer(Layer, register=False):
    """Helper base: one input x of shape (batch, D), params given as a dict of float64 arrays."""

    D = 4

    def __init__(self, **params):
        super().__init__()
        self.params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.cache = None

    @classmethod
    def example(cls, rng, batch=3):
        return cls(), (rng.standard_normal((batch, cls.D)),)


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


class Softmax(ZooLayer):
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


def both_signs(rng, shape):
    """Normal samples at least 0.1 from 0, with the first entry negative and the second positive."""
    x = np.abs(rng.standard_normal(shape)) + 0.1
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    sign.flat[:2] = (-1.0, 1.0)
    return x * sign


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


class GELU(ZooLayer):
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


class Bilinear(Layer):
    """out = x W y^T summed per row: two inputs x (N, 3), y (N, 5), W (3, 5); out (N,)."""

    def __init__(self, rng=None):
        super().__init__()
        rng = rng or np.random.default_rng(4)
        self.params = {"W": rng.standard_normal((3, 5))}
        self.grads = {"W": np.zeros((3, 5))}
        self.cache = None

    @classmethod
    def example(cls, rng, batch=3):
        return cls(rng), (rng.standard_normal((batch, 3)), rng.standard_normal((batch, 5)))

    def forward(self, x, y):
        self.cache = (x, y)
        return np.einsum("ni,ij,nj->n", x, self.params["W"], y)

    def backward(self, dout):
        x, y = self.cached(self.cache)
        W = self.params["W"]
        self.grads["W"] = np.einsum("n,ni,nj->ij", dout, x, y)
        return dout[:, None] * (y @ W.T), dout[:, None] * (x @ W)


class ZooConv1D(Layer):
    """Valid 1-D convolution: x (N, C, L), W (F, C, K), b (F,) -> (N, F, L - K + 1)."""

    def __init__(self, rng=None):
        super().__init__()
        rng = rng or np.random.default_rng(5)
        self.params = {"W": rng.standard_normal((2, 3, 3)), "b": rng.standard_normal(2)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.cache = None

    @classmethod
    def example(cls, rng, batch=3):
        return cls(rng), (rng.standard_normal((batch, 3, 6)),)

    def forward(self, x):
        W = self.params["W"]
        K = W.shape[2]
        cols = np.stack([x[:, :, k:k + x.shape[2] - K + 1] for k in range(K)], axis=2)  # (N, C, K, L')
        self.cache = (x.shape, cols)
        return np.einsum("nckl,fck->nfl", cols, W) + self.params["b"][None, :, None]

    def backward(self, dout):
        shape, cols = self.cached(self.cache)
        W = self.params["W"]
        self.grads["W"] = np.einsum("nckl,nfl->fck", cols, dout)
        self.grads["b"] = dout.sum((0, 2))
        dcols = np.einsum("nfl,fck->nckl", dout, W)
        dx = np.zeros(shape)
        for k in range(W.shape[2]):
            dx[:, :, k:k + dcols.shape[3]] += dcols[:, :, k, :]
        return dx


class SelfAttention(ZooLayer):
    """softmax(x x^T / sqrt(D)) x for x of shape (N, D); the example has at least 2 rows (1 row is trivial)."""

    @classmethod
    def example(cls, rng, batch=3):
        return cls(), (rng.standard_normal((max(batch, 2), 4)),)

    def forward(self, x):
        s = x @ x.T / np.sqrt(x.shape[1])
        e = np.exp(s - s.max(1, keepdims=True))
        a = e / e.sum(1, keepdims=True)
        self.cache = (x, a)
        return a @ x

    def backward(self, dout):
        x, a = self.cached(self.cache)
        da = dout @ x.T
        ds = a * (da - (da * a).sum(1, keepdims=True)) / np.sqrt(x.shape[1])
        return a.T @ dout + ds @ x + ds.T @ x


class Outer(Layer):
    """Two inputs x (N, 3), y (N, 2) -> (N, 3, 2), out[n] = x[n] y[n]^T."""

    @classmethod
    def example(cls, rng, batch=3):
        return cls(), (rng.standard_normal((batch, 3)), rng.standard_normal((batch, 2)))

    def forward(self, x, y):
        self.cache = (x, y)
        return x[:, :, None] * y[:, None, :]

    def backward(self, dout):
        x, y = self.cached(self.cache)
        return (dout * y[:, None, :]).sum(2), (dout * x[:, :, None]).sum(1)


class CumSum(ZooLayer):
    def forward(self, x):
        self.cache = True
        return np.cumsum(x, axis=1)

    def backward(self, dout):
        self.cached(self.cache)
        return np.cumsum(dout[:, ::-1], axis=1)[:, ::-1]


class LearnedSine(ZooLayer):
    def __init__(self):
        super().__init__(w=np.array([0.5, 1.0, 1.5, 2.0]))

    def forward(self, x):
        self.cache = x
        return np.sin(self.params["w"] * x)

    def backward(self, dout):
        x = self.cached(self.cache)
        c = np.cos(self.params["w"] * x) * dout
        self.grads["w"] = (c * x).sum(0)
        return c * self.params["w"]


class Lorentzian(ZooLayer):
    def forward(self, x):
        self.cache = x
        return 1 / (1 + x**2)

    def backward(self, dout):
        x = self.cached(self.cache)
        return -2 * x / (1 + x**2) ** 2 * dout


class MatrixSquare(Layer):
    """X @ X for a square X of shape (4, 4); the batch size is ignored."""

    @classmethod
    def example(cls, rng, batch=3):
        return cls(), (rng.standard_normal((4, 4)),)

    def forward(self, x):
        self.cache = x
        return x @ x

    def backward(self, dout):
        x = self.cached(self.cache)
        return dout @ x.T + x.T @ dout


class RowVariance(ZooLayer):
    def forward(self, x):
        self.cache = x
        return x.var(1)

    def backward(self, dout):
        x = self.cached(self.cache)
        return 2 * (x - x.mean(1, keepdims=True)) / x.shape[1] * dout[:, None]


class SumOfSquares(ZooLayer):
    """A scalar output: sum(x^2 w) with a learned w of shape (D,)."""

    def __init__(self):
        super().__init__(w=np.array([0.5, -1.0, 2.0, 0.1]))

    def forward(self, x):
        self.cache = x
        return np.sum(x**2 * self.params["w"])

    def backward(self, dout):
        x = self.cached(self.cache)
        self.grads["w"] = dout * (x**2).sum(0)
        return 2 * x * self.params["w"] * dout


class UserDropout(ZooLayer):
    """Inverted dropout whose mask comes from the layer's own Generator."""

    def __init__(self, p=0.5, seed=0):
        super().__init__()
        self.p, self.rng = p, np.random.default_rng(seed)

    def forward(self, x):
        if not self.training:
            return x
        self.cache = (self.rng.random(x.shape) >= self.p) / (1 - self.p)
        return x * self.cache

    def backward(self, dout):
        return dout * self.cached(self.cache)


class ScaledExp(ZooLayer):
    """exp(a x) with a learned scalar a, inputs up to about 3: large third derivatives."""

    def __init__(self):
        super().__init__(a=np.array(1.3))

    @classmethod
    def example(cls, rng, batch=3):
        return cls(), (2 * rng.standard_normal((batch, 4)),)

    def forward(self, x):
        self.cache = (x, np.exp(self.params["a"] * x))
        return self.cache[1]

    def backward(self, dout):
        x, e = self.cached(self.cache)
        self.grads["a"] = np.sum(dout * e * x)
        return dout * e * self.params["a"]


class Affine3D(Layer):
    """x (N, T, D) @ W (D, M) + b over the last axis: a multi-dimensional input."""

    def __init__(self, rng=None):
        super().__init__()
        rng = rng or np.random.default_rng(6)
        self.params = {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.cache = None

    @classmethod
    def example(cls, rng, batch=3):
        return cls(rng), (rng.standard_normal((batch, 2, 4)),)

    def forward(self, x):
        self.cache = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout):
        x = self.cached(self.cache)
        self.grads["W"] = np.einsum("ntd,ntm->dm", x, dout)
        self.grads["b"] = dout.sum((0, 1))
        return dout @ self.params["W"].T


CORRECT = [Cube, Polynomial, Softmax, UserBatchNorm, UserLayerNorm, ZooSwish, ZooPReLU, GELU, Softplus, RowNormalize,
           LogSumExp, Bilinear, ZooConv1D, SelfAttention, Outer, CumSum, LearnedSine, Lorentzian, MatrixSquare,
           RowVariance, SumOfSquares, UserDropout, ScaledExp, Affine3D]
