"""A zoo of broken user layers, each one bug people make; the gradient checker must fail every one at every seed."""

import numpy as np

from . import correct as ok


class CubeMissingFactor(ok.Cube):
    """Forgets the 3 in 3x^2."""

    def backward(self, dout):
        return self.cached(self.cache) ** 2 * dout


class BilinearTransposed(ok.Bilinear):
    """A square W (4, 4), and dx written as dout * (y @ W) instead of y @ W.T: shapes agree, values do not."""

    def __init__(self, rng=None):
        super().__init__()
        rng = rng or np.random.default_rng(4)
        self.params = {"W": rng.standard_normal((4, 4))}
        self.grads = {"W": np.zeros((4, 4))}

    @classmethod
    def example(cls, rng, batch=3):
        return cls(rng), (rng.standard_normal((batch, 4)), rng.standard_normal((batch, 4)))

    def backward(self, dout):
        _, dy = super().backward(dout)
        x, y = self.cache
        return dout[:, None] * (y @ self.params["W"]), dy


class MatrixSquareTransposed(ok.MatrixSquare):
    """dx = dout x + x dout, missing both transposes."""

    def backward(self, dout):
        x = self.cached(self.cache)
        return dout @ x + x @ dout


class PolynomialAccumulates(ok.Polynomial):
    """grads += instead of =: right the first time, wrong every time after."""

    def backward(self, dout):
        x = self.cached(self.cache)
        self.grads["a"] += dout.sum(0)
        self.grads["b"] += (dout * x).sum(0)
        self.grads["c"] += (dout * x**2).sum(0)
        return dout * (self.params["b"] + 2 * self.params["c"] * x)


class ReLUMutatesDout(ok.ZooLayer):
    """The course's trap: dx = dout; dx[x <= 0] = 0 writes into the caller's dout."""

    @classmethod
    def example(cls, rng, batch=3):
        return cls(), (ok.both_signs(rng, (batch, 4)),)

    def forward(self, x):
        self.cache = x
        return np.maximum(x, 0)

    def backward(self, dout):
        dx = dout
        dx[self.cached(self.cache) <= 0] = 0
        return dx


class ScaleMutatesDout(ok.ZooLayer):
    """out = 3x; backward scales dout in place and returns it."""

    def forward(self, x):
        self.cache = True
        return 3 * x

    def backward(self, dout):
        dout *= 3
        return dout


class DropoutFreshMaskWrongBackward(ok.ZooLayer):
    """Draws a new mask from the global state at every forward, and its backward is off by 123x."""

    def forward(self, x):
        self.cache = (np.random.default_rng().random(x.shape) >= 0.5) * 2.0
        return x * self.cache

    def backward(self, dout):
        return dout * 123


class DropoutOwnRngWrongBackward(ok.UserDropout):
    """A proper Generator, but the backward forgets the 1/(1-p) scale."""

    def backward(self, dout):
        return dout * (self.cached(self.cache) > 0)


class SoftmaxDiagonalOnly(ok.ZooSoftmax):
    """Keeps s(1 - s) on the diagonal and drops the off-diagonal -s_i s_j terms."""

    def backward(self, dout):
        s = self.cached(self.cache)
        return dout * s * (1 - s)


class BatchNormMissingMean(ok.UserBatchNorm):
    """Forgets the mean term: dx = inv * (dxhat - xhat * mean(dxhat * xhat))."""

    def backward(self, dout):
        xhat, inv = self.cached(self.cache)
        self.grads["gamma"] = (dout * xhat).sum(0)
        self.grads["beta"] = dout.sum(0)
        dxhat = dout * self.params["gamma"]
        return inv * (dxhat - xhat * (dxhat * xhat).mean(0))


class LayerNormMissingVariance(ok.UserLayerNorm):
    """Treats the variance as constant: drops the xhat * mean(g * xhat) term."""

    def backward(self, dout):
        xhat, inv = self.cached(self.cache)
        self.grads["gamma"] = (dout * xhat).sum(0)
        self.grads["beta"] = dout.sum(0)
        g = dout * self.params["gamma"]
        return inv * (g - g.mean(1, keepdims=True))


class GELURoundedConstant(ok.ZooGELU):
    """sqrt(2/pi) rounded to 0.797 in backward only: about 1e-3 relative error at most, 6e-4 typical."""

    k = 0.797


class InputGradOff6e4(ok.ZooSwish):
    """dx off by a relative 6e-4 everywhere."""

    def backward(self, dout):
        return super().backward(dout) * (1 + 6e-4)


class ParamGradOnePercent(ok.Polynomial):
    """One parameter entry's gradient off by 1%."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["b"][1] *= 1.01
        return dx


class SineSignFlipped(ok.LearnedSine):
    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["w"] = -self.grads["w"]
        return dx


class ForwardMutatesInput(ok.ZooLayer):
    """tanh computed in place: the caller's x is overwritten."""

    def forward(self, x):
        np.tanh(x, out=x)
        self.cache = x
        return x.copy()

    def backward(self, dout):
        return dout * (1 - self.cached(self.cache) ** 2)


class PReLUHalfSlope(ok.ZooPReLU):
    """Negative side uses a/2 in backward: only entries with x < 0 differ."""

    def backward(self, dout):
        x = self.cached(self.cache)
        self.grads["a"] = np.sum(np.where(x > 0, 0, dout * x), axis=0)
        return np.where(x > 0, dout, dout * self.params["a"] / 2)


class ConvWrongBias(ok.ZooConv1D):
    """The bias gradient sums over the wrong axes (the batch only)."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["b"] = dout.sum(0)[:, 0] * dout.shape[2]
        return dx


class AttentionMissingTerm(ok.SelfAttention):
    """Forgets the path through the keys (ds.T @ x)."""

    def backward(self, dout):
        x, a = self.cached(self.cache)
        da = dout @ x.T
        ds = a * (da - (da * a).sum(1, keepdims=True)) / np.sqrt(x.shape[1])
        return a.T @ dout + ds @ x


class Affine3DWrongShape(ok.Affine3D):
    """Returns dx flattened to 2-D."""

    def backward(self, dout):
        return super().backward(dout).reshape(dout.shape[0], -1)


BROKEN = [CubeMissingFactor, BilinearTransposed, MatrixSquareTransposed, PolynomialAccumulates, ReLUMutatesDout,
          ScaleMutatesDout, DropoutFreshMaskWrongBackward, DropoutOwnRngWrongBackward, SoftmaxDiagonalOnly,
          BatchNormMissingMean, LayerNormMissingVariance, GELURoundedConstant, InputGradOff6e4, ParamGradOnePercent,
          SineSignFlipped, ForwardMutatesInput, PReLUHalfSlope, ConvWrongBias, AttentionMissingTerm,
          Affine3DWrongShape]
