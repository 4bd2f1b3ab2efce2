"""Inputs for prediction, and what predict and evaluate write (the reports themselves are the task's:
``losses.tasks``).

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
from chainrule.files import atomic_write
from chainrule.report import pyplot, save_figure
from losses import Task

NPZ_KEYS = (("X", "y"), ("X_test", "y_test"), ("X_val", "y_val"), ("X_train", "y_train"))


def read_inputs(path: str | Path, task: Task, label_column: str = "label", names: list[str] | None = None
                ) -> tuple[NDArray, NDArray | None]:
    """Inputs X (N, ...) and labels y (N,) or None from a file or folder in one of the supported formats; a
    CSV's label column is read by the ``task`` (class numbers, or a regression's real-valued targets)."""
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
        return read_csv_inputs(p, task, label_column, names)
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


def read_csv_inputs(path: Path, task: Task, label_column: str, names: list[str] | None = None
                    ) -> tuple[NDArray, NDArray | None]:
    """A CSV's rows of numbers. The first row is a header unless every value in it is a number (then it is
    data); a ``label_column`` named in the header holds the ``task``'s targets. Empty and header-only files are
    errors."""
    rows = datasets.csv_rows(path)
    first = rows[0] if rows else None
    if first is None:
        raise ValueError(f"input: {str(path)!r} is empty")
    if label_column in first:
        return datasets.load_csv(str(path), label_column, task, names=names or False)  # names: the run's classes
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


def write_predictions(path: Path, table: tuple[list[str], list[list[Any]]]) -> None:
    """A task's prediction table (``Task.prediction_table``: a header and rows) as CSV, written atomically."""
    header, rows = table
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write(path, out.getvalue().encode())
