"""The Loss contract, its registry, and label checks."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from layers.base import as_float_array
from layers.registry import Registry

LOSSES = Registry("loss")


class Loss:
    """A data loss: ``forward(scores, y) -> float`` caches, ``backward() -> dscores``.

    A subclass validates its inputs with ``check_shapes`` and gathers each row's label score with
    ``label_index``, which also refuses labels outside [0, C).

    scores : ndarray, shape (N, C), floating; y : ndarray, shape (N,), integer class indices in [0, C).
    The loss is averaged over the batch; dscores has the shape and dtype of scores.
    Subclasses register by class name and by each name in ``aliases``.
    """

    aliases: tuple[str, ...] = ()

    def __init_subclass__(cls, register: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if register:
            LOSSES.add(cls)

    def forward(self, scores: NDArray[np.floating], y: NDArray[np.integer]) -> float:
        raise NotImplementedError

    def backward(self) -> NDArray[np.floating]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Loss, tuple[Any, Any]]:
        """An instance, float64 scores of shape (batch, 4) and labels, for gradient checks.

        Builds ``cls()``; override it when ``__init__`` needs arguments.
        """
        return cls(), (rng.standard_normal((batch, 4)), rng.integers(0, 4, size=batch))

    def check_shapes(self, scores: Any, y: Any) -> tuple[NDArray[np.floating], NDArray[np.intp]]:
        """Validate scores (N, C) floating and y (N,) integer labels, but not the labels' range.

        Scores come back C-contiguous (copied only if they are not), so arrays computed from them are too and
        ``label_index`` addresses their ``ravel()`` views.
        """
        scores = np.ascontiguousarray(as_float_array(self, scores, "scores"))
        if scores.ndim != 2:
            raise ValueError(f"{self!r}: expected scores of shape (N, C), got {scores.shape}")
        y = np.asarray(y)
        if y.dtype.kind not in "iu":
            raise ValueError(f"{self!r}: expected integer class labels, got dtype {y.dtype}")
        if y.shape != scores.shape[:1]:
            raise ValueError(f"{self!r}: expected labels of shape ({scores.shape[0]},) to match scores, got {y.shape}")
        return scores, y

    def label_index(self, scores: NDArray[np.floating], y: NDArray[np.integer]) -> NDArray[np.intp]:
        """Each row's label as an index into ``scores.ravel()`` (i * C + y[i]), checking every label is in
        [0, C): ``ravel_multi_index`` refuses one outside, so the check costs nothing beyond the index."""
        try:
            return np.ravel_multi_index((np.arange(len(y)), y), scores.shape)
        except ValueError:
            raise self.label_error(y, scores.shape[1]) from None

    def label_error(self, y: NDArray[np.integer], C: int) -> ValueError:
        bad = y[(y < 0) | (y >= C)][0]
        return ValueError(f"{self!r}: label {bad} is out of range for {C} classes (0..{C - 1})")
