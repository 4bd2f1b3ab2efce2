"""A run's history on disk: ``history.csv`` (one row per epoch) and ``steps.csv`` (one row per training step).

Each checkpoint appends only the rows since the one before, in one write each, flushed to disk before the
checkpoint is written, so a write costs the same at epoch 20 and at epoch 100,000 and the checkpoint does not
grow with the run. The checkpoint is the truth: a resume reads the files back up to its epoch, and rows past
it (a kill between the history and the checkpoint, or in the middle of a row) are dropped when the resumed
run rewrites the files once at its start.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

from chainrule.files import atomic_write
from solver import Solver

HISTORY, STEPS = "history.csv", "steps.csv"
STEP_FIELDS = ["epoch", "step", "loss"]


def epoch_fields(solver: Solver) -> list[str]:
    """history.csv's header: the epoch, the mean training loss of its steps, then the Solver's per-epoch
    columns (``Solver.epoch_lists``: the validation loss, the task's measures, lr, seconds, clipped)."""
    return ["epoch", "loss", *solver.epoch_lists()]


def epoch_rows(solver: Solver, start: int = 0) -> list[list[Any]]:
    """history.csv rows of epochs ``start + 1`` to the solver's epoch: the loss is the mean of the epoch's steps."""
    steps = solver.steps_per_epoch
    lists = list(solver.epoch_lists().values())
    rows = []
    for e in range(start, solver.epoch):
        losses = solver.loss_history[e * steps:(e + 1) * steps]
        loss = math.fsum(losses) / len(losses) if losses else math.nan
        rows.append([e + 1, loss, *(values[e] for values in lists)])
    return rows


def step_rows(solver: Solver, start: int = 0) -> list[list[Any]]:
    """steps.csv rows of the steps of epochs ``start + 1`` to the solver's epoch."""
    steps = solver.steps_per_epoch
    end = min(solver.epoch * steps, len(solver.loss_history))
    return [[i // steps + 1, i + 1, solver.loss_history[i]] for i in range(start * steps, end)]


def csv_text(rows: list[list[Any]], header: list[str] | None = None) -> bytes:
    """Rows as CSV; floats as Python writes them (the shortest text that reads back to the same float)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def rewrite(run_dir: Path, solver: Solver) -> None:
    """Both files, whole, from the solver's lists (atomically): at the start of a run or a resume."""
    atomic_write(run_dir / HISTORY, csv_text(epoch_rows(solver), epoch_fields(solver)))
    atomic_write(run_dir / STEPS, csv_text(step_rows(solver), STEP_FIELDS))


def append(run_dir: Path, solver: Solver, written: int) -> int:
    """Append the rows of the epochs after ``written`` to both files and flush them to disk; returns the
    epoch now written."""
    if solver.epoch > written:
        append_bytes(run_dir / STEPS, csv_text(step_rows(solver, written)))
        append_bytes(run_dir / HISTORY, csv_text(epoch_rows(solver, written)))
    return solver.epoch


def append_bytes(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None
    finally:
        os.close(fd)


def read(run_dir: Path, solver: Solver, epoch: int) -> dict[str, list[float]]:
    """The history of the first ``epoch`` epochs read back from the run's files, as ``Solver.state_dict`` keeps
    it: "loss" (every step's) and the per-epoch columns; a missing, damaged or short file is a ValueError
    naming it."""
    rows = read_rows(run_dir / HISTORY, epoch_fields(solver), epoch, "epochs")
    lists: dict[str, list[Any]] = {column: [row[column] for row in rows] for column in solver.epoch_lists()}
    steps_per_epoch = solver.steps_per_epoch
    steps = read_rows(run_dir / STEPS, STEP_FIELDS, epoch * steps_per_epoch, "steps")
    expected = [[i // steps_per_epoch + 1, i + 1] for i in range(len(steps))]
    if [[row["epoch"], row["step"]] for row in steps] != expected:
        raise ValueError(f"--resume: {str(run_dir / STEPS)!r}: its epoch and step columns are not "
                         f"{steps_per_epoch} steps an epoch numbered from 1; the file is damaged")
    lists["loss"] = [row["loss"] for row in steps]
    lists["clipped"] = [int(v) for v in lists["clipped"]]
    return lists


def read_rows(path: Path, fields: list[str], count: int, what: str) -> list[dict[str, float]]:
    """The first ``count`` complete rows of ``path`` as numbers, the header checked. A last line
    without its newline is a row cut short by a kill, and is left out."""
    try:
        text = path.read_bytes().decode()
    except FileNotFoundError:
        raise ValueError(f"--resume: {str(path)!r} is missing; the run's history is needed to resume it") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"--resume: cannot read {str(path)!r} ({e})") from None
    lines = text.split("\n")[:-1]  # the last item is "" after a final newline, or a row cut short
    if not lines or lines[0].split(",") != fields:
        raise ValueError(f"--resume: {str(path)!r} does not start with the header {','.join(fields)}; "
                         "the file is damaged")
    rows = []
    for number, line in enumerate(lines[1:count + 1], start=2):
        cells = line.split(",")
        try:
            values = [float(cell) for cell in cells]
        except ValueError:
            values = []
        if len(values) != len(fields):
            raise ValueError(f"--resume: {str(path)!r} line {number} is not {len(fields)} numbers: {line[:80]!r}")
        rows.append(dict(zip(fields, values, strict=True)))
    if len(rows) < count:
        raise ValueError(f"--resume: {str(path)!r} holds {len(rows)} {what}, fewer than the checkpoint's "
                         f"{count}; the file is damaged")
    return rows
