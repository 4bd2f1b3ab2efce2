"""Fully-connected layer: out = x W + b."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Array, Layer, as_float_array, check_dout, check_sizes
from .init import float_dtype, init_weight, make_rng


def check_features(layer: Layer, x: Array, in_features: int) -> Array:
    """``x`` flattened to (N, D), or a ValueError naming the layer and both shapes."""
    if x.ndim < 2 or x.size != x.shape[0] * in_features:
        raise ValueError(
            f"{layer!r}: expected x of shape (N, {in_features}) or (N, d1, ..., dk) "
            f"with d1*...*dk = {in_features}, got {x.shape}"
        )
    return x.reshape(x.shape[0], in_features)


def check_dtype(layer: Layer, x: Array, w: Array) -> None:
    if x.dtype != w.dtype:
        raise TypeError(
            f"{layer!r}: x has dtype {x.dtype} but the parameters are {w.dtype}; "
            f"build the layer with dtype={x.dtype} or call .astype(np.{x.dtype})"
        )


def input_rows(layer: Layer, x: Array, W: Array, in_features: int) -> tuple[Array, tuple[int, ...]]:
    """``x`` as (N, D) rows of W's dtype, and its own shape; each check's failure is a clear error.

    The common case, an ndarray of rows already, costs one test instead of the three checks.
    """
    if type(x) is np.ndarray and x.dtype == W.dtype and x.ndim == 2 and x.shape[1] == in_features:
        return x, x.shape
    x = as_float_array(layer, x)
    check_dtype(layer, x, W)
    return check_features(layer, x, in_features), x.shape


def affine_backward(layer: Layer, x2d: Array, dz: Array, x_shape: tuple[int, ...],
                    input_grad: bool = True) -> Array | None:
    """For z = x2d W + b: write dW = x2d.T dz and db = the column sums of dz into ``layer.grads``, and
    return dx = dz W.T in ``x_shape`` (None when ``input_grad`` is False)."""
    grads = layer.grads
    np.matmul(x2d.T, dz, out=grads["W"])  # into the existing array: no new (D, M) array each step
    dz.sum(axis=0, out=grads["b"])
    if not input_grad:
        return None
    dx = dz @ layer.params["W"].T
    return dx if dx.shape == x_shape else dx.reshape(x_shape)


class Affine(Layer, leaf=True):
    """out = x W + b, with x of shape (N, d1, ..., dk) flattened to (N, D).

    Parameters: ``W`` of shape (D, M) drawn by ``init`` ("he", "xavier" or
    "normal" with ``scale``), ``b`` of shape (M,) zeros, both of ``dtype``
    (float32 by default; the input must have the same dtype).
    Returns out of shape (N, M); backward returns dx with x's original shape.
    Caches the flattened x and its original shape.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        init: str = "he",
        scale: float | None = None,
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        check_sizes(self, in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        dt = float_dtype(dtype, "Affine")
        W = init_weight((in_features, out_features), in_features, out_features,
                        scheme=init, scale=scale, rng=make_rng(rng), dtype=dt)
        self.params = {"W": W, "b": np.zeros(out_features, dtype=dt)}
        self.grads = {"W": np.zeros_like(W), "b": np.zeros(out_features, dtype=dt)}
        self.x2d: Array | None = None
        self.x_shape: tuple[int, ...] = ()

    def __repr__(self) -> str:
        return f"Affine(in_features={self.in_features}, out_features={self.out_features})"

    def forward(self, x: Array) -> Array:
        params = self.params
        self.x2d, self.x_shape = input_rows(self, x, params["W"], self.in_features)
        out = self.x2d @ params["W"]
        out += params["b"]
        return out

    def backward(self, dout: Array) -> Array | None:
        x2d = self.cached(self.x2d)
        check_dout(self, dout, (x2d.shape[0], self.out_features))
        return affine_backward(self, x2d, dout, self.x_shape)

    def backward_params(self, dout: Array) -> None:
        x2d = self.cached(self.x2d)
        check_dout(self, dout, (x2d.shape[0], self.out_features))
        affine_backward(self, x2d, dout, self.x_shape, input_grad=False)

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        layer = cls(6, 4, rng=rng, dtype=np.float64)
        layer.params["b"][:] = rng.standard_normal(4)
        return layer, (rng.standard_normal((batch, 2, 3)),)
