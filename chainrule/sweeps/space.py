"""The ``[sweep.params]`` table: key paths mapped to distributions, sampled at random or on a grid.

Key paths name a config key: ``"optim.lr"``, ``"loss.reg"``, ``"model.layers[0].out_features"``.
Distributions (one key each, plus ``log`` for ``int``):

- ``{ loguniform = [low, high] }``: exp(uniform(log low, log high)), low > 0
- ``{ uniform = [low, high] }``
- ``{ int = [low, high], log = false }``: an integer in [low, high], log-uniformly with ``log = true``
- ``{ choice = [a, b, ...] }``: one of the values

The grid sampler takes every ``choice`` value and ``points`` (3) values of the others, evenly spaced
(log-spaced for ``loguniform`` and log ``int``), and runs their product.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.config import ConfigError

KINDS = ("loguniform", "uniform", "int", "choice")
PATH = re.compile(r"^([a-z_]+)\.([a-z_]+)((?:\[\d+\]\.[a-z_]+)?)$")


@dataclass(frozen=True)
class Distribution:
    """One parameter's distribution: ``kind`` in KINDS, ``low``/``high`` for ranges, ``values`` for choice."""

    path: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    values: tuple[Any, ...] = ()

    def sample(self, rng: np.random.Generator) -> Any:
        if self.kind == "choice":
            return self.values[int(rng.integers(len(self.values)))]
        if self.kind == "int":
            if self.log:
                return int(min(self.high, math.floor(math.exp(rng.uniform(math.log(self.low),
                                                                          math.log(self.high + 1))))))
            return int(rng.integers(int(self.low), int(self.high) + 1))
        if self.kind == "loguniform":
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def grid(self, points: int) -> list[Any]:
        if self.kind == "choice":
            return list(self.values)
        spaced = np.geomspace if self.kind == "loguniform" or self.log else np.linspace
        values = spaced(self.low, self.high, points)
        return sorted({int(round(v)) for v in values}) if self.kind == "int" else [float(v) for v in values]

    @property
    def continuous(self) -> bool:
        return self.kind != "choice"


def parse(params: dict[str, Any]) -> list[Distribution]:
    """The ``[sweep.params]`` table as distributions; a bad path or distribution is a ConfigError naming it."""
    if not params:
        raise ConfigError('sweep.params: give at least one parameter, e.g. "optim.lr" = { loguniform = [1e-4, 1e-1] }')
    return [distribution(path, spec) for path, spec in params.items()]


def distribution(path: str, spec: Any) -> Distribution:
    where = f"sweep.params.{path!r}"
    if not PATH.match(path):
        raise ConfigError(f"{where}: expected a key path like \"optim.lr\" or \"model.layers[0].out_features\"")
    if not isinstance(spec, dict) or not any(k in spec for k in KINDS):
        raise ConfigError(f"{where}: expected a table with one of {', '.join(KINDS)}, got {spec!r}")
    kind = next(k for k in KINDS if k in spec)
    extra = set(spec) - {kind, "log"} or ({"log"} if "log" in spec and kind != "int" else set())
    if extra:
        raise ConfigError(f"{where}: unexpected {', '.join(sorted(extra))} beside {kind}")
    value = spec[kind]
    if kind == "choice":
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{where}: choice needs a non-empty array of values, got {value!r}")
        return Distribution(path, kind, values=tuple(value))
    if not (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)):
        raise ConfigError(f"{where}: {kind} needs [low, high], two finite numbers, got {value!r}")
    low, high = value
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log must be true or false, got {log!r}")
    if not low < high:
        raise ConfigError(f"{where}: {kind} needs low < high, got [{low}, {high}]")
    if (kind == "loguniform" or log) and low <= 0:
        raise ConfigError(f"{where}: a log scale needs low > 0, got {low}")
    if kind == "int" and not (isinstance(low, int) and isinstance(high, int)):
        raise ConfigError(f"{where}: int needs integer bounds, got [{low}, {high}]")
    return Distribution(path, kind, float(low), float(high), log)


def random_trials(dists: list[Distribution], trials: int, seed: int) -> list[dict[str, Any]]:
    """``trials`` samples, each from its own stream of ``seed`` (one stream per trial, drawn from in parameter
    order): trial i is the same whatever the count."""
    samples = []
    for i in range(trials):
        rng = np.random.default_rng((seed, i))
        samples.append({d.path: d.sample(rng) for d in dists})
    return samples


def grid_trials(dists: list[Distribution], points: int = 3) -> list[dict[str, Any]]:
    """Every combination of the grid values, in a fixed order."""
    paths = [d.path for d in dists]
    return [dict(zip(paths, combo, strict=True)) for combo in itertools.product(*(d.grid(points) for d in dists))]


def with_values(cfg: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A copy of the raw config with each key path set; the ``[sweep]`` section is left out."""
    out = copy.deepcopy({k: v for k, v in cfg.items() if k != "sweep"})
    for path, value in values.items():
        section, key, rest = PATH.match(path).groups()  # type: ignore[union-attr]
        table = out.setdefault(section, {})
        if not rest:
            table[key] = value
            continue
        index, sub = int(rest[1:rest.index("]")]), rest[rest.index("]") + 2:]
        items = table.get(key)
        if not isinstance(items, list) or not 0 <= index < len(items) or not isinstance(items[index], dict):
            raise ConfigError(f"sweep.params.{path!r}: {section}.{key} has no table at index {index}")
        items[index][sub] = value
    return out
