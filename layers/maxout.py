"""Maxout: the max over ``pieces`` affine maps, max(x w1 + b1, x w2 + b2) for two."""

from __future__ import annotations

from typing import Any

import numpy as np

from .affine import affine_backward, input_rows
from .base import Array, Layer, check_dout, check_sizes
from .init import float_dtype, init_weight, make_rng


class Maxout(Layer, leaf=True):
    """out[n, m] = max_k (x W + b)[n, k*M + m], with x of shape (N, d1, ..., dk) flattened to (N, D).

    Parameters: ``W`` of shape (D, K*M) and ``b`` of shape (K*M,), where column
    k*M + m belongs to piece k of output unit m (one matrix product serves every
    piece). Returns out of shape (N, M). Ties pick the lowest piece index.
    Caches the flattened x and the winning piece indices, shape (N, 1, M).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        pieces: int = 2,
        *,
        init: str = "he",
        scale: float | None = None,
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        check_sizes(self, in_features=in_features, out_features=out_features, pieces=pieces)
        if pieces < 2:
            raise ValueError(
                f"Maxout: need in_features >= 1, out_features >= 1 and pieces >= 2, "
                f"got {in_features}, {out_features}, {pieces}"
            )
        self.in_features, self.out_features, self.pieces = in_features, out_features, pieces
        dt = float_dtype(dtype, "Maxout")
        KM = pieces * out_features
        W = init_weight((in_features, KM), in_features, out_features,
                        scheme=init, scale=scale, rng=make_rng(rng), dtype=dt)
        self.params = {"W": W, "b": np.zeros(KM, dtype=dt)}
        self.grads = {"W": np.zeros_like(W), "b": np.zeros(KM, dtype=dt)}
        self.cache: tuple[Array, Array] | None = None
        self.x_shape: tuple[int, ...] = ()

    def __repr__(self) -> str:
        return f"Maxout(in_features={self.in_features}, out_features={self.out_features}, pieces={self.pieces})"

    def forward(self, x: Array) -> Array:
        x2d, self.x_shape = input_rows(self, x, self.params["W"], self.in_features)
        z = x2d @ self.params["W"]
        z += self.params["b"]
        z = z.reshape(len(x2d), self.pieces, self.out_features)
        idx = z.argmax(axis=1)[:, None, :]
        self.cache = (x2d, idx)
        return np.take_along_axis(z, idx, axis=1)[:, 0, :]

    def backward(self, dout: Array) -> Array | None:
        x2d, dz = self.piece_gradient(dout)
        return affine_backward(self, x2d, dz, self.x_shape)

    def backward_params(self, dout: Array) -> None:
        x2d, dz = self.piece_gradient(dout)
        affine_backward(self, x2d, dz, self.x_shape, input_grad=False)

    def piece_gradient(self, dout: Array) -> tuple[Array, Array]:
        """The cached rows, and dz (N, K*M): dout routed to the winning piece of each unit, zero elsewhere."""
        x2d, idx = self.cached(self.cache)
        N = len(x2d)
        check_dout(self, dout, (N, self.out_features))
        dz = np.zeros((N, self.pieces, self.out_features), dtype=dout.dtype)
        np.put_along_axis(dz, idx, dout[:, None, :], axis=1)
        return x2d, dz.reshape(N, self.pieces * self.out_features)

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        layer = cls(6, 4, pieces=3, rng=rng, dtype=np.float64)
        layer.params["b"][:] = rng.standard_normal(12)
        return layer, (rng.standard_normal((batch, 2, 3)),)
