"""The measures the tasks report: a classification's per-class summary, a regression's R² and RMSE."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]


def classification_summary(y: Array, predictions: Array, classes: int) -> dict[str, Any]:
    """The report's numbers for labels and predictions (M,) in [0, classes)."""
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (y, predictions), 1)
    true_pos = np.diag(confusion).astype(float)
    predicted, support = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(true_pos, predicted, out=np.zeros(classes), where=predicted > 0)
    recall = np.divide(true_pos, support, out=np.zeros(classes), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(classes), where=denom > 0)
    return {"accuracy": float(true_pos.sum() / max(len(y), 1)), "examples": int(len(y)),
            "per_class": [{"class": c, "precision": float(precision[c]), "recall": float(recall[c]),
                           "f1": float(f1[c]), "support": int(support[c])} for c in range(classes)],
            "macro_f1": float(f1.mean()), "confusion": confusion.tolist()}


def r2_score(predictions: Array, y: Array) -> float:
    """The coefficient of determination 1 - SSE / SST, averaged over the outputs as scikit-learn's ``r2_score``
    (a constant target gives 1 when predicted exactly, else 0). Shapes (N,) or (N, K), float64 sums."""
    p, t = (np.asarray(a, dtype=np.float64).reshape(len(a), -1) for a in (predictions, y))
    sse, sst = ((t - p) ** 2).sum(axis=0), ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    per_output = np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1), np.where(sse == 0, 1.0, 0.0))
    return float(per_output.mean()) if len(t) else 0.0


def rmse(predictions: Array, y: Array) -> float:
    """The root of the mean squared error over all elements, in float64."""
    p, t = (np.asarray(a, dtype=np.float64).reshape(len(a), -1) for a in (predictions, y))
    return float(np.sqrt(np.mean((t - p) ** 2))) if t.size else 0.0
