"""Multiclass SVM (hinge) and softmax cross-entropy losses."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .base import Loss

IGNORE_INDEX = -100  # PyTorch's default: a label that counts for nothing (padding in a batch of sequences)


class SVMLoss(Loss):
    """L = mean_i sum_{j != y_i} max(0, s_j - s_{y_i} + margin), margin 1 by default.

    dscores[i, j] = 1/M for each violated margin, dscores[i, y_i] = -(count of violations)/M, M the rows that
    count. Scores (N, C) with labels (N,), or (N, T, C) with (N, T); rows labelled ``ignore_index`` are left out
    of the loss and get a zero gradient. Caches the violation mask, the labels' flat indices and the rows kept.
    """

    variants = 2  # the examples: rows, or sequences with ignored steps

    aliases = ("svm", "hinge")

    def __init__(self, margin: float = 1.0, ignore_index: int = IGNORE_INDEX) -> None:
        if not margin > 0:
            raise ValueError(f"SVMLoss: margin must be positive, got {margin!r}")
        self.margin, self.ignore_index = float(margin), check_ignore_index(self, ignore_index)
        self.cache: tuple[Any, ...] | None = None

    def forward(self, scores: NDArray[np.floating], y: NDArray[np.integer]) -> float:
        scores, y = self.check_shapes(scores, y)
        rows, labels, at_label, keep = self.rows(scores, y)  # checks the labels' range
        margins = rows - rows.take(at_label)[:, None]
        margins += rows.dtype.type(self.margin)
        margins.ravel()[at_label] = 0
        np.maximum(margins, 0, out=margins)
        self.cache = (margins > 0, at_label, scores.dtype, keep, scores.shape)
        return float(margins.sum() / len(labels)) if len(labels) else 0.0

    def backward(self) -> NDArray[np.floating]:
        if self.cache is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        mask, at_label, dtype, keep, shape = self.cache
        dscores = mask.astype(dtype)
        dscores.ravel()[at_label] = -dscores.sum(axis=1)
        dscores /= dtype.type(max(len(at_label), 1))
        return self.expand(dscores, keep, shape)

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3, variant: int = 0) -> tuple[Loss, tuple[Any, Any]]:
        return sequence_example(cls(), rng, batch, variant)


class SoftmaxCrossEntropy(Loss):
    """L = -mean_i log softmax(s_i)[y_i], stable: scores are shifted by their row maximum first.

    dscores = (softmax(s) - onehot(y)) / M, M the rows that count. Scores (N, C) with labels (N,), or (N, T, C)
    with (N, T) (the course's temporal softmax); rows labelled ``ignore_index`` are left out of the loss and get a
    zero gradient, and with every row left out the loss is 0. Caches the probabilities, the labels' flat indices
    and the rows kept.
    """

    variants = 2  # the examples: rows, or sequences with ignored steps

    aliases = ("softmax", "cross_entropy")

    def __init__(self, ignore_index: int = IGNORE_INDEX) -> None:
        self.ignore_index = check_ignore_index(self, ignore_index)
        self.cache: tuple[Any, ...] | None = None

    def forward(self, scores: NDArray[np.floating], y: NDArray[np.integer]) -> float:
        scores, y = self.check_shapes(scores, y)
        rows, labels, at_label, keep = self.rows(scores, y)  # checks the labels' range
        # ufunc reductions called directly: 10.7-11.6 against 12.6 µs with .max/.sum at 32x10 float32, 2-3%
        # of a small training step
        shifted = rows - np.maximum.reduce(rows, axis=1, keepdims=True, initial=-np.inf)
        with np.errstate(under="ignore"):  # a score far below the row's largest has probability ~0: no error
            probs = np.exp(shifted)
            sums = np.add.reduce(probs, axis=1, keepdims=True)
            probs /= sums
        loss = (np.add.reduce(np.log(sums), axis=None) - np.add.reduce(shifted.take(at_label))) / max(len(labels), 1)
        self.cache = (probs, at_label, keep, scores.shape)
        return float(loss)

    def backward(self) -> NDArray[np.floating]:
        if self.cache is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        probs, at_label, keep, shape = self.cache
        n = probs.dtype.type(max(len(at_label), 1))
        with np.errstate(under="ignore"):  # tiny probabilities over n are tinier, not an error
            dscores = probs / n
        dscores.ravel()[at_label] -= 1 / n
        return self.expand(dscores, keep, shape)

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3, variant: int = 0) -> tuple[Loss, tuple[Any, Any]]:
        return sequence_example(cls(), rng, batch, variant)


def check_ignore_index(loss: Loss, ignore_index: Any) -> int:
    """``ignore_index`` as an int, or a ValueError naming the loss: a label is a whole number."""
    if not isinstance(ignore_index, (int, np.integer)) or isinstance(ignore_index, bool):
        raise ValueError(f"{type(loss).__name__}: ignore_index must be an integer (a label), got {ignore_index!r}")
    return int(ignore_index)


def sequence_example(loss: Loss, rng: np.random.Generator, batch: int, variant: int = 0
                     ) -> tuple[Loss, tuple[Any, Any]]:
    """Variant 0: scores (batch, 4) and labels; 1: a batch of sequences (batch, 3, 4) whose labels include
    ``ignore_index`` (every row but the first step, when the batch is 1)."""
    if variant == 0:
        return loss, (rng.standard_normal((batch, 4)), rng.integers(0, 4, size=batch))
    y = rng.integers(0, 4, size=(batch, 3))
    y[rng.random((batch, 3)) < 0.3] = IGNORE_INDEX
    y[0, 0] = rng.integers(0, 4)  # at least one row counts
    return loss, (rng.standard_normal((batch, 3, 4)), y)
