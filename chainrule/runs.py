"""A training run and its folder: set up fresh or resumed from a config, trained with checkpoints, closed
with history.csv, metrics.json and curves.png.

Everything is validated and built before the run folder is created. Checkpoints are written at the end of an
epoch once ``output.checkpoint_seconds`` have passed since the last, and always when training stops (the end,
an early stop, Ctrl-C, SIGTERM): a SIGKILL loses at most that long plus one epoch. A checkpoint holds the
last state (to continue) and the best epoch's parameters (to use) separately.
"""

from __future__ import annotations

import copy
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from chainrule import checkpoint as ckpt
from chainrule import history, report
from chainrule.build import build_objects, load_data
from chainrule.config import RESUMABLE, ConfigError, apply_sets, read_config, resolve, self_contained
from chainrule.files import RunLock, atomic_write, remove_stale_temporaries
from chainrule.loggers.runs import check_loggers, run_loggers, watch_lines
from chainrule.usercode import import_config_modules
from layers.summary import summary_table
from optim import Stop
from solver import Solver


@dataclass
class Run:
    """A resolved self-contained config, its Solver and data, and the folder the run writes to."""

    cfg: dict[str, Any]
    solver: Solver
    run_dir: Path
    preprocessing: dict[str, np.ndarray] = field(default_factory=dict)
    resumed_from_epoch: int | None = None
    lock: RunLock | None = None  # held from a resume's setup on, so nobody writes the folder in between


def create_run_dir(base: Path) -> Path:
    """A new folder: ``base`` or, when that exists and is not empty, the first free numbered sibling.

    A folder is claimed by creating its ``config.toml`` exclusively, whether this process just made the folder
    or found it empty, so runs started at once never share one: a folder another process has just made is
    still empty, and the first to create the file in it has it."""
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            if not path.is_dir() or any(path.iterdir()):
                continue
        try:
            (path / "config.toml").open("x").close()
            return path
        except FileExistsError:
            continue
    raise ConfigError(f"output.dir: no free folder next to {str(base)!r}")


def differing(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Key paths whose values differ between two resolved configs, except those a resume may change."""
    flat_a = {f"{s}.{k}": v for s, d in a.items() for k, v in d.items()}
    flat_b = {f"{s}.{k}": v for s, d in b.items() for k, v in d.items()}
    return sorted(k for k in (flat_a.keys() | flat_b.keys()) - RESUMABLE if flat_a.get(k) != flat_b.get(k))


def config_from(path: str | Path, sets: list[str]) -> dict[str, Any]:
    """A config file, with ``--set`` overrides, resolved and made self-contained."""
    return self_contained(resolve(apply_sets(read_config(str(path)), sets)), Path(path).parent)


def setup(config: str | Path | None, sets: list[str], resume: str | Path | None = None) -> Run:
    """A fresh run of ``config``, or the run in ``resume`` continued (its own config when ``config`` is None;
    a config given with it must agree except in the keys a resume may change). Everything is checked before
    anything is created or changed."""
    if resume is None:
        if config is None:
            raise ConfigError("give a config file, or --resume RUN_DIR")
        cfg = config_from(config, sets)
        solver, pre = prepare(cfg)
        return Run(cfg, solver, create_run_dir(Path(cfg["output"]["dir"] or Path("runs") / Path(config).stem)), pre)
    run_dir = Path(resume)
    if not run_dir.is_dir():
        return resume_run(config, sets, run_dir)
    lock = RunLock(run_dir).acquire()  # before anything in the folder is touched: another may be writing it
    try:
        run = resume_run(config, sets, run_dir)
    except BaseException:
        lock.release()
        raise
    run.lock = lock
    return run


def resume_run(config: str | Path | None, sets: list[str], run_dir: Path) -> Run:
    """The run in ``run_dir`` rebuilt from its checkpoint (or restarted when it has none), checked first."""
    remove_stale_temporaries(run_dir)
    meta: dict[str, Any] | None = None
    arrays: dict[str, np.ndarray] = {}
    if not (run_dir / "checkpoint.npz").exists() and (run_dir / "config.toml").is_file():
        saved = resolve(read_config(str(run_dir / "config.toml")))
    else:
        meta, arrays = ckpt.read_checkpoint(run_dir)
        saved = meta["config"]
    cfg = config_from(config, sets) if config is not None else resolve(apply_sets(copy.deepcopy(saved), sets))
    solver, pre = prepare(cfg)  # fills in the sizes the run's saved config holds, before they are compared
    diff = differing(cfg, saved)
    if diff:
        raise ConfigError(f"--resume: the config differs from the run's in {', '.join(diff)}")
    if meta is None:
        print(f"solver: {run_dir} has no checkpoint (it stopped before its first epoch ended): starting it again "
              "from the beginning", file=sys.stderr)
    else:
        ckpt.restore(solver, meta, arrays, history.read(run_dir, solver, meta["epoch"]))
        before, now = saved["solver"], cfg["solver"]
        solver.reopen(more_patience=(now["patience"] or 0) > (before["patience"] or 0) or now["patience"] == 0,
                      more_epochs=now["epochs"] > before["epochs"])
    return Run(cfg, solver, run_dir, pre, resumed_from_epoch=solver.epoch)


def prepare(cfg: dict[str, Any], loaded: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None
            ) -> tuple[Solver, dict[str, np.ndarray]]:
    """Data (``loaded`` when given: arrays and preprocessing), model and Solver of a self-contained config,
    the data checked by the Solver: all that can fail, before any file is written."""
    check_loggers(cfg["output"]["loggers"])
    import_config_modules(cfg)
    data, pre = load_data(cfg) if loaded is None else loaded
    _, solver = build_objects(cfg, data)
    return solver, pre


@contextmanager
def stop_on_signals(solver: Solver) -> Iterator[None]:
    """The first Ctrl-C or SIGTERM ends training after the current epoch (checkpointed); a second Ctrl-C stops
    at once. Only in the main thread, where Python delivers signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        kind, reason = ((Stop.INTERRUPTED, "interrupted (Ctrl-C)") if signum == signal.SIGINT
                        else (Stop.TERMINATED, "terminated (SIGTERM)"))
        solver.request_stop(kind, reason)
        print(f"\n{reason}: stopping after this epoch (Ctrl-C again to stop now)", file=sys.stderr)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def train(run: Run, on_epoch: Callable[[Solver], None] | None = None) -> int:
    """Train ``run`` to its end; returns the exit status (0, 1 for a non-finite loss, 130 or 143 for a signal).
    ``on_epoch(solver)`` runs after each epoch (a sweep's median stopping rule, say)."""
    with run.lock or RunLock(run.run_dir):
        return train_locked(run, on_epoch)


def train_locked(run: Run, on_epoch: Callable[[Solver], None] | None) -> int:
    cfg, solver, run_dir = run.cfg, run.solver, run.run_dir
    atomic_write(run_dir / "config.toml", tomli_w.dumps(cfg).encode())
    if solver.verbose:
        print(f"run directory: {run_dir}", file=sys.stderr)
        print(summary_table(solver.model, solver.data["X_train"]), file=sys.stderr)
    last_save = time.monotonic()

    history.rewrite(run_dir, solver)  # a new run's headers, or a resumed one's rows up to its checkpoint
    solver.loggers = run_loggers(cfg, run_dir, solver, resumed=run.resumed_from_epoch is not None)
    if solver.verbose:
        for line in watch_lines(cfg, run_dir):
            print(line, file=sys.stderr)
    if run.resumed_from_epoch is not None and solver.epoch < solver.epochs:
        remove_evaluation(run_dir, solver.verbose)
    written = solver.epoch

    def save(s: Solver) -> None:
        nonlocal written
        written = history.append(run_dir, s, written)  # first: the checkpoint must never be ahead of it
        ckpt.save_checkpoint(run_dir, s, cfg, run.preprocessing)
        for logger in s.loggers:  # what is checkpointed is sent (MLflow), or written to disk (TensorBoard)
            logger.flush()

    def on_epoch_end(s: Solver) -> None:
        nonlocal last_save
        if on_epoch is not None:
            on_epoch(s)
        if time.monotonic() - last_save >= cfg["output"]["checkpoint_seconds"]:
            save(s)
            last_save = time.monotonic()

    start = time.perf_counter()
    with stop_on_signals(solver):
        metrics = solver.train(on_epoch_end, on_stop=save)
    metrics["wall_seconds"] = round(time.perf_counter() - start, 3)
    report.write_json(run_dir / "metrics.json", metrics)
    if cfg["output"]["plot"] and not report.write_curves(run_dir, solver) and report.pyplot() is None \
            and solver.verbose:
        print("solver: no curves.png: matplotlib is not installed (pip install -e '.[plot]', or set "
              "output.plot = false)", file=sys.stderr)
    for logger in solver.loggers:
        if hasattr(logger, "log_artifacts"):
            logger.log_artifacts([run_dir / "config.toml", run_dir / "curves.png"])
    already = run.resumed_from_epoch is not None and run.resumed_from_epoch >= solver.epochs
    print(already_trained(solver, run_dir) if already else stop_message(solver, run_dir), file=sys.stderr)
    print(report.summary_line(metrics, run_dir))
    return 0 if solver.stop_reason is None else solver.stop_reason.kind.exit_code


EVALUATION_FILES = ("evaluation.json", "confusion.png", "filters.png", "saliency.png")


def remove_evaluation(run_dir: Path, verbose: bool) -> None:
    """Before a resume trains on: what ``chainrule evaluate`` wrote described the parameters before it."""
    removed = [name for name in EVALUATION_FILES if (run_dir / name).is_file()]
    for name in removed:
        (run_dir / name).unlink()
    if removed and verbose:
        print(f"solver: removed {', '.join(removed)}: they described the run before this resume "
              f"(chainrule evaluate {run_dir} writes them again)", file=sys.stderr)


def already_trained(solver: Solver, run_dir: Path) -> str:
    """A resume asked for no more epochs than the run has: say so, and how to train on."""
    return (f"solver: the run already has {solver.epoch} epochs and solver.epochs is {solver.epochs}: nothing to "
            f"train; to train on, resume with more: chainrule train --resume {run_dir} --set "
            f"solver.epochs={solver.epoch + max(solver.epoch // 2, 1)}")


def stop_message(solver: Solver, run_dir: Path) -> str:
    """Why training stopped, in words, and what to do next where there is something to do."""
    reason = solver.stop_reason
    if reason is None:
        return f"solver: finished {solver.epoch} epoch{'' if solver.epoch == 1 else 's'}"
    resume = f"chainrule train --resume {run_dir}"
    if reason.kind.by_signal:
        return f"solver: {reason}; checkpoint saved; continue with: {resume}"
    if reason.kind is Stop.EARLY:
        more = 2 * (solver.patience or 1)
        return (f"solver: {reason} (epoch {solver.epoch}); to go on: {resume} --set solver.patience={more} "
                "(or solver.patience=0: no early stop)")
    kept = ("the best parameters so far are saved" if solver.val_score_history
            else "no epoch completed, so no parameters improved")
    return f"solver: {reason}; {kept} in {run_dir}"
