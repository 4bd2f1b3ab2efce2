"""The Loss contract, its registry, and label checks."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from layers.base import as_float_array
from layers.registry import Registry

from .tasks import Classification, Task

LOSSES = Registry("loss")


class Loss:
    """A data loss: ``forward(scores, y) -> float`` caches, ``backward() -> dscores``.

    A subclass validates its inputs with ``check_shapes`` and gathers each row's label score with
    ``label_index``, which also refuses labels outside [0, C).

    scores : ndarray, shape (N, C), floating; y : ndarray, shape (N,), integer class indices in [0, C). Or, for
    a label at every step of a sequence, scores (N, T, C) and y (N, T). The loss is averaged over the rows that
    count (a built-in loss leaves out rows labelled ``ignore_index``); dscores has the shape and dtype of scores.
    Subclasses register by class name and by each name in ``aliases``.
    """

    aliases: tuple[str, ...] = ()
    variants = 1  # how many examples ``example`` gives (``variant=0..variants-1``), as ``Layer.variants``
    #: The kind of problem: a score per class with integer labels (``Classification``), or predicted values
    #: with real targets (``Regression``, see ``RegressionLoss``). Everything that differs is the task's.
    task: Task = Classification()

    def __init_subclass__(cls, register: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if register:
            LOSSES.add(cls)

    def forward(self, scores: NDArray[np.floating], y: NDArray[Any]) -> float:
        """The loss of ``scores`` against ``y``: integer labels, or a regression loss's real targets."""
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
        """Validate scores (N, C) with integer labels (N,), or scores (N, T, C) with labels (N, T) (a label at
        every step of a sequence), but not the labels' range.

        Scores come back C-contiguous (copied only if they are not), so arrays computed from them are too and
        ``label_index`` addresses their ``ravel()`` views.
        """
        scores = np.ascontiguousarray(as_float_array(self, scores, "scores"))
        y = np.asarray(y)
        if scores.ndim not in (2, 3):
            raise ValueError(f"{self!r}: expected scores of shape (N, C), or (N, T, C) for sequences, "
                             f"got {scores.shape}")
        if y.dtype.kind not in "iu":
            raise ValueError(f"{self!r}: expected integer class labels, got dtype {y.dtype}")
        if y.shape != scores.shape[:-1]:
            raise ValueError(f"{self!r}: expected labels of shape {scores.shape[:-1]} to match scores of shape "
                             f"{scores.shape}, got {y.shape}")
        return scores, y

    def rows(self, scores: NDArray[np.floating], y: NDArray[np.integer]) -> Rows:
        """The rows the loss counts: scores as (M, C), their labels (M,), each label's index into the rows'
        ``ravel()`` and which of all N (or N * T) rows they are (None when every row counts: no copy). A row
        whose label is ``ignore_index`` (default -100, as PyTorch) is left out; any other label outside [0, C)
        is a ValueError."""
        C = scores.shape[-1]
        flat, labels = scores.reshape(-1, C), y.reshape(-1)
        ignore = getattr(self, "ignore_index", None)
        if ignore is None or not 0 <= ignore < C:  # the common case costs no mask: only a failure looks for it
            try:
                return flat, labels, np.ravel_multi_index((np.arange(len(labels)), labels), flat.shape), None
            except ValueError:
                if ignore is None:
                    raise self.label_error(labels, C) from None
        keep = labels != ignore
        flat, labels = flat[keep], labels[keep]
        return flat, labels, self.label_index(flat, labels), keep

    @staticmethod
    def expand(drows: NDArray[np.floating], keep: NDArray[np.bool_] | None, shape: tuple[int, ...]
               ) -> NDArray[np.floating]:
        """The rows' gradient back in the scores' shape, zeros for the rows left out."""
        if keep is None:
            return drows.reshape(shape)
        full = np.zeros((len(keep), shape[-1]), dtype=drows.dtype)
        full[keep] = drows
        return full.reshape(shape)

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


#: What ``Loss.rows`` returns: the counted rows (M, C), their labels, the labels' flat indices, and the mask of
#: counted rows among all (None when all count).
Rows = tuple[NDArray[np.floating], NDArray[np.integer], NDArray[np.intp], "NDArray[np.bool_] | None"]
