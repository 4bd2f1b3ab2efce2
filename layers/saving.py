"""A model's state by dotted name, and its file: ``state_dict``/``load_state_dict`` (``Layer`` methods that
call these) and ``save``/``load`` as a plain npz, written atomically, read without pickle.

    net = Sequential(Affine(4, 8), ReLU(), Affine(8, 3))
    layers.save(net, "net.npz")             # parameters and buffers: "0.W", "0.b", "2.W", ...
    layers.load(net, "net.npz")             # into a model of the same architecture, in place
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from .base import Array, Layer


class Keys(NamedTuple):
    """What ``load_state_dict(strict=False)`` left alone: the model's keys the state lacked, and the state's
    keys the model has not."""

    missing: list[str]
    unexpected: list[str]


def state_dict(model: Layer) -> dict[str, Array]:
    """Copies of the tree's parameters and buffers under their dotted names (``"1.body.0.W"``,
    ``"2.running_mean"``): a snapshot later training does not change."""
    state = {name: value.copy() for name, value in model.params.items()}
    for name, value in model.buffers.items():
        if name in state:
            raise ValueError(f"{type(model).__name__}: {name!r} is both a parameter and a buffer")
        state[name] = value.copy()
    return state


def load_state_dict(model: Layer, state: dict[str, Any], strict: bool = True) -> Keys:
    """Copy ``state``'s arrays into the model's parameters and buffers in place (so an optimizer's references
    stay valid), cast to their dtypes. Everything is checked before anything changes: with ``strict``, missing
    and unexpected keys are a ValueError naming them; a shape that differs is a ValueError naming the key and
    both shapes, strict or not; an integer array for a float one (or the other way) a TypeError."""
    targets = {**model.params, **model.buffers}
    if not isinstance(state, dict):
        raise TypeError(f"load_state_dict: expected a dict of arrays by name, got {type(state).__name__}")
    keys = Keys(sorted(set(targets) - set(state)), sorted(set(state) - set(targets)))
    if strict and (keys.missing or keys.unexpected):
        said = [f"missing {', '.join(map(repr, keys.missing))}" if keys.missing else "",
                f"unexpected {', '.join(map(repr, keys.unexpected))}" if keys.unexpected else ""]
        raise ValueError(f"load_state_dict: the state does not fit {type(model).__name__}: "
                       f"{'; '.join(s for s in said if s)} (strict=False loads the keys both have)")
    arrays = {}
    for name in sorted(set(targets) & set(state)):
        value, target = np.asarray(state[name]), targets[name]
        if value.shape != target.shape:
            raise ValueError(f"load_state_dict: {name!r} has shape {value.shape} in the state, the model's is "
                             f"{target.shape}")
        if value.dtype.kind not in "fiub" or (target.dtype.kind == "f") != (value.dtype.kind == "f"):
            raise TypeError(f"load_state_dict: {name!r} is {value.dtype} in the state, the model's is "
                            f"{target.dtype}")
        arrays[name] = value
    for name, value in arrays.items():
        targets[name][...] = value
    return keys


def save(model: Layer, path: str | os.PathLike[str]) -> None:
    """Write the model's ``state_dict`` to ``path`` as an npz (no pickle), atomically: a kill mid-write leaves
    the old file whole."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"save: {str(path)!r} should end in .npz (numpy adds it otherwise)")
    buffer = io.BytesIO()
    np.savez(buffer, **state_dict(model))  # type: ignore[arg-type]  # names, not savez's options
    atomic_write(path, buffer.getvalue())


def load(model: Layer, path: str | os.PathLike[str], strict: bool = True) -> Keys:
    """Load an npz written by ``save`` (or any npz of arrays by dotted name) into ``model``, in place; pickled
    objects are refused."""
    with np.load(path, allow_pickle=False) as arrays:
        return load_state_dict(model, {name: arrays[name] for name in arrays.files}, strict)


def file_mode() -> int:
    """The mode a new file gets under the current umask (0o666 & ~umask), as ``open`` would give it."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder (``.NAME.*.tmp``), flush it to disk, then rename over
    ``path``. The file gets the umask's mode (a temporary file would otherwise keep mkstemp's 0600)."""
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
