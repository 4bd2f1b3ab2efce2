"""``python -m solver CONFIG``: a TOML or JSON config becomes data, model, loss, optimizer and Solver, in one place.

Sections and keys are listed in SCHEMA; unknown ones raise and name the key
path. ``--set section.key=value`` overrides a key, the value parsed as TOML.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import tomli_w

import solver_data
import solver_io
from chainrule.argparsing import OneLineParser
from layers import REGISTRY, Layer, Sequential
from layers.gradcheck import HEADER
from losses import LOSSES, lookup
from optim import OPTIMIZERS, SCHEDULES
from solver import Solver, eval_mode

ANY: tuple[type, ...] = ()  # free-form keyword arguments, checked against a class signature
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], Any]]] = {
    "data": {
        "source": ((str,), "spiral"), "path": ((str,), ""), "label_column": ((str, int), "label"),
        "delimiter": ((str,), ","), "val_fraction": ((float,), 0.2), "test_fraction": ((float,), 0.2),
        "standardize": ((bool,), False), "samples": ((int,), 300), "classes": ((int,), 3),
        "noise": ((float,), 0.2), "seed": ((int,), 0),
    },
    "model": {"layers": ((list,), None), "imports": ((list,), []), "dtype": ((str,), "float32"),
              "init": ((str,), "he")},
    "loss": {"type": ((str,), "softmax"), "reg": ((float,), 0.0)},
    "optim": {"type": ((str,), "sgd")},
    "schedule": {"type": ((str,), "exponential")},
    "solver": {"epochs": ((int,), 10), "batch_size": ((int,), 100), "lr_decay": ((float,), 1.0),
               "seed": ((int,), 0), "patience": ((int,), 0), "num_train_samples": ((int,), 1000),
               "verbose": ((bool,), True)},
    "output": {"dir": ((str,), ""), "plot": ((bool,), True)},
}
OPEN_SECTIONS = {"loss", "optim", "schedule"}  # extra keys are the class's keyword arguments
SOURCES = ("spiral", "npz", "csv", "mnist-idx", "cifar10-bin", "digits", "mnist1d")
DTYPES = ("float32", "float64")
RESUMABLE = {"solver.epochs", "solver.verbose", "solver.patience", "output.dir", "output.plot"}


class ConfigError(Exception):
    """A bad config, file or command line: reported as one line, exit status 2."""


def close(name: str, known: list[str]) -> str:
    match = difflib.get_close_matches(name, known, n=3)
    return f"did you mean {' or '.join(map(repr, match))}? " if match else ""


def type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "a table"}.get(type(value), type(value).__name__)


def check_type(path: str, value: Any, types: tuple[type, ...]) -> Any:
    """``value`` if it has one of ``types`` (an int is a valid float, a bool is not an int)."""
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
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
        raise ConfigError(f"config file {path!r} does not exist")
    text = p.read_text()
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
        raise ConfigError(f"unknown section [{name}]; {close(name, list(SCHEMA))}sections: {', '.join(SCHEMA)}")
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
                raise ConfigError(f"unknown key {section}.{key}; {close(key, list(spec))}allowed: {', '.join(spec)}")
        for key, (_, default) in spec.items():
            if key not in resolved and default is not None:
                resolved[key] = default
        out[section] = resolved
    if "schedule" not in cfg:
        del out["schedule"]
    check_values(out)
    return out


def check_values(cfg: dict[str, Any]) -> None:
    if "layers" not in cfg["model"]:
        raise ConfigError("model.layers: missing; give a list such as [{ type = \"Affine\", out_features = 100 }]")
    if cfg["data"]["source"] not in SOURCES:
        src = cfg["data"]["source"]
        hint = close(src, list(SOURCES))
        raise ConfigError(f"data.source: unknown source {src!r}; {hint}sources: {', '.join(SOURCES)}")
    if cfg["model"]["dtype"] not in DTYPES:
        raise ConfigError(f"model.dtype: expected one of {', '.join(DTYPES)}, got {cfg['model']['dtype']!r}")
    if "schedule" in cfg and cfg["solver"]["lr_decay"] != 1.0:
        raise ConfigError("solver.lr_decay: give either solver.lr_decay or a [schedule] section, not both")
    for i, spec in enumerate(cfg["model"]["layers"]):
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
            raise ConfigError(f"model.layers[{i}]: expected a table with a string 'type', got {spec!r}")
    for i, name in enumerate(cfg["model"]["imports"]):
        check_type(f"model.imports[{i}]", name, (str,))


def kwargs_for(path: str, cls: type, given: dict[str, Any]) -> dict[str, Any]:
    """Check keyword arguments against ``cls.__init__``; unknown ones raise and list the allowed ones."""
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(given)
    allowed = list(params)
    for key in given:
        if key not in allowed:
            raise ConfigError(f"unknown key {path}.{key} for {cls.__name__}; {close(key, allowed)}"
                              f"allowed: {', '.join(allowed) or 'none'}")
    return dict(given)


def build(path: str, cls: type, kwargs: dict[str, Any]) -> Any:
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path} ({cls.__name__}): {e}") from None


def import_modules(names: list[str], base: Path) -> None:
    for p in (str(base), ""):
        if p not in sys.path:
            sys.path.insert(0, p)
    for i, name in enumerate(names):
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ConfigError(f"model.imports[{i}]: cannot import {name!r}: {e}") from None


def build_model(cfg: dict[str, Any], sample: np.ndarray, rng: np.random.Generator) -> Sequential:
    """Layers by registered name; in_features (and dtype, rng, init) filled in from the data and the previous layer."""
    dtype = np.dtype(cfg["dtype"])
    x = np.zeros((2, *sample.shape[1:]), dtype=dtype)
    layers: list[Layer] = []
    for i, spec in enumerate(cfg["layers"]):
        path = f"model.layers[{i}]"
        name = spec["type"]
        if name not in REGISTRY:
            raise ConfigError(f"{path}.type: unknown layer {name!r}; {close(name, list(REGISTRY))}"
                              f"known: {', '.join(sorted(REGISTRY))}")
        cls = REGISTRY[name]
        kwargs = kwargs_for(path, cls, {k: v for k, v in spec.items() if k != "type"})
        accepts = inspect.signature(cls).parameters
        features = int(np.prod(x.shape[1:]))
        fill = {"in_features": features, "num_features": features, "dtype": dtype, "rng": rng, "init": cfg["init"]}
        kwargs.update({k: v for k, v in fill.items() if k in accepts and k not in kwargs})
        layer = build(path, cls, kwargs)
        try:
            with eval_mode(layer):  # shape inference must not touch state (BatchNorm's running statistics)
                x = layer.forward(x)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{path} ({name}) does not accept the previous output of shape {x.shape}: {e}") from None
        layers.append(layer)
    return Sequential(*layers)


def build_objects(cfg: dict[str, Any], data: dict[str, np.ndarray], base: Path) -> tuple[Sequential, Solver]:
    import_modules(cfg["model"]["imports"], base)
    model = build_model(cfg["model"], data["X_train"], model_rng(cfg))
    classes = int(max(int(data[k].max()) for k in data if k.startswith("y_") and data[k].size)) + 1
    with eval_mode(model):
        width = model.forward(data["X_train"][:2]).shape[1]
    if width != classes:
        raise ConfigError(
            f"model.layers: the last layer gives {width} scores per example, but the data has {classes} classes")

    def make(section: str, registry: dict[str, type], kind: str) -> Any:
        spec = dict(cfg[section])
        name = spec.pop("type")
        spec.pop("reg", None)
        try:
            cls = lookup(registry, name, kind)
        except KeyError as e:
            raise ConfigError(f"{section}.type: {e.args[0]}") from None
        return build(section, cls, kwargs_for(section, cls, spec))

    solver_cfg = dict(cfg["solver"])
    solver_cfg["patience"] = solver_cfg["patience"] or None
    schedule = make("schedule", SCHEDULES, "schedule") if "schedule" in cfg else None
    solver = Solver(model, data, loss=make("loss", LOSSES, "loss"), optimizer=make("optim", OPTIMIZERS, "optimizer"),
                    reg=cfg["loss"]["reg"], schedule=schedule, **solver_cfg)
    return model, solver


def run_dir_for(cfg: dict[str, Any], config_path: Path) -> Path:
    """The output folder; an existing non-empty one is never overwritten: a numbered sibling is used instead."""
    base = Path(cfg["output"]["dir"] or Path("runs") / config_path.stem)
    path, n = base, 1
    while path.exists() and any(path.iterdir()):
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def differing(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Key paths whose values differ between two resolved configs, except those a resume may change."""
    flat_a = {f"{s}.{k}": v for s, d in a.items() for k, v in d.items()}
    flat_b = {f"{s}.{k}": v for s, d in b.items() for k, v in d.items()}
    return sorted(k for k in (flat_a.keys() | flat_b.keys()) - RESUMABLE if flat_a.get(k) != flat_b.get(k))


def load_data(cfg: dict[str, Any], config_path: Path) -> dict[str, np.ndarray]:
    """The ``[data]`` section's arrays (paths relative to the config), inputs cast to the model's dtype."""
    data_cfg = cfg["data"]
    data = solver_data.load(data_cfg, config_path.parent if data_cfg.get("path") else Path("."))
    dtype = np.dtype(cfg["model"]["dtype"])
    return {k: v.astype(dtype) if k.startswith("X_") else v for k, v in data.items()}


def model_rng(cfg: dict[str, Any]) -> np.random.Generator:
    """The Generator that initialises the model: its own stream of the solver seed."""
    return np.random.default_rng((cfg["solver"]["seed"], 1))


def setup(args: argparse.Namespace) -> tuple[dict[str, Any], Solver, Path, dict | None]:
    config_path = Path(args.config)
    cfg = resolve(apply_sets(read_config(args.config), args.set))
    checkpoint = None
    if args.resume:
        run_dir = Path(args.resume)
        meta, arrays = solver_io.read_checkpoint(run_dir)
        diff = differing(cfg, meta["config"])
        if diff:
            raise ConfigError(f"--resume: the config differs from the run's in {', '.join(diff)}")
        checkpoint = {"meta": meta, "arrays": arrays}
    _, solver = build_objects(cfg, load_data(cfg, config_path), config_path.parent)
    if checkpoint is not None:
        solver_io.restore(solver, checkpoint["meta"], checkpoint["arrays"])
    else:
        run_dir = run_dir_for(cfg, config_path)
    return cfg, solver, run_dir, checkpoint


def summary(metrics: dict[str, Any], run_dir: Path) -> str:
    parts = [f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items() if k != "stop_reason"]
    return "  ".join(parts + [f"run {run_dir}"])


def run(args: argparse.Namespace) -> int:
    cfg, solver, run_dir, _ = setup(args)
    return train_run(cfg, solver, run_dir)


def train_run(cfg: dict[str, Any], solver: Solver, run_dir: Path) -> int:
    """Train with a checkpoint and history.csv after every epoch; write metrics.json and curves.png; exit status."""
    solver_io.atomic_write(run_dir / "config.toml", tomli_w.dumps(cfg).encode())
    if solver.verbose:
        print(f"run directory: {run_dir}", file=sys.stderr)

    def on_epoch_end(s: Solver) -> None:
        solver_io.save_checkpoint(run_dir, s, cfg)
        solver_io.write_history(run_dir, s)

    start = time.perf_counter()
    metrics = solver.train(on_epoch_end)
    metrics["seconds"] = round(sum(solver.epoch_seconds), 3)
    metrics["wall_seconds"] = round(time.perf_counter() - start, 3)
    solver_io.save_checkpoint(run_dir, solver, cfg)
    solver_io.write_history(run_dir, solver)
    solver_io.write_json(run_dir / "metrics.json", metrics)
    if cfg["output"]["plot"]:
        solver_io.write_curves(run_dir, solver)
    if solver.stop_reason and not solver.stop_reason.startswith("early stop"):
        print(f"solver: {solver.stop_reason}; the best parameters so far are saved in {run_dir}", file=sys.stderr)
    print(summary(metrics, run_dir))
    return 1 if "stop_reason" in metrics and not metrics["stop_reason"].startswith("early stop") else 0


def model_from_run(run_dir: str | Path, which: str = "best") -> Sequential:
    """Rebuild a finished run's model from its folder: config.toml, then the checkpoint's best (or last)
    parameters and buffers, in eval mode. Data are read only for their shape."""
    run_dir = Path(run_dir)
    cfg = resolve(read_config(str(run_dir / "config.toml")))
    meta, arrays = solver_io.read_checkpoint(run_dir)
    sample_shape = meta.get("input_shape")
    if sample_shape is None:
        raise ValueError(f"{str(run_dir)!r}: the checkpoint does not record the input shape; retrain to load it")
    import_modules(cfg["model"]["imports"], run_dir)
    sample = np.zeros((1, *sample_shape), dtype=cfg["model"]["dtype"])
    model = build_model(cfg["model"], sample, model_rng(cfg))
    prefixes = {"best": ("best/", "best_buffer/"), "last": ("param/", "buffer/")}[which]
    solver_io.load_arrays("parameters", model.params, arrays, prefixes[0])
    solver_io.load_arrays("buffers", model.buffers, arrays, prefixes[1])
    return model.eval()  # type: ignore[return-value]


def gradcheck_model(args: argparse.Namespace, rows: int = 4) -> int:
    """Check the config's whole objective (data loss + L2) against every parameter, in float64, on a few rows."""
    from layers.gradcheck import format_table
    from losses.gradcheck import check_objective

    cfg = resolve(apply_sets(read_config(args.config), args.set + ["model.dtype=\"float64\""]))
    config_path = Path(args.config)
    data = load_data(cfg, config_path)
    model, solver = build_objects(cfg, data, config_path.parent)
    X, y = data["X_train"][:rows], data["y_train"][:rows]
    report = check_objective(model, solver.loss, X, y, reg=solver.reg, rng=cfg["solver"]["seed"])
    print(format_table([HEADER, *report.rows()]))
    for note in report.notes:
        print(f"note: {note}")
    verdict = "all passed" if report.passed else "FAILED"
    print(f"\n{report.layer} on {len(y)} rows of the training data, float64: {len(report.checks)} tensors, {verdict}")
    return 0 if report.passed else 1


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m solver", description="Train a network from a TOML or JSON config.",
        epilog="examples:\n  python -m solver examples/spiral.toml\n"
               "  python -m solver examples/spiral.toml --set optim.lr=0.05 --set solver.epochs=10\n"
               "  python -m solver examples/spiral.toml --resume runs/spiral\n"
               "  python -m solver examples/spiral.toml --gradcheck",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="path to a .toml or .json config")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config key; the value is parsed as TOML (repeatable)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the interrupted run in RUN_DIR")
    parser.add_argument("--gradcheck", action="store_true",
                        help="gradient-check the whole model (data loss + L2) on a few rows in float64, then exit")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    try:
        return gradcheck_model(args) if args.gradcheck else run(args)
    except (ConfigError, FileNotFoundError, KeyError, ValueError, TypeError, ImportError) as e:
        if args.debug:
            raise
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"solver: error: {message}", file=sys.stderr)
        return 2
