"""What a sweep runs: the ``[sweep]`` settings, the trials' sampled values (random, grid, or asked of Optuna's
TPE), and every sampled config validated like a hand-written one before any trial starts."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.build import build_objects, load_data, task_of
from chainrule.config import ConfigError, resolve, self_contained
from chainrule.usercode import import_config_modules
from losses import Task

from . import space

SAMPLERS = ("random", "grid", "tpe")


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class Plan:
    """What a sweep runs: the base config (raw), its folder, the settings and the trials' sampled values."""

    raw: dict[str, Any]
    config_dir: Path
    settings: dict[str, Any]
    dists: list[space.Distribution]
    values: list[dict[str, Any]] = field(default_factory=list)
    mlflow: tuple[str, str] | None = None  # the sweep's MLflow run: (tracking URI, run id), its trials' parent

    @property
    def metric(self) -> str:
        return str(self.settings["metric"])


def make_plan(raw: dict[str, Any], config_dir: Path, overrides: dict[str, Any]) -> Plan:
    """Check the ``[sweep]`` section and sample the trials (every sampled config validated like a hand-written
    one, before any trial starts; TPE samples as it goes, so only its first config is checked up front)."""
    if "sweep" not in raw:
        raise ConfigError("sweep: the config has no [sweep] section (see chainrule sweep --help)")
    resolved = resolve(raw)
    settings = resolved["sweep"]
    for key, low in (("trials", 1), ("workers", 0)):  # the command line's values, checked as the config's are
        value = overrides.get(key)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= low):
            raise ConfigError(f"--{key}: expected an integer >= {low}, got {value!r}")
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if settings["sampler"] not in SAMPLERS:
        raise ConfigError(f"sweep.sampler: expected one of {', '.join(SAMPLERS)}, got {settings['sampler']!r}")
    known = [name for task in Task.__subclasses__() for name in task().metric_names]  # higher is better
    import_config_modules(self_contained(resolved, config_dir))  # every trial's builders need its classes
    settings["metric"] = settings["metric"] or task_of(resolved).metric_names[0]  # the best validation score
    if settings["metric"] not in known:
        raise ConfigError(f"sweep.metric: expected one of {', '.join(known)}, got {settings['metric']!r}")
    plan = Plan(raw, config_dir, settings, space.parse(settings["params"]))
    if settings["sampler"] == "grid":
        plan.values = space.grid_trials(plan.dists, settings["points"])
    elif settings["sampler"] == "random":
        plan.values = space.random_trials(plan.dists, settings["trials"], settings["seed"])
    validate(plan, plan.values or space.random_trials(plan.dists, 1, settings["seed"]))
    return plan


def trial_config(plan: Plan, values: dict[str, Any]) -> dict[str, Any]:
    """A trial's resolved, self-contained config (quiet, no curves: the sweep has its own picture)."""
    raw = space.with_values(plan.raw, values)
    cfg = self_contained(resolve(raw), plan.config_dir)
    cfg["solver"]["verbose"], cfg["output"]["plot"] = False, False
    if plan.mlflow is not None:
        cfg["output"]["mlflow_uri"], cfg["output"]["mlflow_parent_run"] = plan.mlflow
    return cfg


def validate(plan: Plan, values: list[dict[str, Any]]) -> None:
    """Resolve and build every sampled config (the data are loaded once per distinct [data] section)."""
    loaded: dict[str, dict[str, np.ndarray]] = {}
    for i, trial_values in enumerate(values):
        try:
            cfg = trial_config(plan, trial_values)
            key = json.dumps(cfg["data"], sort_keys=True) + cfg["model"]["dtype"] + cfg["loss"]["type"]
            if key not in loaded:
                loaded[key] = load_data(cfg)[0]
            _, solver = build_objects(cfg, loaded[key])
            task = solver.task
            if plan.metric not in task.metric_names:
                raise ConfigError(f"sweep.metric {plan.metric!r} is not measured for a {task.name} loss "
                                  f"({cfg['loss']['type']!r}); use one of {', '.join(map(repr, task.metric_names))}")
        except ConfigError as e:
            raise ConfigError(f"sweep trial {i} ({describe(trial_values)}): {e}") from None


def describe(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


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
        """Report a finished trial's metric to TPE (None: the trial failed)."""
        if self.study is None or i not in self.asked:
            return
        from optuna.trial import TrialState

        if value is None:
            self.study.tell(self.asked[i], state=TrialState.FAIL)
        else:
            self.study.tell(self.asked[i], value)


def optuna_distribution(d: space.Distribution) -> Any:
    import optuna.distributions as od

    if d.kind == "choice":
        return od.CategoricalDistribution(list(d.values))
    if d.kind == "int":
        return od.IntDistribution(int(d.low), int(d.high), log=d.log)
    return od.FloatDistribution(d.low, d.high, log=d.kind == "loguniform")
