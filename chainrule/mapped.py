"""Data larger than memory: the ``npy`` source, a folder of ``X_train.npy`` and ``y_train.npy`` (optional
``X_val.npy``/``y_val.npy`` and ``X_test.npy``/``y_test.npy``), the inputs memory-mapped, read in chunks of
rows wherever the whole array is visited (the finiteness check, the standardization statistics and their
application), and gathered a batch at a time by the Solver in its shuffled order.

Without ``X_val.npy``, the last ``val_fraction`` of the training rows validate (a view: nothing is copied; a
file in a meaningful order should be shuffled once when it is written).
"""

from __future__ import annotations

import mmap
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from optim.batches import release_pages

Data = dict[str, NDArray[Any]]
#: Rows visited at a time: about 64 MB of a float32 row of 256 values.
CHUNK_BYTES = 64 * 2**20


def chunks(X: NDArray[Any]) -> Iterator[slice]:
    """Slices of rows of ``X`` of about ``CHUNK_BYTES`` each (all rows at once for a small array)."""
    row_bytes = max(1, X.itemsize * int(np.prod(X.shape[1:])))
    step = max(1, CHUNK_BYTES // row_bytes)
    for start in range(0, len(X), step):
        yield slice(start, start + step)


def load_npy_folder(path: str) -> Data:
    """The folder's arrays: inputs memory-mapped read-only, targets read whole; never unpickled."""
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"data.path: {path!r} is not a folder (data.source = \"npy\" reads a folder of X_train.npy, "
                         "y_train.npy and optional X_val.npy, y_val.npy, X_test.npy, y_test.npy)")
    data: Data = {}
    for split in ("train", "val", "test"):
        files = [folder / f"{kind}_{split}.npy" for kind in ("X", "y")]
        present = [f.is_file() for f in files]
        if split == "train" and not all(present) or any(present) and not all(present):
            missing = [f.name for f, ok in zip(files, present, strict=True) if not ok]
            raise ValueError(f"data.path: {path!r} has no {' or '.join(missing)}"
                             + (" (X and y of a split come together)" if split != "train" else ""))
        if all(present):
            data[f"X_{split}"] = read_npy(files[0], mapped=True)
            data[f"y_{split}"] = read_npy(files[1], mapped=False)
    return data


def read_npy(file: Path, mapped: bool) -> NDArray[Any]:
    try:
        return np.load(file, mmap_mode="r" if mapped else None, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e) or "object" in str(e):
            raise ValueError(f"data.path: {str(file)!r} holds object arrays (pickled data), which are never "
                             "loaded; save plain numeric arrays") from None
        raise ValueError(f"data.path: {str(file)!r} is not a readable .npy file ({e})") from None
    except (OSError, EOFError) as e:
        raise ValueError(f"data.path: {str(file)!r} is not a readable .npy file ({type(e).__name__}: {e})") from None


def tail_val(data: Data, val_fraction: float) -> Data:
    """Validation rows for a folder without them: the last ``val_fraction`` of the training rows, as views."""
    if "X_val" in data:
        return data
    X, y = data.pop("X_train"), data.pop("y_train")
    cut = len(X) - round(len(X) * val_fraction)
    if cut < 1 or cut == len(X):
        raise ValueError(f"data: val_fraction={val_fraction} leaves no training or validation rows out of {len(X)}")
    return {"X_train": X[:cut], "y_train": y[:cut], "X_val": X[cut:], "y_val": y[cut:], **data}


def first_bad_row(X: NDArray[Any]) -> int | None:
    """The first row holding NaN or inf, or None; read a chunk at a time."""
    for rows in chunks(X):
        bad = ~np.isfinite(X[rows].reshape(len(X[rows]), -1)).all(axis=1)
        release_pages(X)
        if bad.any():
            return rows.start + int(np.argmax(bad))
    return None


def mean_and_std(X: NDArray[Any], axes: tuple[int, ...]) -> tuple[NDArray[Any], NDArray[Any]]:
    """The mean and standard deviation over ``axes`` (0 and, per channel, the positions) in one pass over
    chunks of rows, each chunk's float64 mean and sum of squared deviations merged into the running ones
    (Chan et al.'s pairwise update): as exact as numpy's two-pass mean and std."""
    count, mean, m2 = 0, np.zeros(0), np.zeros(0)
    for rows in chunks(X):
        part = X[rows].astype(np.float64)
        release_pages(X)
        n = part.size // max(1, int(np.prod([s for i, s in enumerate(part.shape) if i not in axes])))
        part_mean = part.mean(axis=axes, keepdims=True)
        part_m2 = ((part - part_mean) ** 2).sum(axis=axes, keepdims=True)
        if not count:
            count, mean, m2 = n, part_mean, part_m2
            continue
        delta, total = part_mean - mean, count + n
        mean = mean + delta * (n / total)
        m2 = m2 + part_m2 + delta ** 2 * (count * n / total)
        count = total
    if not count:
        raise ValueError("data: X_train has no rows to standardize with")
    return mean, np.sqrt(m2 / count)


def standardized(X: NDArray[Any], mean: NDArray[Any], std: NDArray[Any]) -> NDArray[Any]:
    """(X - mean) / std: in memory for an array in memory; for a memory-mapped one, written a chunk at a time
    to a temporary file (removed when the array is released) and mapped in turn."""
    if not isinstance(X, np.memmap) and not isinstance(getattr(X, "base", None), np.memmap):
        return (X - mean) / std
    dtype = np.result_type(X.dtype, mean.dtype)
    with tempfile.NamedTemporaryFile(prefix="chainrule-standardized-", suffix=".npy") as f:
        out = np.lib.format.open_memmap(f.name, mode="w+", dtype=dtype, shape=X.shape)
        for rows in chunks(X):
            out[rows] = (X[rows] - mean) / std
            out.flush()
            release_pages(X)
            out._mmap.madvise(mmap.MADV_DONTNEED)  # type: ignore[attr-defined]  # flushed, shared: safe to drop
        return np.load(f.name, mmap_mode="r")  # the mapping outlives the name, removed on leaving the block
