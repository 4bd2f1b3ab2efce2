"""Checkpoints: everything needed to continue a run bit for bit, written atomically as npz (never pickle)."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.data import read_npz as read_arrays
from solver import Solver, StopReason

FORMAT = 5  # 3: buffers and Generator states; 4: validation loss, measuring stream, preprocessing; 5: stop kind
READABLE = (3, 4, 5)


def file_mode() -> int:
    """The mode a new file gets under the current umask (0o666 & ~umask), as ``open`` would give it."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename over ``path``.

    The file gets the umask's mode (a temporary file would otherwise keep mkstemp's 0600)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
    """Everything needed to continue training bit for bit, and to use the model: scalars and per-epoch lists
    (JSON) and arrays. ``param/`` and ``buffer/`` are the last state, ``best/`` and ``best_buffer/`` the best
    epoch's, ``pre/`` the preprocessing statistics (standardization's mean and std).

    The per-step loss history is an array: as JSON it grew to most of the cost of a checkpoint.
    """
    opt_scalars, opt_arrays = solver.optimizer.state_dict()
    meta = {
        "format": FORMAT, "epoch": solver.epoch, "base_lr": solver.base_lr, "optimizer": opt_scalars,
        "rng": solver.rng.bit_generator.state, "sample_rng": solver.sample_rng.bit_generator.state,
        "val_loss_history": solver.val_loss_history, "best_val_acc": solver.best_val_acc,
        "bad_epochs": solver.bad_epochs,
        "stop_reason": None if solver.stop_reason is None else solver.stop_reason.as_json(),
        "train_acc_history": solver.train_acc_history,
        "val_acc_history": solver.val_acc_history, "lr_history": solver.lr_history,
        "epoch_seconds": solver.epoch_seconds, "config": config,
        "generators": {k: g.bit_generator.state for k, g in solver.model.generators().items()},
        "input_shape": list(solver.data["X_train"].shape[1:]),
    }
    arrays = {f"param/{k}": v for k, v in solver.model.params.items()}
    arrays.update({f"best/{k}": v for k, v in solver.best_params.items()})
    arrays.update({f"buffer/{k}": v for k, v in solver.model.buffers.items()})
    arrays.update({f"best_buffer/{k}": v for k, v in solver.best_buffers.items()})
    arrays.update({f"optim/{k}": v for k, v in opt_arrays.items()})
    arrays.update({f"pre/{k}": v for k, v in preprocessing.items()})
    arrays["history/loss"] = np.array(solver.loss_history, dtype=np.float64)
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


META_KEYS = ("epoch", "base_lr", "optimizer", "rng", "best_val_acc", "bad_epochs", "stop_reason",
             "train_acc_history", "val_acc_history", "lr_history", "epoch_seconds", "config")
PER_EPOCH = ("train_acc_history", "val_acc_history", "lr_history", "epoch_seconds")


def check_checkpoint(solver: Solver, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Everything a resume will use is present and consistent, checked before anything is changed or written:
    the metadata's keys and per-epoch lists, the loss history's length, and every array's name and shape."""
    source = "--resume: checkpoint"
    missing = [k for k in META_KEYS if k not in meta] + [k for k in ("history/loss",) if k not in arrays]
    if missing:
        raise ValueError(f"{source} lacks {', '.join(missing)}; it is damaged or not from chainrule")
    epoch = meta["epoch"]
    lengths = {k: len(meta[k]) for k in PER_EPOCH if isinstance(meta[k], list)}
    if not isinstance(epoch, int) or epoch < 0 or len(lengths) < len(PER_EPOCH) or set(lengths.values()) != {epoch}:
        raise ValueError(f"{source} says epoch {epoch!r} but holds per-epoch lists of lengths {lengths}")
    if len(arrays["history/loss"]) < epoch * solver.steps_per_epoch:
        raise ValueError(f"{source} holds {len(arrays['history/loss'])} step losses, fewer than {epoch} epochs "
                         f"of {solver.steps_per_epoch} steps")
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


def restore(solver: Solver, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Load a checkpoint into a freshly built solver (same config): parameters and buffers are written in place."""
    check_checkpoint(solver, meta, arrays)
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
    solver.best_val_acc, solver.bad_epochs = meta["best_val_acc"], meta["bad_epochs"]
    solver.stop_reason = StopReason.from_json(meta["stop_reason"])
    solver.loss_history = arrays["history/loss"].tolist()
    for key in ("train_acc_history", "val_acc_history", "lr_history", "epoch_seconds"):
        setattr(solver, key, list(meta[key]))
    solver.val_loss_history = list(meta.get("val_loss_history", [float("nan")] * solver.epoch))
