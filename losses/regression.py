"""Regression losses: mean squared error and Huber, as PyTorch's ``mse_loss`` and ``huber_loss``."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from layers.base import as_float_array

from .base import Loss
from .tasks import Regression


class RegressionLoss(Loss, register=False):
    """A loss on real-valued targets: scores (N, K) with targets (N, K), or (N, 1) with (N,) (one value per row).

    Targets of any real dtype are compared in the scores' dtype. The loss is the mean over all N * K elements.
    """

    variants = 2  # the examples: two outputs, or one

    task = Regression()

    def check_targets(self, scores: Any, y: Any) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
        scores = as_float_array(self, scores, "scores")
        y = np.asarray(y)
        if y.dtype.kind not in "iuf":
            raise ValueError(f"{self!r}: expected real-valued targets, got dtype {y.dtype}")
        if scores.ndim < 1 or (y.shape != scores.shape and y.shape + (1,) != scores.shape):
            raise ValueError(f"{self!r}: expected targets of shape {scores.shape} (the scores'), or "
                             f"{scores.shape[:-1]} for scores with one column, got {y.shape}")
        return scores, y.reshape(scores.shape).astype(scores.dtype, copy=False)

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3, variant: int = 0) -> tuple[Loss, tuple[Any, Any]]:
        """Variant 0: scores (batch, 2) with targets (batch, 2); 1: scores (batch, 1) with targets (batch,)."""
        outputs = 2 if variant == 0 else 1
        scores, y = rng.standard_normal((batch, outputs)), rng.standard_normal((batch, outputs))
        return cls(), (scores, y if outputs == 2 else y[:, 0])


class MSELoss(RegressionLoss):
    """L = mean((s - y)^2) over all N * K elements; dscores = 2 (s - y) / (N K). Caches s - y."""

    aliases = ("mse", "mean_squared_error")

    def __init__(self) -> None:
        self.cache: NDArray[np.floating] | None = None

    def forward(self, scores: NDArray[np.floating], y: Any) -> float:
        scores, y = self.check_targets(scores, y)
        diff = scores - y
        self.cache = diff
        return float(np.vdot(diff, diff) / max(diff.size, 1))

    def backward(self) -> NDArray[np.floating]:
        if self.cache is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        diff = self.cache
        return diff * diff.dtype.type(2 / max(diff.size, 1))


class HuberLoss(RegressionLoss):
    """L = mean(h(s - y)) with h(d) = d^2 / 2 where |d| < delta and delta (|d| - delta / 2) elsewhere: squared
    near the target, linear far from it, so outliers pull less than with MSE.

    dscores = clip(s - y, -delta, delta) / (N K). Caches s - y.
    """

    aliases = ("huber",)

    def __init__(self, delta: float = 1.0) -> None:
        if not (isinstance(delta, (int, float)) and not isinstance(delta, bool) and 0 < delta < float("inf")):
            raise ValueError(f"HuberLoss: delta must be a positive finite number, got {delta!r}")
        self.delta = float(delta)
        self.cache: NDArray[np.floating] | None = None

    def __repr__(self) -> str:
        return f"HuberLoss(delta={self.delta:g})"

    def forward(self, scores: NDArray[np.floating], y: Any) -> float:
        scores, y = self.check_targets(scores, y)
        diff = scores - y
        self.cache = diff
        size, delta = np.abs(diff), diff.dtype.type(self.delta)
        per_element = np.where(size < delta, diff * diff / 2, delta * (size - delta / 2))
        return float(per_element.sum() / max(diff.size, 1))

    def backward(self) -> NDArray[np.floating]:
        if self.cache is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        diff = self.cache
        return np.clip(diff, -self.delta, self.delta) / diff.dtype.type(max(diff.size, 1))

