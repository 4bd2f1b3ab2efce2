"""Checkpoints: everything needed to continue a run bit for bit, written atomically as npz (never pickle)."""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.data import read_npz as read_arrays
from solver import Solver, StopReason

FORMAT = 6  # 3: buffers and Generator states; 4: validation loss, measuring stream, preprocessing; 5: stop kind;
#            6: the history in history.csv and steps.csv only
READABLE = (3, 4, 5, 6)


def file_mode() -> int:
    """The mode a new file gets under the current umask (0o666 & ~umask), as ``open`` would give it."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename over ``path``.

    The file gets the umask's mode (a temporary file would otherwise keep mkstemp's 0600)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:  # no such folder, or not writable: name the file the caller asked for
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # name the file the caller asked for, not the temporary one
        Path(tmp).unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def solver_state(solver: Solver, config: dict[str, Any],
                 preprocessing: dict[str, np.ndarray]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Everything needed to continue training bit for bit, and to use the model, but the history (in the run's
    history.csv and steps.csv, so a checkpoint's size does not grow with the run): scalars (JSON) and arrays.
    ``param/`` and ``buffer/`` are the last state, ``best/`` and ``best_buffer/`` the best epoch's, ``pre/``
    the preprocessing statistics (standardization's mean and std).
    """
    opt_scalars, opt_arrays = solver.optimizer.state_dict()
    meta = {
        "format": FORMAT, "epoch": solver.epoch, "base_lr": solver.base_lr, "optimizer": opt_scalars,
        "rng": solver.rng.bit_generator.state, "sample_rng": solver.sample_rng.bit_generator.state,
        "best_val_acc": solver.best_val_score,  # the best epoch's score: its accuracy, or R² for regression
        "best_val_loss": solver.best_val_loss if math.isfinite(solver.best_val_loss) else None,
        "bad_epochs": solver.bad_epochs,
        "stop_reason": None if solver.stop_reason is None else solver.stop_reason.as_json(),
        "config": config,
        "generators": {k: g.bit_generator.state for k, g in solver.model.generators().items()},
        "input_shape": list(solver.data["X_train"].shape[1:]), "classes": solver.num_classes,
        "input_dtype": str(solver.data["X_train"].dtype),
    }
    arrays = {f"param/{k}": v for k, v in solver.model.params.items()}
    arrays.update({f"best/{k}": v for k, v in solver.best_params.items()})
    arrays.update({f"buffer/{k}": v for k, v in solver.model.buffers.items()})
    arrays.update({f"best_buffer/{k}": v for k, v in solver.best_buffers.items()})
    arrays.update({f"optim/{k}": v for k, v in opt_arrays.items()})
    arrays.update({f"pre/{k}": v for k, v in preprocessing.items()})
    return meta, arrays


def save_checkpoint(run_dir: Path, solver: Solver, config: dict[str, Any],
                    preprocessing: dict[str, np.ndarray]) -> None:
    """checkpoint.npz holds the arrays and the metadata (as a JSON string); checkpoint.json mirrors the metadata.

    The npz alone is the source of truth, so a kill between the two writes loses nothing.
    """
    meta, arrays = solver_state(solver, config, preprocessing)
    text = json.dumps(meta, indent=1)
    buffer = io.BytesIO()
    np.savez(buffer, __meta__=np.array(text), **arrays)  # type: ignore[arg-type]
    atomic_write(run_dir / "checkpoint.npz", buffer.getvalue())
    atomic_write(run_dir / "checkpoint.json", text.encode())


def read_npz(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON metadata and the arrays of an npz written by this package, never unpickling anything."""
    if not path.is_file():
        what = "does not exist" if not path.exists() else "is not a file"
        raise FileNotFoundError(f"{str(path)!r} {what}")
    arrays = read_arrays(path, "checkpoint")
    try:
        meta = json.loads(str(arrays.pop("__meta__")))
    except (KeyError, ValueError) as e:
        raise ValueError(f"{str(path)!r} has no readable chainrule metadata ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{str(path)!r}: its metadata is not a JSON object")
    return meta, arrays


def read_checkpoint(run_dir: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A run folder's checkpoint.npz: its metadata and arrays."""
    path = run_dir / "checkpoint.npz"
    meta, arrays = read_npz(path)
    if meta.get("format") not in READABLE:
        raise ValueError(f"{str(path)!r} has checkpoint format {meta.get('format')}, expected {FORMAT}")
    return meta, arrays


def with_prefix(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays stored under ``prefix`` ("param/", "best/", ...), keyed without it."""
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def load_arrays(kind: str, target: dict[str, np.ndarray], arrays: dict[str, np.ndarray], prefix: str,
                source: str = "checkpoint") -> None:
    """Write the ``prefix``-ed arrays into ``target`` in place, checking names and shapes first (``source``
    names the file in errors)."""
    saved = with_prefix(arrays, prefix)
    if set(saved) != set(target):
        raise ValueError(f"{source}: its {kind} {sorted(saved)} do not match the model's {sorted(target)}")
    for key, value in target.items():
        if saved[key].shape != value.shape:
            raise ValueError(f"{source}: {kind[:-1]} {key!r} has shape {saved[key].shape}, "
                             f"the model's is {value.shape}")
    for key, value in target.items():
        value[...] = saved[key]


META_KEYS = ("epoch", "base_lr", "optimizer", "rng", "best_val_acc", "bad_epochs", "stop_reason", "config")
#: Formats before 6 kept the history in the checkpoint: these lists in the metadata, the step losses in an array.
OLD_HISTORY = ("train_acc_history", "val_acc_history", "lr_history", "epoch_seconds")
#: The Solver's list each of those is, by name.
OLD_LISTS = {"train_acc_history": "train_score_history", "val_acc_history": "val_score_history"}


def check_checkpoint(solver: Solver, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Everything a resume will use is present and consistent, checked before anything is changed or written:
    the metadata's keys (and an old format's history), and every array's name and shape."""
    source = "--resume: checkpoint"
    old = not history_in_files(meta)
    missing = [k for k in META_KEYS + (OLD_HISTORY if old else ()) if k not in meta]
    missing += ["history/loss"] if old and "history/loss" not in arrays else []
    if missing:
        raise ValueError(f"{source} lacks {', '.join(missing)}; it is damaged or not from chainrule")
    epoch = meta["epoch"]
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise ValueError(f"{source} says epoch {epoch!r}; expected a whole number of epochs")
    if old:
        check_old_history(solver, meta, arrays)
    model = solver.model
    expected = (("parameters", "param/", model.params), ("best parameters", "best/", model.params),
                ("buffers", "buffer/", model.buffers), ("best buffers", "best_buffer/", model.buffers))
    for kind, prefix, target in expected:
        saved = with_prefix(arrays, prefix)
        if set(saved) != set(target) or any(saved[k].shape != v.shape for k, v in target.items()):
            raise ValueError(f"{source}: its {kind} do not match the model's (names or shapes differ)")
    for key, value in with_prefix(arrays, "optim/").items():
        name = key.split("/", 1)[-1]
        if name not in model.params or value.shape != model.params[name].shape:
            raise ValueError(f"{source}: optimizer state {key!r} matches no parameter of the model")


def check_old_history(solver: Solver, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    source, epoch = "--resume: checkpoint", meta["epoch"]
    lengths = {k: len(meta[k]) for k in OLD_HISTORY if isinstance(meta[k], list)}
    if len(lengths) < len(OLD_HISTORY) or set(lengths.values()) != {epoch}:
        raise ValueError(f"{source} says epoch {epoch!r} but holds per-epoch lists of lengths {lengths}")
    if len(arrays["history/loss"]) < epoch * solver.steps_per_epoch:
        raise ValueError(f"{source} holds {len(arrays['history/loss'])} step losses, fewer than {epoch} epochs "
                         f"of {solver.steps_per_epoch} steps")


def old_history(solver: Solver, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """The Solver's history lists as a checkpoint of format 3 to 5 held them."""
    lists = {OLD_LISTS.get(k, k): list(meta[k]) for k in OLD_HISTORY}
    lists["loss_history"] = arrays["history/loss"].tolist()
    lists["val_loss_history"] = list(meta.get("val_loss_history", [float("nan")] * meta["epoch"]))
    lists["clip_history"] = [0] * meta["epoch"]  # no clipping before format 6
    return lists


def history_in_files(meta: dict[str, Any]) -> bool:
    """Whether the checkpoint's history is in the run's files (format 6 on) rather than in itself."""
    return bool(meta.get("format", FORMAT) >= 6)


def restore(solver: Solver, meta: dict[str, Any], arrays: dict[str, np.ndarray],
            history: dict[str, list[float]] | None = None) -> None:
    """Load a checkpoint into a freshly built solver (same config): parameters and buffers are written in place.
    ``history`` is the Solver's history lists as read back from the run's files (``chainrule.history.read``),
    needed from format 6 on; before, the checkpoint held them."""
    check_checkpoint(solver, meta, arrays)
    if history is None and history_in_files(meta):
        raise ValueError("restore: a checkpoint of format 6 or later needs the history read from its run folder")
    lists = history if history is not None else old_history(solver, meta, arrays)
    load_arrays("parameters", solver.model.params, arrays, "param/", "--resume")
    load_arrays("buffers", solver.model.buffers, arrays, "buffer/", "--resume")
    gens, saved_gens = solver.model.generators(), meta.get("generators", {})
    if set(gens) != set(saved_gens):
        raise ValueError(f"--resume: checkpoint Generators {sorted(saved_gens)} do not match "
                         f"the model's {sorted(gens)}")
    for key, g in gens.items():
        g.bit_generator.state = saved_gens[key]
    solver.best_params = {k: v.copy() for k, v in with_prefix(arrays, "best/").items()}
    solver.best_buffers = {k: v.copy() for k, v in with_prefix(arrays, "best_buffer/").items()}
    solver.optimizer.load_state_dict(meta["optimizer"], with_prefix(arrays, "optim/"))
    solver.rng.bit_generator.state = meta["rng"]
    if "sample_rng" in meta:
        solver.sample_rng.bit_generator.state = meta["sample_rng"]
    solver.epoch, solver.base_lr = meta["epoch"], meta["base_lr"]
    solver.best_val_score, solver.bad_epochs = meta["best_val_acc"], meta["bad_epochs"]
    best_loss = meta.get("best_val_loss")  # format 6 on; a classification run does not need it
    solver.best_val_loss = math.inf if best_loss is None else best_loss
    solver.stop_reason = StopReason.from_json(meta["stop_reason"])
    for key, values in lists.items():
        setattr(solver, key, values)
