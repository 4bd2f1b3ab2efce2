"""Correct user layers with structure: several inputs, parameters of their own shapes, convolution, attention,
randomness and higher-rank inputs."""

import numpy as np

from layers import Layer
from tests.gradzoo.zoo import ZooLayer


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
