"""Data sources for config runs: spiral, npz, npy (memory-mapped: ``chainrule.mapped``), csv, mnist-idx,
cifar10-bin, digits, mnist1d, text, diabetes.

Every loader returns a dict of arrays X_train, y_train, X_val, y_val (and
X_test, y_test where the source has or is split into them). Nothing is read
with pickle. Errors name the ``data.*`` key or the file.
"""

from __future__ import annotations

import csv
import gzip
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chainrule.mapped import first_bad_row, load_npy_folder, mean_and_std, standardized, tail_val
from losses import Task

Data = dict[str, NDArray[Any]]


def spiral(samples: int = 300, classes: int = 3, noise: float = 0.2, seed: int = 0) -> tuple[NDArray, NDArray]:
    """The classic case study's spiral: ``classes`` arms of ``samples`` 2-D points each, seeded."""
    rng = np.random.default_rng(seed)
    X = np.zeros((samples * classes, 2))
    y = np.repeat(np.arange(classes), samples)
    for k in range(classes):
        r = np.linspace(0.0, 1.0, samples)
        t = np.linspace(k * 4, (k + 1) * 4, samples) + rng.standard_normal(samples) * noise
        X[k * samples:(k + 1) * samples] = np.c_[r * np.sin(t), r * np.cos(t)]
    return X, y


def split(X: NDArray, y: NDArray, val_fraction: float, test_fraction: float, seed: int) -> Data:
    """Shuffle with a seeded Generator and cut into train / val (/ test when test_fraction > 0)."""
    order = np.random.default_rng(seed).permutation(len(X))
    n_val, n_test = round(len(X) * val_fraction), round(len(X) * test_fraction)
    if len(X) - n_val - n_test < 1 or n_val < 1:
        raise ValueError(f"data: val_fraction={val_fraction} and test_fraction={test_fraction} "
                         f"leave no training or validation rows out of {len(X)}")
    val, test, train = order[:n_val], order[n_val:n_val + n_test], order[n_val + n_test:]
    data = {"X_train": X[train], "y_train": y[train], "X_val": X[val], "y_val": y[val]}
    if n_test:
        data.update(X_test=X[test], y_test=y[test])
    return data


def hold_out_val(data: Data, val_fraction: float, seed: int) -> Data:
    """Where a source has no validation arrays, take ``val_fraction`` of the training set."""
    if "X_val" in data:
        return data
    parts = split(data.pop("X_train"), data.pop("y_train"), val_fraction, 0.0, seed)
    return {**parts, **data}


def existing(path: str | Path, key: str = "data.path") -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{key}: {str(p)!r} does not exist")
    return p


def read_npz(path: str | Path, key: str = "data.path") -> Data:
    """Every array of an npz archive, never unpickling anything; errors name ``key`` and the file."""
    path = existing(path, key)
    try:
        with open(path, "rb") as fh:  # our own handle: np.load leaks its file when the content is not an archive
            magic = fh.read(4)
            fh.seek(0)
            if magic != b"PK\x03\x04" and not magic.startswith(b"\x93NUMPY"[:4]):
                raise ValueError(f"its first bytes {magic!r} are not a zip archive's")
            archive = np.load(fh, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive")
            with archive:
                return {k: archive[k] for k in archive.files}
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise ValueError(f"{key}: {str(path)!r} holds object arrays (pickled data), which are never loaded; "
                             "save plain numeric arrays") from None
        raise ValueError(f"{key}: {str(path)!r} is not a readable npz file ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile, NotImplementedError, RuntimeError, SyntaxError,
            tokenize.TokenError) as e:  # zipfile's own errors, and numpy's parse of a damaged array header
        raise ValueError(f"{key}: {str(path)!r} is not a readable npz file ({type(e).__name__}: {e})") from None


def load_npz(path: str) -> Data:
    data = read_npz(path)
    for key in ("X_train", "y_train"):
        if key not in data:
            raise ValueError(f"data.path: {path!r} has no array {key!r} (it has {', '.join(sorted(data)) or 'none'})")
    return data


def csv_rows(path: Path, delimiter: str = ",") -> list[list[str]]:
    """The non-blank rows of a UTF-8 CSV file (a byte-order mark at its start is not part of the first value);
    another encoding is a ValueError naming the file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return [row for row in csv.reader(f, delimiter=delimiter) if any(v.strip() for v in row)]
    except UnicodeDecodeError as e:
        raise ValueError(f"{str(path)!r} is not UTF-8 text (byte {e.start}); save the CSV as UTF-8") from None


def load_csv(path: str, label_column: str | int, task: Task, delimiter: str = ",", names: bool | list[str] = False
             ) -> tuple[NDArray, NDArray]:
    """A CSV with a header row; ``label_column`` by name or index; other columns are numeric features. The
    label column is read by the ``task`` (``Task.targets_from_text``): class numbers, or with ``names`` (a
    training set) class names numbered in sorted order; a regression's real targets."""
    X, labels, where = csv_columns(path, label_column, delimiter)
    return X, task.targets_from_text(labels, where, names)


def csv_columns(path: str, label_column: str | int, delimiter: str = ",") -> tuple[NDArray, list[str], str]:
    """A CSV's numeric features, its label column as text, and the column's name for errors."""
    rows = csv_rows(existing(path), delimiter)
    if len(rows) < 2:
        raise ValueError(f"data.path: {path!r} needs a header row and at least one data row")
    header, body = rows[0], rows[1:]
    short = next((i for i, r in enumerate(body) if len(r) != len(header)), None)
    if short is not None:
        raise ValueError(f"data.path: {path!r} data row {short + 1} has {len(body[short])} values, "
                         f"the header has {len(header)} columns")
    if isinstance(label_column, int):
        col = label_column
        if not -len(header) <= col < len(header):
            raise ValueError(f"data.label_column: index {col} is out of range for {len(header)} columns")
    elif label_column in header:
        col = header.index(label_column)
    else:
        raise ValueError(f"data.label_column: no column {label_column!r} in {path!r}; columns: {', '.join(header)}")
    col %= len(header)
    labels = [r[col].strip() for r in body]
    try:
        X = np.array([[float(v) for i, v in enumerate(r) if i != col] for r in body])
    except ValueError as e:
        raise ValueError(f"data.path: {path!r} has a non-numeric feature value ({e})") from None
    return X, labels, f"{path!r} column {header[col]!r}"


def read_idx(path: Path) -> NDArray:
    """An IDX file (the MNIST format), optionally gzipped."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"data.path: {str(path)!r} cannot be read ({type(e).__name__}: {e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"data.path: {str(path)!r} is not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"data.path: {str(path)!r} holds {data.size} values, its header says {tuple(dims)}")
    return data.reshape(tuple(int(d) for d in dims))


def find(folder: Path, *names: str) -> Path:
    for name in names:
        for candidate in (folder / name, folder / (name + ".gz")):
            if candidate.exists():
                return candidate
    raise FileNotFoundError(f"data.path: {str(folder)!r} has no {names[0]} (or .gz)")


def load_mnist_idx(path: str) -> Data:
    folder = existing(path)
    pick = {"X_train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
            "y_train": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
            "X_test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
            "y_test": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte")}
    data = {key: read_idx(find(folder, *names)) for key, names in pick.items()}
    for split_name in ("train", "test"):
        if len(data[f"X_{split_name}"]) != len(data[f"y_{split_name}"]):
            raise ValueError(f"data.path: {str(folder)!r} has {len(data[f'X_{split_name}'])} {split_name} images "
                             f"but {len(data[f'y_{split_name}'])} labels")
    for key in ("X_train", "X_test"):
        data[key] = as_images(data[key])
    for key in ("y_train", "y_test"):
        data[key] = data[key].astype(np.int64)
    return data


def as_images(images: NDArray) -> NDArray:
    """IDX images (N, H, W) of bytes as (N, 1, H, W) in [0, 1]: one channel, the layout convolutions take."""
    return images.reshape(len(images), 1, *images.shape[1:]) / 255.0


def read_cifar_batch(path: Path) -> tuple[NDArray, NDArray]:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 3073:
        raise ValueError(f"data.path: {str(path)!r} is not a CIFAR-10 binary batch "
                         f"(size {raw.size} is not a multiple of 3073)")
    records = raw.reshape(-1, 3073)
    return records[:, 1:].reshape(-1, 3, 32, 32) / 255.0, records[:, 0].astype(np.int64)


def load_cifar10_bin(path: str) -> Data:
    folder = existing(path)
    if (folder / "cifar-10-batches-bin").is_dir():
        folder = folder / "cifar-10-batches-bin"
    train_files = sorted(folder.glob("data_batch_*.bin"))
    if not train_files:
        raise FileNotFoundError(f"data.path: {str(folder)!r} has no data_batch_*.bin files")
    parts = [read_cifar_batch(p) for p in train_files]
    data = {"X_train": np.concatenate([p[0] for p in parts]), "y_train": np.concatenate([p[1] for p in parts])}
    if (folder / "test_batch.bin").exists():
        data["X_test"], data["y_test"] = read_cifar_batch(folder / "test_batch.bin")
    return data


def load_digits() -> tuple[NDArray, NDArray]:
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        raise ImportError("data.source = 'digits' needs scikit-learn: pip install -e '.[datasets]'") from None
    bunch = sk_digits()
    return bunch.images[:, None] / 16.0, bunch.target.astype(np.int64)  # (N, 1, 8, 8)


def load_diabetes() -> tuple[NDArray, NDArray]:
    """scikit-learn's bundled diabetes data: 442 patients, 10 features, a disease-progression target (25-346)."""
    try:
        from sklearn.datasets import load_diabetes as sk_diabetes
    except ImportError:
        raise ImportError("data.source = 'diabetes' needs scikit-learn: pip install -e '.[datasets]'") from None
    X, y = sk_diabetes(return_X_y=True, scaled=False)
    return X, y.astype(np.float64)


def load_mnist1d(seed: int) -> Data:
    """MNIST-1D (Greydanus, 2020): 4000 training and 1000 test sequences of length 40, 10 classes.

    Built locally by the ``mnist1d`` package from its templates (no download); ``seed`` 42 gives the
    standard data set. The package seeds numpy's global random state; it is put back afterwards.
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise ImportError("data.source = 'mnist1d' needs the mnist1d package: pip install -e '.[mnist1d]'") from None
    args = get_dataset_args()
    args.seed = seed
    state = np.random.get_state()  # noqa: NPY002 - restoring what the package changes
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    return {"X_train": d["x"][:, None], "y_train": d["y"].astype(np.int64),  # (N, 1, 40): one channel
            "X_test": d["x_test"][:, None], "y_test": d["y_test"].astype(np.int64)}


def standardization(X: NDArray, per: str = "feature") -> dict[str, NDArray]:
    """The training set's mean and std (1 where constant), in X's dtype, to apply to any input: per feature
    (every value of an example's shape), or per channel (axis 1, over the examples and every position). One
    streaming pass over chunks of rows (``chainrule.mapped``), so a memory-mapped X is never read whole."""
    axes = (0,) if per == "feature" or X.ndim < 3 else (0, *range(2, X.ndim))
    mean, std = mean_and_std(X, axes)
    std[std == 0] = 1.0
    dtype = X.dtype if X.dtype.kind == "f" else np.dtype(np.float64)
    squeeze = per != "channel"
    return {"mean": (mean[0] if squeeze else mean).astype(dtype), "std": (std[0] if squeeze else std).astype(dtype)}


def standardize(data: Data, stats: dict[str, NDArray] | None = None) -> Data:
    """Subtract the training mean and divide by the training std (``stats`` from ``standardization``; the
    per-channel statistics keep a leading axis of 1 and broadcast over the examples)."""
    stats = standardization(data["X_train"]) if stats is None else stats
    return {k: standardized(v, stats["mean"], stats["std"]) if k.startswith("X_") else v for k, v in data.items()}


def load(cfg: dict[str, Any], base: Path, task: Task) -> Data:
    """Build the data dict from the ``[data]`` section; relative paths resolve against ``base``.

    Every array is checked once, before splitting: real numbers, the ``task``'s targets, matching lengths,
    no NaN or inf (the file, the array and the first bad row are named). ``standardize`` is not applied
    here: the caller computes the statistics and keeps them with the run."""
    source, seed = cfg["source"], cfg["seed"]
    val, test = cfg["val_fraction"], cfg["test_fraction"]
    path = str(base / cfg["path"]) if cfg.get("path") else None
    if source not in ("spiral", "digits", "mnist1d", "diabetes") and path is None:
        raise ValueError(f"data.path: data.source = {source!r} needs a path")
    where = repr(path) if path else f"data.source {source!r}"
    if source in ("spiral", "digits", "csv", "diabetes"):
        names = None  # a CSV's class names, when its labels are names
        if source == "spiral":
            X, y = spiral(cfg["samples"], cfg["classes"], cfg["noise"], seed)
        elif source == "digits":
            X, y = load_digits()
        elif source == "diabetes":
            X, y = load_diabetes()
        else:
            X, labels, column = csv_columns(path, cfg["label_column"], cfg["delimiter"])  # type: ignore[arg-type]
            y, names = task.targets_from_text(labels, column, names=True), task.class_names(labels)
        check_arrays({"X_train": X, "y_train": y}, where, task)
        extra = {"class_names": np.array(names)} if names else {}  # kept with the run, as scikit-learn keeps
        return {**split(X, y, val, test, seed), **extra}  # classes_: predictions and evaluations print them
    if source == "text":
        X, y, vocabulary = load_text(path, cfg["seq_len"])  # type: ignore[arg-type]
        return {**split(X, y, val, test, seed), "vocabulary": vocabulary}
    if source == "npy":
        raw = load_npy_folder(path)  # type: ignore[arg-type]
        check_arrays(raw, where, task)
        return tail_val(raw, val)
    loader = {"npz": load_npz, "mnist-idx": load_mnist_idx, "cifar10-bin": load_cifar10_bin}.get(source)
    raw = load_mnist1d(seed) if loader is None else loader(path)  # type: ignore[arg-type]
    check_arrays(raw, where, task)
    return hold_out_val(raw, val, seed)


def load_text(path: str, seq_len: int) -> tuple[NDArray, NDArray, NDArray]:
    """Any UTF-8 text file as a character model's data: the text cut into sequences of ``seq_len`` characters
    (X, (N, T) integer indices into the vocabulary) whose labels are the next characters (y, (N, T)), and the
    vocabulary, the sorted distinct characters as code points."""
    file = existing(path)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"data.path: {str(file)!r} is not UTF-8 text (byte {e.start})") from None
    if not isinstance(seq_len, int) or seq_len < 1:
        raise ValueError(f"data.seq_len: expected an integer >= 1, got {seq_len!r}")
    n = (len(text) - 1) // seq_len
    if n < 3:
        raise ValueError(f"data.path: {str(file)!r} has {len(text)} characters, too few for 3 sequences of "
                         f"data.seq_len = {seq_len} (and the character after each)")
    vocabulary = np.array(sorted({ord(c) for c in text}), dtype=np.int64)
    codes = np.searchsorted(vocabulary, np.array([ord(c) for c in text[:n * seq_len + 1]], dtype=np.int64))
    return codes[:-1].reshape(n, seq_len), codes[1:].reshape(n, seq_len), vocabulary


def check_arrays(data: Data, where: str, task: Task) -> None:
    """X_* real-valued and finite, y_* the ``task``'s targets (``Task.check_targets``: integer labels, or a
    regression's finite real targets), each X_* as long as its y_*; errors name ``where``."""
    for key, value in data.items():
        if key.startswith("X_") and value.dtype.kind not in "iuf":
            what = "complex" if value.dtype.kind == "c" else f"of dtype {value.dtype}"
            raise ValueError(f"data: {key} in {where} is {what}; expected real numbers")
        if key.startswith("y_"):
            task.check_targets(value, f"data: {key} in {where}", np.dtype(np.float64))
    for key in [k for k in data if k.startswith("X_")]:
        X, y = data[key], data.get("y_" + key[2:])
        if y is not None and len(X) != len(y):
            raise ValueError(f"data: {key} in {where} has {len(X)} rows but y_{key[2:]} has {len(y)}")
        bad = first_bad_row(X) if X.dtype.kind == "f" and X.size else None  # finite, or the first bad row named
        if bad is not None:
            raise ValueError(f"data: {key} in {where} has NaN or inf, first in row {bad}")
