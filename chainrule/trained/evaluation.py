"""Inputs for prediction, classification and regression metrics, and what predict and evaluate write.

Input files are read by the same readers as the data sources: an npz (arrays ``X`` or ``X_test`` and
optionally ``y``/``y_test``), a CSV with a header (a ``label`` column, when present, holds the labels),
an MNIST IDX images file or folder (its t10k files), a CIFAR-10 binary batch or folder (its test_batch.bin).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chainrule import data as datasets
from chainrule.checkpoint import atomic_write
from chainrule.report import pyplot, save_figure
from losses import r2_score, rmse
from losses.classification import IGNORE_INDEX

NPZ_KEYS = (("X", "y"), ("X_test", "y_test"), ("X_val", "y_val"), ("X_train", "y_train"))


def read_inputs(path: str | Path, label_column: str = "label", targets: bool = False
                ) -> tuple[NDArray, NDArray | None]:
    """Inputs X (N, ...) and labels y (N,) or None from a file or folder in one of the supported formats; with
    ``targets`` a CSV's label column holds a regression's real-valued targets."""
    p = datasets.existing(path, "input")
    if p.is_dir():
        images = first_file(p, "t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte")
        if images is not None:
            labels = first_file(p, "t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte")
            return read_idx_inputs(images), None if labels is None else datasets.read_idx(labels).astype(np.int64)
        for folder in (p, p / "cifar-10-batches-bin"):
            if (folder / "test_batch.bin").exists():
                return datasets.read_cifar_batch(folder / "test_batch.bin")
        raise ValueError(f"input: {str(p)!r} holds neither MNIST t10k IDX files nor a CIFAR-10 test_batch.bin")
    name = p.name.lower()
    if name.endswith(".npz"):
        return read_npz_inputs(p)
    if name.endswith(".csv"):
        return read_csv_inputs(p, label_column, targets)
    if name.endswith(".bin"):
        return datasets.read_cifar_batch(p)
    if "idx" in name or name.endswith("-ubyte") or name.endswith("-ubyte.gz"):
        return read_idx_inputs(p), None
    raise ValueError(f"input: {str(p)!r}: expected .npz, .csv, an IDX images file, a CIFAR-10 .bin or a folder")


def first_file(folder: Path, *names: str) -> Path | None:
    try:
        return datasets.find(folder, *names)
    except FileNotFoundError:
        return None


def read_idx_inputs(path: Path) -> NDArray:
    """IDX images as (N, 1, H, W) in [0, 1], as the mnist-idx source gives them."""
    return datasets.as_images(datasets.read_idx(path))


def read_npz_inputs(path: Path) -> tuple[NDArray, NDArray | None]:
    arrays = datasets.read_npz(path, "input")
    files = set(arrays)
    for x_key, y_key in NPZ_KEYS:
        if x_key in files:
            return arrays[x_key], arrays.get(y_key)
    raise ValueError(f"input: {str(path)!r} has no array X or X_test (it has {', '.join(sorted(files)) or 'none'})")


def read_csv_inputs(path: Path, label_column: str, targets: bool = False) -> tuple[NDArray, NDArray | None]:
    """A CSV's rows of numbers. The first row is a header unless every value in it is a number (then it is
    data); a ``label_column`` named in the header holds class numbers (real targets, with ``targets``). Empty
    and header-only files are errors."""
    rows = datasets.csv_rows(path)
    first = rows[0] if rows else None
    if first is None:
        raise ValueError(f"input: {str(path)!r} is empty")
    if label_column in first:
        return datasets.load_csv(str(path), label_column, class_numbers=not targets, targets=targets)
    body = rows[1:] if not all(is_number(v) for v in first) else rows
    if not body:
        raise ValueError(f"input: {str(path)!r} has a header row and no data rows")
    for number, row in enumerate(body, start=len(rows) - len(body) + 1):
        if len(row) != len(first):
            raise ValueError(f"input: {str(path)!r} row {number} has {len(row)} values, the first row {len(first)}")
        bad = next((v for v in row if not is_number(v)), None)
        if bad is not None:
            raise ValueError(f"input: {str(path)!r} row {number} has a value that is not a number: {bad!r}")
    return np.array([[float(v) for v in row] for row in body]), None


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def classification_report(y: NDArray, pred: NDArray, classes: int, source: str = "the labels") -> dict[str, Any]:
    """Accuracy, per-class precision, recall, F1 and support, macro averages, and the confusion matrix
    (rows are true classes, columns predicted). A class never predicted has precision 0, as scikit-learn's
    ``zero_division=0`` gives."""
    if y.shape != pred.shape:
        raise ValueError(f"evaluate: {source}: expected labels of shape {pred.shape} (one per prediction), got "
                         f"an array of shape {y.shape}")
    if y.ndim == 2 and y.dtype.kind in "iu":  # a label per step of a sequence: each step is an example, padding out
        counted = y.ravel() != IGNORE_INDEX
        y, pred = y.ravel()[counted], pred.ravel()[counted]
    if y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() >= classes)):
        outside = sorted(set(np.unique(y[(y < 0) | (y >= classes)]).tolist()))[:5] if y.dtype.kind in "iu" else []
        raise ValueError(f"evaluate: {source} must hold the run's classes, integers 0..{classes - 1}"
                         + (f"; found {', '.join(map(str, outside))}" if outside else f", not {y.dtype}"))
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
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


def regression_report(y: NDArray, pred: NDArray, source: str = "the targets") -> dict[str, Any]:
    """R² (averaged over the outputs, as scikit-learn's ``r2_score``), RMSE and MAE of predictions ``pred``
    against real targets ``y`` of the same shape."""
    if y.dtype.kind not in "iuf":
        raise ValueError(f"evaluate: {source} must be real numbers, not {y.dtype}")
    if pred.ndim == 1 and y.shape == (len(pred), 1):  # one target as a column
        y = y[:, 0]
    if y.shape != pred.shape:
        raise ValueError(f"evaluate: {source}: expected targets of shape {pred.shape} (one per prediction), got "
                         f"an array of shape {y.shape}")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError(f"evaluate: {source} have NaN or inf")
    errors = np.asarray(pred, dtype=np.float64) - y
    return {"r2": r2_score(pred, y), "rmse": rmse(pred, y), "mae": float(np.mean(np.abs(errors))) if y.size else 0.0,
            "examples": int(len(y))}


def format_report(result: dict[str, Any]) -> str:
    if "r2" in result:
        return (f"r2 {result['r2']:.4f}  rmse {result['rmse']:.4g}  mae {result['mae']:.4g} "
                f"on {result['examples']} examples")
    lines = [f"accuracy {result['accuracy']:.4f} on {result['examples']} examples  (macro F1 {result['macro_f1']:.4f})",
             "", "class  precision  recall  f1      support"]
    lines += [f"{r['class']:<5}  {r['precision']:<9.4f}  {r['recall']:<6.4f}  {r['f1']:<6.4f}  {r['support']}"
              for r in result["per_class"]]
    confusion = np.array(result["confusion"])
    width = max(len(str(confusion.max())), 3)
    lines += ["", "confusion (rows: true class, columns: predicted)",
              " " * 6 + " ".join(f"{c:>{width}}" for c in range(len(confusion)))]
    lines += [f"{i:<5} " + " ".join(f"{v:>{width}}" for v in row) for i, row in enumerate(confusion)]
    return "\n".join(lines)


def predictions_csv(labels: NDArray, proba: NDArray) -> bytes:
    """index, predicted label and one probability column per class."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["index", "label", *(f"p{c}" for c in range(proba.shape[1]))])
    for i, (label, row) in enumerate(zip(labels, proba, strict=True)):
        writer.writerow([i, int(label), *(f"{p:.6g}" for p in row)])
    return out.getvalue().encode()


def write_confusion_png(path: Path, confusion: NDArray) -> bool:
    plt = pyplot()
    if plt is None:
        return False
    classes = len(confusion)
    size = min(max(4.5, 0.55 * classes + 1.5), 14)
    fig, ax = plt.subplots(figsize=(size + 0.8, size))
    image = ax.imshow(confusion, cmap="Blues")
    ax.set(xlabel="predicted class", ylabel="true class", title="confusion matrix (counts)",
           xticks=range(classes), yticks=range(classes))  # every class by its number, none between
    fontsize = 11 if classes <= 10 else 9 if classes <= 20 else 7
    for (i, j), v in np.ndenumerate(confusion):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=fontsize,
                color="white" if v > confusion.max() / 2 else "black")
    fig.colorbar(image)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return True


def write_predictions(path: Path, labels: NDArray, proba: NDArray) -> None:
    atomic_write(path, predictions_csv(labels, proba))


def write_values(path: Path, values: NDArray) -> None:
    """A regression's predictions: index and ``value`` (one output) or ``value0``.. (several), each the shortest
    text that reads back to the same number of the values' dtype (float32's 218.49127, not 218.49127197265625)."""
    out = io.StringIO()
    writer = csv.writer(out)
    columns = values.reshape(len(values), -1)
    writer.writerow(["index", *(["value"] if values.ndim == 1 else [f"value{k}" for k in range(columns.shape[1])])])
    for i, row in enumerate(columns):
        writer.writerow([i, *(str(v) for v in row)])
    atomic_write(path, out.getvalue().encode())
