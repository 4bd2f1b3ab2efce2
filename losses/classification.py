"""Multiclass SVM (hinge) and softmax cross-entropy losses."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .base import Loss


class SVMLoss(Loss):
    """L = mean_i sum_{j != y_i} max(0, s_j - s_{y_i} + margin), margin 1 by default.

    dscores[i, j] = 1/N for each violated margin, dscores[i, y_i] = -(count of violations)/N.
    Caches the violation mask, shape (N, C), y and the dtype.
    """

    aliases = ("svm", "hinge")

    def __init__(self, margin: float = 1.0) -> None:
        if not margin > 0:
            raise ValueError(f"SVMLoss: margin must be positive, got {margin!r}")
        self.margin = float(margin)
        self.cache: tuple[NDArray[np.bool_], NDArray[np.intp], np.dtype] | None = None

    def forward(self, scores: NDArray[np.floating], y: NDArray[np.integer]) -> float:
        scores, y = self.check(scores, y)
        rows = np.arange(len(y))
        margins = scores - scores[rows, y][:, None]
        margins += scores.dtype.type(self.margin)
        margins[rows, y] = 0
        np.maximum(margins, 0, out=margins)
        self.cache = (margins > 0, y, scores.dtype)
        return float(np.add.reduce(margins, axis=None) / len(y))

    def backward(self) -> NDArray[np.floating]:
        if self.cache is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        mask, y, dtype = self.cache
        dscores = mask.astype(dtype)
        dscores[np.arange(len(y)), y] = -np.add.reduce(dscores, axis=1)
        dscores /= dtype.type(len(y))
        return dscores


class SoftmaxCrossEntropy(Loss):
    """L = -mean_i log softmax(s_i)[y_i], stable: scores are shifted by their row maximum first.

    With z = s - max(s), log softmax(s)[y] = z[y] - log(sum(exp(z))). Written in numpy rather than
    with scipy.special.log_softmax, which costs three times as much on a minibatch.
    dscores = (softmax(s) - onehot(y)) / N. Caches the probabilities, shape (N, C), and y.
    """

    aliases = ("softmax", "cross_entropy")

    def __init__(self) -> None:
        self.cache: tuple[NDArray[np.floating], NDArray[np.intp]] | None = None

    def forward(self, scores: NDArray[np.floating], y: NDArray[np.integer]) -> float:
        scores, y = self.check(scores, y)
        # ufunc reductions called directly: ndarray.max/sum add a Python-level wrapper per call
        shifted = scores - np.maximum.reduce(scores, axis=1, keepdims=True)
        probs = np.exp(shifted)
        sums = np.add.reduce(probs, axis=1, keepdims=True)
        probs /= sums
        loss = (np.add.reduce(np.log(sums), axis=None) - np.add.reduce(shifted[np.arange(len(y)), y])) / len(y)
        self.cache = (probs, y)
        return float(loss)

    def backward(self) -> NDArray[np.floating]:
        if self.cache is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        probs, y = self.cache
        n = probs.dtype.type(len(y))
        dscores = probs / n
        dscores[np.arange(len(y)), y] -= 1 / n
        return dscores
