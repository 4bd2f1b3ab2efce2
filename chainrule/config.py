"""Configs: a TOML or JSON file of sections and keys, checked against SCHEMA, with defaults filled in.

Unknown sections and keys raise and name the key path (with close matches); ``--set section.key=value``
overrides a key, the value parsed as TOML. ``chainrule.build`` turns a resolved config into objects.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from layers.registry import did_you_mean

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ANY: tuple[type, ...] = ()  # free-form keyword arguments, checked against a class signature
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], Any]]] = {
    "data": {
        "source": ((str,), "spiral"), "path": ((str,), ""), "label_column": ((str, int), "label"),
        "delimiter": ((str,), ","), "val_fraction": ((float,), 0.2), "test_fraction": ((float,), 0.2),
        "standardize": ((bool, str), False), "samples": ((int,), 300), "classes": ((int,), 3),
        "noise": ((float,), 0.2), "seed": ((int,), 0), "seq_len": ((int,), 50),
        "augment": ((dict,), {}),
    },
    "model": {"layers": ((list,), None), "imports": ((list,), []), "import_dirs": ((list,), []),
              "dtype": ((str,), "float32"),
              "init": ((str,), "")},
    "loss": {"type": ((str,), "softmax"), "reg": ((float,), 0.0)},
    "optim": {"type": ((str,), "sgd")},
    "schedule": {"type": ((str,), "exponential")},
    "solver": {"epochs": ((int,), 10), "batch_size": ((int,), 100), "lr_decay": ((float,), 1.0),
               "seed": ((int,), 0), "patience": ((int,), 0), "num_train_samples": ((int,), 1000),
               "verbose": ((bool,), True), "threads": ((str, int), "auto"),
               "prefetch": ((bool,), False)},
    "output": {"dir": ((str,), ""), "plot": ((bool,), True), "checkpoint_seconds": ((float,), 5.0),
               "loggers": ((list,), []), "histograms": ((bool,), False), "mlflow_uri": ((str,), ""),
               "mlflow_parent_run": ((str,), "")},
    "sweep": {"trials": ((int,), 20), "seed": ((int,), 0), "metric": ((str,), ""),
              "sampler": ((str,), "random"), "workers": ((int,), 0), "address": ((str,), ""),
              "params": ((dict,), {}), "points": ((int,), 3), "median_stop": ((bool,), False)},
}
OPEN_SECTIONS = {"loss", "optim", "schedule"}  # extra keys are the class's keyword arguments
SOURCES = ("spiral", "npz", "npy", "csv", "mnist-idx", "cifar10-bin", "digits", "mnist1d", "text", "diabetes")
DTYPES = ("float32", "float64")
RESUMABLE = {"solver.epochs", "solver.verbose", "solver.patience", "solver.threads", "solver.prefetch", "output.dir",
             "output.plot", "output.checkpoint_seconds", "output.loggers", "output.histograms", "output.mlflow_uri"}



class ConfigError(Exception):
    """A bad config, file or command line: reported as one line, exit status 2."""


def type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "a table"}.get(type(value), type(value).__name__)


def check_type(path: str, value: Any, types: tuple[type, ...]) -> Any:
    """``value`` if it has one of ``types`` (an int is a valid float, a bool is not an int)."""
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, float) and float in types and not math.isfinite(value):
        raise ConfigError(f"{path}: expected a finite number, got {value!r}")
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        want = " or ".join(type_name(t()) for t in types)
        raise ConfigError(f"{path}: expected {want}, got {type_name(value)} ({value!r})")
    return value


def read_config(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {path!r} {'is a directory' if p.is_dir() else 'does not exist'}")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path!r} is not UTF-8 text (byte {e.start}): is it a config?") from None
    try:
        if p.suffix == ".json":
            cfg = json.loads(text)
        elif p.suffix == ".toml":
            cfg = tomllib.loads(text)
        else:
            raise ConfigError(f"config file {path!r}: expected a .toml or .json file")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"config file {path!r} is not valid {p.suffix[1:].upper()}: {e}") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"config file {path!r}: expected a table of sections at the top level")
    return cfg


def apply_sets(cfg: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides; the value is parsed as TOML, else taken as a string."""
    for item in sets:
        key, sep, raw = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not (sep and dot and section and name):
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        target = cfg.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"--set {item!r}: {section} is not a section")
        target[name] = value
    return cfg


def resolve(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check every section and key, fill defaults; returns the resolved config (plain data)."""
    unknown = [s for s in cfg if s not in SCHEMA]
    if unknown:
        name = unknown[0]
        raise ConfigError(f"unknown section [{name}]; {did_you_mean(name, list(SCHEMA))}sections: {', '.join(SCHEMA)}")
    out: dict[str, Any] = {}
    for section, spec in SCHEMA.items():
        given = cfg.get(section, {})
        if not isinstance(given, dict):
            raise ConfigError(f"{section}: expected a table, got {type_name(given)}")
        resolved = {}
        for key, value in given.items():
            if key in spec:
                resolved[key] = check_type(f"{section}.{key}", value, spec[key][0])
            elif section in OPEN_SECTIONS:
                resolved[key] = value
            else:
                raise ConfigError(f"unknown key {section}.{key}; {did_you_mean(key, list(spec))}"
                                  f"allowed: {', '.join(spec)}")
        for key, (_, default) in spec.items():
            if key not in resolved and default is not None:
                resolved[key] = default
        out[section] = resolved
    for optional in ("schedule", "sweep"):  # sections that exist only when given
        if optional not in cfg:
            del out[optional]
    check_values(out)
    return out


def check_values(cfg: dict[str, Any]) -> None:
    if "layers" not in cfg["model"]:
        raise ConfigError("model.layers: missing; give a list such as [{ type = \"Affine\", out_features = 100 }]")
    if cfg["data"]["source"] not in SOURCES:
        src = cfg["data"]["source"]
        hint = did_you_mean(src, list(SOURCES))
        raise ConfigError(f"data.source: unknown source {src!r}; {hint}sources: {', '.join(SOURCES)}")
    if cfg["data"]["standardize"] not in (True, False, "feature", "channel"):
        raise ConfigError(f"data.standardize: expected true, false, \"feature\" or \"channel\", "
                          f"got {cfg['data']['standardize']!r}")
    if cfg["model"]["dtype"] not in DTYPES:
        raise ConfigError(f"model.dtype: expected one of {', '.join(DTYPES)}, got {cfg['model']['dtype']!r}")
    if "schedule" in cfg and cfg["solver"]["lr_decay"] != 1.0:
        raise ConfigError("solver.lr_decay: give either solver.lr_decay or a [schedule] section, not both")
    check_ranges(cfg)
    for i, spec in enumerate(cfg["model"]["layers"]):
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
            raise ConfigError(f"model.layers[{i}]: expected a table with a string 'type', got {spec!r}")
    for key in ("imports", "import_dirs"):
        for i, name in enumerate(cfg["model"][key]):
            check_type(f"model.{key}[{i}]", name, (str,))


RANGES = {  # key path: (lowest allowed, whether the lowest is allowed, highest or None)
    "data.val_fraction": (0.0, False, 1.0), "data.test_fraction": (0.0, True, 1.0), "data.samples": (1, True, None),
    "data.classes": (2, True, None), "data.noise": (0.0, True, None), "data.seed": (0, True, None),
    "solver.seed": (0, True, None), "solver.patience": (0, True, None), "output.checkpoint_seconds": (0.0, True, None),
    "sweep.trials": (1, True, None), "sweep.seed": (0, True, None), "sweep.workers": (0, True, None),
    "sweep.points": (2, True, None),
}


def check_ranges(cfg: dict[str, Any]) -> None:
    """Numbers inside their ranges; the validation and test fractions leave rows to train on."""
    for path, (low, inclusive, high) in RANGES.items():
        section, key = path.split(".")
        if section not in cfg:
            continue
        value = cfg[section][key]
        if value < low or (value == low and not inclusive) or (high is not None and value >= high):
            bound = f"{'>=' if inclusive else '>'} {low}" + (f" and < {high}" if high is not None else "")
            raise ConfigError(f"{path}: expected a number {bound}, got {value!r}")
    if cfg["data"]["val_fraction"] + cfg["data"]["test_fraction"] >= 1:
        raise ConfigError(f"data.val_fraction + data.test_fraction must be below 1 (rows are left to train on), "
                          f"got {cfg['data']['val_fraction']} + {cfg['data']['test_fraction']}")


def self_contained(cfg: dict[str, Any], config_dir: Path) -> dict[str, Any]:
    """The resolved config with every location made absolute, so it runs from any working directory:
    ``data.path`` resolved against the config's folder, and that folder added to ``model.import_dirs``
    (where the modules in ``model.imports`` are looked for) when there are imports."""
    out = {section: dict(values) for section, values in cfg.items()}
    if out["data"].get("path"):
        out["data"]["path"] = str((config_dir / out["data"]["path"]).resolve())
    if out["model"]["imports"]:
        dirs = [str((config_dir / d).resolve()) for d in out["model"]["import_dirs"]]
        here = str(config_dir.resolve())
        out["model"]["import_dirs"] = dirs if here in dirs else [*dirs, here]
    return out
