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

import concurrent.futures as cf
import contextlib
import csv
import functools
import io
import json
import multiprocessing
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
from tqdm.auto import tqdm

from chainrule import runs, search_space
from chainrule.build import build_objects, load_data
from chainrule.checkpoint import atomic_write
from chainrule.config import ConfigError, apply_sets, read_config, resolve, self_contained
from chainrule.report import pyplot, save_figure
from solver import Solver

SAMPLERS = ("random", "grid", "tpe")
METRICS = ("best_val_acc", "test_acc", "final_train_acc")
RETRIES = 1
MEDIAN_AFTER = 3  # finished trials needed before the median stopping rule applies


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class Plan:
    """What a sweep runs: the base config (raw), its folder, the settings and the trials' sampled values."""

    raw: dict[str, Any]
    config_dir: Path
    settings: dict[str, Any]
    dists: list[search_space.Distribution]
    values: list[dict[str, Any]] = field(default_factory=list)

    @property
    def metric(self) -> str:
        return str(self.settings["metric"])


def make_plan(raw: dict[str, Any], config_dir: Path, overrides: dict[str, Any]) -> Plan:
    """Check the ``[sweep]`` section and sample the trials (every sampled config validated like a hand-written
    one, before any trial starts; TPE samples as it goes, so only its first config is checked up front)."""
    if "sweep" not in raw:
        raise ConfigError("sweep: the config has no [sweep] section (see chainrule sweep --help)")
    settings = resolve(raw)["sweep"]
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if settings["sampler"] not in SAMPLERS:
        raise ConfigError(f"sweep.sampler: expected one of {', '.join(SAMPLERS)}, got {settings['sampler']!r}")
    if settings["metric"] not in METRICS:
        raise ConfigError(f"sweep.metric: expected one of {', '.join(METRICS)}, got {settings['metric']!r}")
    plan = Plan(raw, config_dir, settings, search_space.parse(settings["params"]))
    if settings["sampler"] == "grid":
        plan.values = search_space.grid_trials(plan.dists, settings["points"])
    elif settings["sampler"] == "random":
        plan.values = search_space.random_trials(plan.dists, settings["trials"], settings["seed"])
    validate(plan, plan.values or search_space.random_trials(plan.dists, 1, settings["seed"]))
    return plan


def trial_config(plan: Plan, values: dict[str, Any]) -> dict[str, Any]:
    """A trial's resolved, self-contained config (quiet, no curves: the sweep has its own picture)."""
    raw = search_space.with_values(plan.raw, values)
    cfg = self_contained(resolve(raw), plan.config_dir)
    cfg["solver"]["verbose"], cfg["output"]["plot"] = False, False
    return cfg


def validate(plan: Plan, values: list[dict[str, Any]]) -> None:
    """Resolve and build every sampled config (the data are loaded once per distinct [data] section)."""
    loaded: dict[str, dict[str, np.ndarray]] = {}
    for i, trial_values in enumerate(values):
        try:
            cfg = trial_config(plan, trial_values)
            key = json.dumps(cfg["data"], sort_keys=True) + cfg["model"]["dtype"]
            if key not in loaded:
                loaded[key] = load_data(cfg)[0]
            build_objects(cfg, loaded[key])
        except ConfigError as e:
            raise ConfigError(f"sweep trial {i} ({describe(trial_values)}): {e}") from None


def describe(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def median_rule(medians: list[float]) -> Any:
    """The median stopping rule for a worker: stop once validation accuracy after epoch k is below the median
    of the finished trials at epoch k."""
    def check(solver: Solver) -> None:
        k = solver.epoch
        if 1 <= k <= len(medians) and solver.val_acc_history[-1] < medians[k - 1]:
            solver.request_stop(f"median stop: val_acc {solver.val_acc_history[-1]:.4f} below the median "
                                f"{medians[k - 1]:.4f} of finished trials at epoch {k}")
    return check


@functools.lru_cache(maxsize=4)
def worker_data(key: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A worker's data, loaded once per distinct [data] section and dtype: the trials of a sweep share it
    (nothing changes the arrays; each Solver indexes copies of its batches)."""
    return load_data(json.loads(key))


def data_key(cfg: dict[str, Any]) -> str:
    return json.dumps({"data": cfg["data"], "model": {"dtype": cfg["model"]["dtype"]}}, sort_keys=True)


def run_trial(cfg: dict[str, Any], trial_dir: str, threads: int, medians: list[float],
              metric: str) -> dict[str, Any]:
    """One trial in a worker process: a full run folder, resumed from its checkpoint when it has one."""
    from threadpoolctl import threadpool_limits

    folder = Path(trial_dir)
    with threadpool_limits(limits=threads, user_api="blas"), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        if (folder / "checkpoint.npz").exists():
            run = runs.setup(None, [], resume=folder)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            solver, pre = runs.prepare(cfg, worker_data(data_key(cfg)))
            run = runs.Run(cfg, solver, folder, pre)
        code = runs.train(run, median_rule(medians) if medians else None)
    metrics = json.loads((folder / "metrics.json").read_text())
    status = {0: "ok", 1: "diverged", 130: "interrupted", 143: "interrupted"}.get(code, f"exit {code}")
    return {"status": status, "metric": metrics.get(metric), "epochs": metrics["epochs_run"],
            "seconds": metrics["seconds"], "stop_reason": metrics.get("stop_reason", ""),
            "val_acc_history": list(run.solver.val_acc_history)}


class Sampler:
    """Trial values by index: precomputed (random, grid) or asked of Optuna's TPE (ask-and-tell)."""

    def __init__(self, plan: Plan) -> None:
        self.plan, self.study = plan, None
        self.asked: dict[int, Any] = {}
        if plan.settings["sampler"] == "tpe":
            try:
                import optuna
            except ImportError:
                raise ImportError("sweep.sampler = 'tpe' needs Optuna: pip install -e '.[search]'") from None
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            self.study = optuna.create_study(direction="maximize",
                                             sampler=optuna.samplers.TPESampler(seed=plan.settings["seed"]))

    @property
    def total(self) -> int:
        return len(self.plan.values) if self.study is None else int(self.plan.settings["trials"])

    def values(self, i: int) -> dict[str, Any]:
        if self.study is None:
            return self.plan.values[i]
        if i not in self.asked:
            self.asked[i] = self.study.ask({d.path: optuna_distribution(d) for d in self.plan.dists})
        return dict(self.asked[i].params)

    def tell(self, i: int, value: float | None) -> None:
        if self.study is not None and i in self.asked:
            if value is None:
                self.study.tell(self.asked[i], state=__import__("optuna").trial.TrialState.FAIL)
            else:
                self.study.tell(self.asked[i], value)


def optuna_distribution(d: search_space.Distribution) -> Any:
    import optuna.distributions as od

    if d.kind == "choice":
        return od.CategoricalDistribution(list(d.values))
    if d.kind == "int":
        return od.IntDistribution(int(d.low), int(d.high), log=d.log)
    return od.FloatDistribution(d.low, d.high, log=d.kind == "loguniform")


def local_executor(workers: int) -> cf.Executor:
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


@dataclass
class Sweep:
    """A sweep's folder, rows and execution state."""

    plan: Plan
    folder: Path
    sampler: Sampler
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    attempts: dict[int, int] = field(default_factory=dict)

    def trial_dir(self, i: int) -> Path:
        return self.folder / f"trial-{i:04d}"

    def finished(self, i: int) -> bool:
        row = self.rows.get(i)
        return row is not None and (row["status"] in ("ok", "diverged") or row["status"].startswith("failed"))

    def medians(self) -> list[float]:
        done = [r["val_acc_history"] for r in self.rows.values() if r["status"] == "ok" and r.get("val_acc_history")]
        if not self.plan.settings["median_stop"] or len(done) < MEDIAN_AFTER:
            return []
        longest = max(len(h) for h in done)
        return [float(np.median([h[k] for h in done if len(h) > k])) for k in range(longest)]

    def record(self, i: int, result: dict[str, Any]) -> None:
        self.rows[i] = {"trial": i, **self.sampler.values(i), **result, "attempts": self.attempts.get(i, 1)}
        if self.finished(i):
            self.sampler.tell(i, result.get("metric") if result["status"] == "ok" else None)
        write_csv(self)


def write_csv(sweep: Sweep) -> None:
    paths = [d.path for d in sweep.plan.dists]
    fields = ["trial", *paths, sweep.plan.metric, "epochs", "seconds", "status", "attempts", "error"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for i in sorted(sweep.rows):
        row = sweep.rows[i]
        writer.writerow({**row, sweep.plan.metric: row.get("metric"), "error": row.get("error", "")})
    atomic_write(sweep.folder / "sweep.csv", out.getvalue().encode())
    hist = {i: r.get("val_acc_history", []) for i, r in sweep.rows.items()}
    atomic_write(sweep.folder / "histories.json", json.dumps(hist).encode())


def read_rows(folder: Path, plan: Plan) -> dict[int, dict[str, Any]]:
    """The rows of an earlier sweep.csv, with the validation histories the median rule needs."""
    path = folder / "sweep.csv"
    if not path.is_file():
        return {}
    hist = json.loads((folder / "histories.json").read_text()) if (folder / "histories.json").is_file() else {}
    rows = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            i = int(row["trial"])
            value = row.get(plan.metric) or None
            rows[i] = {**row, "trial": i, "metric": float(value) if value else None,
                       "attempts": int(row["attempts"]), "val_acc_history": hist.get(str(i), [])}
    return rows


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
                    result = {"status": "failed", "metric": None, "epochs": "", "seconds": "", "error": error}
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
    extra = f"  ({row['stop_reason']})" if row.get("stop_reason", "").startswith("median stop") else ""
    return (f"trial {i:4d}  {describe(sweep.sampler.values(i))}  {sweep.plan.metric} {metric}  "
            f"{row['status']}{extra}")


def best_trial(sweep: Sweep) -> int | None:
    scored = [(r["metric"], -i) for i, r in sweep.rows.items() if r["status"] == "ok" and r["metric"] is not None]
    return -max(scored)[1] if scored else None


def write_summary(sweep: Sweep) -> None:
    best = best_trial(sweep)
    if best is not None:
        cfg = trial_config(sweep.plan, sweep.sampler.values(best))
        cfg["solver"]["verbose"], cfg["output"]["plot"], cfg["output"]["dir"] = True, True, ""
        atomic_write(sweep.folder / "best.toml", tomli_w.dumps(cfg).encode())
    write_picture(sweep)


def write_picture(sweep: Sweep) -> bool:
    """sweep.png: for two continuous parameters the scatter of one against the other (log axes where the
    distribution is log) coloured by the metric; otherwise the metric against each parameter."""
    plt = pyplot()
    rows = [r for r in sweep.rows.values() if r["status"] == "ok" and r["metric"] is not None]
    if plt is None or not rows:
        return False
    dists, metric = sweep.plan.dists, [r["metric"] for r in rows]
    if len(dists) == 2 and all(d.continuous for d in dists):
        fig, ax = plt.subplots(figsize=(6, 5))
        points = ax.scatter([float(r[dists[0].path]) for r in rows], [float(r[dists[1].path]) for r in rows],
                            c=metric, cmap="viridis", s=40)
        fig.colorbar(points, label=sweep.plan.metric)
        ax.set(xlabel=dists[0].path, ylabel=dists[1].path, title=f"{len(rows)} trials")
        for d, set_scale in zip(dists, (ax.set_xscale, ax.set_yscale), strict=True):
            if d.kind == "loguniform" or d.log:
                set_scale("log")
    else:
        fig, axes = plt.subplots(1, len(dists), figsize=(4.5 * len(dists), 4), squeeze=False)
        for d, ax in zip(dists, axes[0], strict=True):
            xs = [r[d.path] if d.continuous else str(r[d.path]) for r in rows]
            ax.scatter([float(x) for x in xs] if d.continuous else xs, metric)
            ax.set(xlabel=d.path, ylabel=sweep.plan.metric)
            if d.kind == "loguniform" or d.log:
                ax.set_xscale("log")
    fig.tight_layout()
    save_figure(fig, sweep.folder / "sweep.png")
    plt.close(fig)
    return True


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
        plan = make_plan(apply_sets(raw, sets), config_dir, overrides)
        sweep = Sweep(plan, folder, Sampler(plan))
        sweep.rows = read_rows(folder, plan)
        sweep.attempts = {i: 0 for i in sweep.rows}
        for i in sorted(sweep.rows):  # an ask-and-tell sampler learns the finished trials again
            sweep.sampler.values(i)
            if sweep.finished(i):
                sweep.sampler.tell(i, sweep.rows[i]["metric"] if sweep.rows[i]["status"] == "ok" else None)
        return sweep
    if config is None:
        raise ConfigError("give a config file with a [sweep] section, or --resume SWEEP_DIR")
    raw = apply_sets(read_config(str(config)), sets)
    plan = make_plan(raw, Path(config).parent.resolve(), overrides)
    base = Path(resolve(raw)["output"]["dir"] or Path("runs") / f"{Path(config).stem}-sweep")
    folder = runs.create_run_dir(base)
    atomic_write(folder / "sweep.toml", tomli_w.dumps({**raw, "__config_dir__": str(plan.config_dir)}).encode())
    return Sweep(plan, folder, Sampler(plan))


def sweep(config: str | Path | None = None, *, trials: int | None = None, workers: int | None = None,
          client: Any = None, address: str | None = None, resume: str | Path | None = None,
          sets: list[str] | tuple[str, ...] = (), verbose: bool = False) -> list[dict[str, Any]]:
    """Run the sweep of ``config`` (or continue the one in ``resume``); returns the rows of sweep.csv.

    ``client`` (a ``distributed.Client``) or ``address`` (a Dask scheduler) runs the trials on a cluster;
    otherwise a local process pool of ``workers`` (default: the number of cores) runs them.
    """
    s = open_sweep(config, list(sets), resume, {"trials": trials, "workers": workers, "address": address})
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
    return [{k: v for k, v in s.rows[i].items() if k != "val_acc_history"} for i in sorted(s.rows)]
