"""Running a sweep's trials: in worker processes (a local process pool or a Dask cluster, through one
``concurrent.futures.Executor`` interface), each with its BLAS threads limited, a failed or killed trial
retried once, a line per finished trial."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import io
import json
import multiprocessing
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from chainrule import runs
from chainrule.build import load_data
from chainrule.usercode import import_config_modules
from solver import Solver, Stop

from .folder import Sweep, TrialStatus
from .plan import describe, trial_config

RETRIES = 1


def median_rule(medians: list[float]) -> Any:
    """The median stopping rule for a worker: stop once the validation score (accuracy, or R²) after epoch k is
    below the median of the finished trials at epoch k."""
    def check(solver: Solver) -> None:
        k = solver.epoch
        if 1 <= k <= len(medians) and solver.val_score_history[-1] < medians[k - 1]:
            score = f"val_{solver.task.score_name} {solver.val_score_history[-1]:.4f}"
            solver.request_stop(Stop.MEDIAN, f"median stop: {score} below the median {medians[k - 1]:.4f} of "
                                f"finished trials at epoch {k}")
    return check


@functools.lru_cache(maxsize=4)
def worker_data(key: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A worker's data, loaded once per distinct [data] section and dtype: the trials of a sweep share it
    (nothing changes the arrays; each Solver indexes copies of its batches)."""
    return load_data(json.loads(key))


def data_key(cfg: dict[str, Any]) -> str:
    """What ``load_data`` reads of a config: the data section, the model's dtype, and the loss (whether its
    targets are labels or values, a user's loss found through the model's imports)."""
    model = {k: cfg["model"][k] for k in ("dtype", "imports", "import_dirs")}
    return json.dumps({"data": cfg["data"], "model": model, "loss": {"type": cfg["loss"]["type"]}}, sort_keys=True)


def run_trial(cfg: dict[str, Any], trial_dir: str, threads: int, medians: list[float],
              metric: str) -> dict[str, Any]:
    """One trial in a worker process: a full run folder, resumed from its checkpoint when it has one."""
    from threadpoolctl import threadpool_limits

    folder = Path(trial_dir)
    with threadpool_limits(limits=threads, user_api="blas"), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        import_config_modules(cfg)  # this worker's first look at the config: its classes, before its data
        if (folder / "checkpoint.npz").exists():
            run = runs.setup(None, [], resume=folder)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            solver, pre = runs.prepare(cfg, worker_data(data_key(cfg)))
            run = runs.Run(cfg, solver, folder, pre)
        runs.train(run, median_rule(medians) if medians else None)
    metrics = json.loads((folder / "metrics.json").read_text())
    stop = run.solver.stop_reason
    return {"status": TrialStatus.after(stop), "metric": metrics.get(metric), "epochs": metrics["epochs_run"],
            "seconds": metrics["train_seconds"], "stop": None if stop is None else stop.kind,
            "stop_reason": "" if stop is None else stop.message,
            "val_score_history": list(run.solver.val_score_history)}


def local_executor(workers: int) -> cf.Executor:
    """A pool of ``workers`` processes that end when the sweep process ends, however it ends (SIGKILL too)."""
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=end_with_parent, initargs=(os.getpid(),))


def end_with_parent(parent: int, every: float = 0.2) -> None:
    """In a worker: a daemon thread that ends the process once ``parent`` is no longer its parent. A killed
    parent cannot tell its workers, and a pool worker waiting for its next task would otherwise wait for ever.
    A trial cut short this way resumes like any killed run: its files are written atomically."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()


def execute(sweep: Sweep, executor_factory: Any, workers: int, threads: int, verbose: bool) -> None:
    """Run every unfinished trial, at most ``workers`` at once; retry a failed attempt once."""
    pending = [i for i in range(sweep.sampler.total) if not sweep.finished(i)]
    executor = executor_factory()
    if pending:  # start every worker now, loading the data they share
        key = data_key(trial_config(sweep.plan, sweep.sampler.values(pending[0])))
        for _ in range(workers):
            executor.submit(worker_data, key)
    in_flight: dict[cf.Future, int] = {}
    bar = tqdm(total=sweep.sampler.total, initial=sweep.sampler.total - len(pending), unit="trial",
               disable=not (verbose and sys.stderr.isatty()), leave=False)
    try:
        while pending or in_flight:
            while pending and len(in_flight) < workers:
                i = pending.pop(0)
                cfg = trial_config(sweep.plan, sweep.sampler.values(i))
                sweep.attempts[i] = sweep.attempts.get(i, 0) + 1
                future = executor.submit(run_trial, cfg, str(sweep.trial_dir(i)), threads, sweep.medians(),
                                         sweep.plan.metric)
                in_flight[future] = i
            done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
            for future in done:
                i = in_flight.pop(future)
                try:
                    result = future.result()
                except Exception as e:  # the trial raised, or its worker died
                    error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                    if isinstance(e, cf.process.BrokenProcessPool):
                        close(executor, wait=False)
                        executor = executor_factory()
                    if sweep.attempts[i] <= RETRIES:
                        pending.insert(0, i)
                        say(bar, verbose, f"trial {i}: {error}; retrying")
                        continue
                    result = {"status": TrialStatus.FAILED, "metric": None, "epochs": "", "seconds": "", "error": error}
                sweep.record(i, result)
                bar.update()
                say(bar, verbose, trial_line(sweep, i))
    finally:
        bar.close()
        close(executor, wait=True)


def close(executor: cf.Executor, wait: bool) -> None:
    """Shut an executor down, cancelling what has not started (Dask's executor has no cancel_futures)."""
    try:
        executor.shutdown(wait=wait, cancel_futures=True)
    except TypeError:
        executor.shutdown(wait=wait)


def say(bar: tqdm, verbose: bool, line: str) -> None:
    if verbose:
        bar.write(line, file=sys.stderr)


def trial_line(sweep: Sweep, i: int) -> str:
    row = sweep.rows[i]
    metric = "-" if row.get("metric") is None else f"{row['metric']:.4f}"
    extra = f"  ({row['stop_reason']})" if row.get("stop") is Stop.MEDIAN else ""
    return (f"trial {i:4d}  {describe(sweep.sampler.values(i))}  {sweep.plan.metric} {metric}  "
            f"{row['status'].value}{extra}")
