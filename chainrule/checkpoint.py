"""Checkpoints: a run's model and Solver state as one npz (never pickle), written atomically, read back whole.

``checkpoint.npz`` holds the arrays and, under ``__meta__``, a JSON string; ``checkpoint.json`` mirrors the JSON
for readers. The JSON has ``format``, the run's ``config``, one example's ``input_shape`` and ``input_dtype``,
``classes`` (the outputs per example), and beside them the Solver's state (``Solver.state_dict``'s scalars: the
``epoch``, the ``stop_reason``, ...) but its history, which is in the run's history.csv and steps.csv, so a
checkpoint does not grow with the run. The arrays are the model's
``param/`` and ``buffer/`` (the last state), the Solver's ``best/``, ``best_buffer/`` and ``optim/``, and
the preprocessing statistics under ``pre/``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.data import read_npz as read_arrays
from chainrule.files import atomic_write
from solver import Solver

FORMAT = 7  # 7: the Solver's own state_dict; older formats are not read (see the CHANGELOG)
RUN_KEYS = ("format", "config", "input_shape", "input_dtype", "classes")  # the rest is the Solver's state


def save_checkpoint(run_dir: Path, solver: Solver, config: dict[str, Any],
                    preprocessing: dict[str, np.ndarray]) -> None:
    """Write the checkpoint of ``solver`` (and its model); the npz alone is the source of truth, so a kill
    between the two writes loses nothing."""
    scalars, solver_arrays = solver.state_dict()
    scalars.pop("history")
    meta = {"format": FORMAT, "config": config, "input_shape": list(solver.data["X_train"].shape[1:]),
            "input_dtype": str(solver.data["X_train"].dtype), "classes": solver.num_classes, **scalars}
    arrays = {f"param/{k}": v for k, v in solver.model.params.items()}
    arrays.update({f"buffer/{k}": v for k, v in solver.model.buffers.items()})
    arrays.update(solver_arrays)
    arrays.update({f"pre/{k}": v for k, v in preprocessing.items()})
    text = json.dumps(meta, indent=1)
    buffer = io.BytesIO()
    np.savez(buffer, __meta__=np.array(text), **arrays)
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
    if meta.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} has checkpoint format {meta.get('format')}, expected {FORMAT} (a run "
                         "written by an older chainrule: train it again, or resume it with that version)")
    missing = [k for k in (*RUN_KEYS, "epoch") if k not in meta]
    if missing:
        raise ValueError(f"{str(path)!r} lacks {', '.join(missing)}; it is damaged or not from chainrule")
    epoch = meta["epoch"]
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise ValueError(f"{str(path)!r} says epoch {epoch!r}; expected a whole number of epochs")
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


def restore(solver: Solver, meta: dict[str, Any], arrays: dict[str, np.ndarray],
            history: dict[str, list[float]]) -> None:
    """Load a checkpoint into a freshly built solver of the same config: the Solver's state (everything checked
    before anything changes, ``Solver.load_state_dict``), then the model's parameters and buffers in place.
    ``history`` is the history as read back from the run's files (``chainrule.history.read``)."""
    model = solver.model
    for kind, prefix, target in (("parameters", "param/", model.params), ("buffers", "buffer/", model.buffers)):
        saved = with_prefix(arrays, prefix)
        if set(saved) != set(target) or any(saved[k].shape != v.shape for k, v in target.items()):
            raise ValueError(f"--resume: checkpoint: its {kind} do not match the model's (names or shapes differ)")
    try:
        scalars = {k: v for k, v in meta.items() if k not in RUN_KEYS}
        solver.load_state_dict({**scalars, "history": history}, arrays)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"--resume: checkpoint: {e}") from None
    load_arrays("parameters", model.params, arrays, "param/", "--resume")
    load_arrays("buffers", model.buffers, arrays, "buffer/", "--resume")
