"""Hyperparameter sweeps: the ``[sweep]`` section of a config, trials in parallel on an existing engine.

Trials run through one interface, a ``concurrent.futures.Executor``: a local process pool by default, or a
Dask cluster (``distributed.Client(address).get_executor()``) when ``sweep.address`` or ``--address`` is
given. Each trial is a full run folder (``trial-0007/``); its worker holds BLAS to ``cores // workers``
threads. A trial that raises, or whose worker dies, is recorded with its error and retried once.
``sweep.csv`` is rewritten atomically as trials finish, ``best.toml`` is the best trial's complete config,
and ``sweep.png`` shows the metric against the parameters. ``--resume SWEEP_DIR`` keeps finished trials
and resumes unfinished ones from their checkpoints; the same seed samples the same trials.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import tomli_w

from chainrule import runs
from chainrule.config import ConfigError, apply_sets, read_config, resolve
from chainrule.files import atomic_write
from chainrule.loggers.runs import read_mlflow_file, sweep_run
from chainrule.report import pyplot

from .folder import Sweep, TrialStatus, read_rows, write_summary
from .plan import Sampler, cores, make_plan
from .trials import execute, local_executor


def open_sweep(config: str | Path | None, sets: list[str], resume: str | Path | None,
               overrides: dict[str, Any]) -> Sweep:
    """A new sweep folder for ``config``, or the sweep in ``resume`` (its own saved config)."""
    if resume is not None:
        folder = Path(resume)
        saved = folder / "sweep.toml"
        if not saved.is_file():
            raise FileNotFoundError(f"--resume: {str(saved)!r} does not exist; is {str(folder)!r} a sweep folder?")
        raw = read_config(str(saved))
        config_dir = Path(raw.pop("__config_dir__", "."))
        plan = make_plan(apply_sets(copy.deepcopy(raw), sets), config_dir, overrides)
        if overrides["trials"] is not None:  # the saved config as it was, with the new number of trials
            save_config(folder, raw, config_dir, overrides["trials"])
        sweep = Sweep(plan, folder, Sampler(plan))
        sweep.rows = read_rows(folder, plan)
        sweep.attempts = {i: 0 for i in sweep.rows}
        for i in sorted(sweep.rows):  # an ask-and-tell sampler learns the finished trials again
            sweep.sampler.values(i)
            if sweep.finished(i):
                sweep.sampler.tell(i, sweep.rows[i]["metric"] if sweep.rows[i]["status"] is TrialStatus.OK else None)
        return sweep
    if config is None:
        raise ConfigError("give a config file with a [sweep] section, or --resume SWEEP_DIR")
    raw = apply_sets(read_config(str(config)), sets)
    plan = make_plan(raw, Path(config).parent.resolve(), overrides)
    base = Path(resolve(raw)["output"]["dir"] or Path("runs") / f"{Path(config).stem}-sweep")
    folder = runs.create_run_dir(base)
    save_config(folder, raw, plan.config_dir, overrides["trials"])
    return Sweep(plan, folder, Sampler(plan))


def save_config(folder: Path, raw: dict[str, Any], config_dir: Path, trials: int | None) -> None:
    """sweep.toml: the sweep's config with the number of trials it was asked for (``--trials`` too), so that a
    resume runs the same sweep."""
    if trials is not None:
        raw = {**raw, "sweep": {**raw.get("sweep", {}), "trials": trials}}
    atomic_write(folder / "sweep.toml", tomli_w.dumps({**raw, "__config_dir__": str(config_dir)}).encode())


def sweep(config: str | Path | None = None, *, trials: int | None = None, workers: int | None = None,
          client: Any = None, address: str | None = None, resume: str | Path | None = None,
          sets: list[str] | tuple[str, ...] = (), verbose: bool = False) -> list[dict[str, Any]]:
    """Run the sweep of ``config`` (or continue the one in ``resume``); returns the rows of sweep.csv.

    ``client`` (a ``distributed.Client``) or ``address`` (a Dask scheduler) runs the trials on a cluster;
    otherwise a local process pool of ``workers`` (default: the number of cores) runs them.
    """
    s = open_sweep(config, list(sets), resume, {"trials": trials, "workers": workers, "address": address})
    parent = sweep_run(resolve(s.plan.raw), s.folder)  # with MLflow: the sweep's run, its trials' parent
    if parent is not None:
        s.plan.mlflow = (read_mlflow_file(s.folder) or {})["tracking_uri"], parent.run_id
    settings = s.plan.settings
    addr = settings["address"]
    if client is None and addr:
        try:
            from distributed import Client
        except ImportError:
            raise ImportError("sweep.address needs Dask: pip install -e '.[cluster]'") from None
        client = Client(addr)
    if client is not None:
        threads = client.nthreads()
        n = max(1, sum(threads.values())) if settings["workers"] == 0 else settings["workers"]
        executor_factory, per_worker = client.get_executor, 1
    else:
        n = settings["workers"] or cores()
        executor_factory, per_worker = (lambda: local_executor(n)), max(1, cores() // n)
    if verbose:
        print(f"sweep: {s.sampler.total} trials, {n} at a time, {per_worker} BLAS thread(s) each; folder {s.folder}",
              file=sys.stderr)
    try:
        execute(s, executor_factory, n, per_worker, verbose)
    except KeyboardInterrupt:
        write_summary(s)
        print(f"\ninterrupted: finished trials are in {s.folder / 'sweep.csv'}; continue with: "
              f"chainrule sweep --resume {s.folder}", file=sys.stderr)
        raise
    write_summary(s)
    if parent is not None:
        parent.log_artifacts([s.folder / "sweep.csv", s.folder / "sweep.png"])
        parent.close()
    if verbose and pyplot() is None:
        print("sweep: no sweep.png: matplotlib is not installed (pip install -e '.[plot]')", file=sys.stderr)
    return [{k: v for k, v in s.rows[i].items() if k != "val_score_history"} for i in sorted(s.rows)]
