"""A resolved config becomes objects in one place: the data, the model (layers by registered name, sizes
filled in from the data), the loss, the optimizer, the schedule and the Solver. The config's own modules are
imported first, by the caller (``chainrule.usercode.import_config_modules``), so their classes are registered."""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import data as datasets
from chainrule.config import ConfigError, check_type
from layers import REGISTRY, Layer, Sequential
from layers.registry import Registry, did_you_mean
from losses import LOSSES, Loss, Task
from optim import OPTIMIZERS, SCHEDULES
from solver import OutputError, Solver


def kwargs_for(path: str, cls: type, given: dict[str, Any]) -> dict[str, Any]:
    """Check keyword arguments against ``cls.__init__``; unknown ones raise and list the allowed ones."""
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(given)
    allowed = list(params)
    for key in given:
        if key not in allowed:
            raise ConfigError(f"unknown key {path}.{key} for {cls.__name__}; {did_you_mean(key, allowed)}"
                              f"allowed: {', '.join(allowed) or 'none'}")
    hints = annotations_of(cls)
    return {key: check_type(f"{path}.{key}", value, plain_types(hints.get(key))) if plain_types(hints.get(key))
            else value for key, value in given.items()}


PLAIN = (bool, int, float, str, list)


def annotations_of(cls: type) -> dict[str, Any]:
    """The constructor's resolved annotations, or {} where they cannot be resolved (a user class's own business)."""
    try:
        return typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    except Exception:
        return {}


def plain_types(annotation: Any) -> tuple[type, ...]:
    """The config types (bool, int, float, str, list) an annotation allows; () when it allows others (Any, a
    Generator, a dtype): such arguments are passed through to the constructor's own checks."""
    if annotation in PLAIN:
        return (annotation,)
    origin = typing.get_origin(annotation)
    if origin is list:
        return (list,)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        found = [t for a in args for t in plain_types(a)]
        return tuple(found) if len(found) == len(args) else ()
    return ()


def build(path: str, cls: type, kwargs: dict[str, Any]) -> Any:
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path} ({cls.__name__}): {e}") from None
    except MemoryError as e:
        raise ConfigError(f"{path} ({cls.__name__}): not enough memory for {kwargs_text(kwargs)} "
                          f"({e or 'the arrays are too large'})") from None


def kwargs_text(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if isinstance(v, (int, float, str)))


def build_model(cfg: dict[str, Any], sample: np.ndarray, rng: np.random.Generator, classes: int | None = None
                ) -> Sequential:
    """Layers by registered name, each given what it infers from its input (``Layer.infer``: the data for the
    first layer, then the previous layer's output) and, when its constructor takes them, the model's ``dtype``,
    ``rng`` and (when the config sets it) ``init``; and the last layer's ``out_features``, when the config leaves
    it out, from ``classes`` (the outputs the targets need). What the config gives wins."""
    dtype = np.dtype(cfg["dtype"])
    x = first_input(cfg, sample, dtype, classes)
    layers: list[Layer] = []
    for i, spec in enumerate(cfg["layers"]):
        path = f"model.layers[{i}]"
        cls = registered(REGISTRY, spec["type"], f"{path}.type")
        kwargs = kwargs_for(path, cls, {k: v for k, v in spec.items() if k != "type"})
        accepts = inspect.signature(cls).parameters
        try:
            inferred = cls.infer(x)  # type: ignore[attr-defined]  # a Layer subclass: the registry holds no other
        except (TypeError, ValueError, IndexError) as e:
            raise ConfigError(f"{path} ({spec['type']}) cannot take the previous output of shape {x.shape}: "
                              f"{e}") from None
        model_wide = {"dtype": dtype, "rng": rng, **({"init": cfg["init"]} if cfg["init"] else {})}
        if classes is not None and i == len(cfg["layers"]) - 1:
            model_wide["out_features"] = classes
        kwargs.update({k: v for k, v in {**model_wide, **inferred}.items() if k in accepts and k not in kwargs})
        layer = build(path, cls, kwargs)
        check_init(path, layer, cfg["init"], accepts)
        try:
            with layer.mode(False):  # shape inference must not touch state (BatchNorm's running statistics)
                x = layer.forward(x[:2])
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{path} ({spec['type']}) does not accept the previous output of shape {x.shape}: "
                              f"{e}") from None
        layers.append(layer)
    return Sequential(*layers)


def first_input(cfg: dict[str, Any], sample: np.ndarray, dtype: np.dtype, classes: int | None) -> np.ndarray:
    """What the first layer infers from and runs on: integer indices as they are, for a first layer that reads
    them (an Embedding; with ``classes - 1`` among them, since a model whose outputs are fed back, a character
    model, may be given any class); else two zero examples in the model's dtype."""
    try:
        first: Any = REGISTRY.lookup(cfg["layers"][0]["type"])
    except (KeyError, IndexError, TypeError):
        first = None  # said by the caller, with the layer's position
    if sample.dtype.kind in "iu" and getattr(first, "integer_input", False):
        extra = np.full((1, *sample.shape[1:]), max((classes or 1) - 1, 0), dtype=sample.dtype)
        return np.concatenate([sample, extra]) if sample.size else extra
    return np.zeros((2, *sample.shape[1:]), dtype=dtype)


def check_init(path: str, layer: Layer, init: str, accepts: Any) -> None:
    """``model.init`` applies to every layer that draws its weights (takes an ``rng`` and has parameters): one that
    draws them its own way (a recurrent layer, an Embedding) is a ConfigError, not a setting silently ignored."""
    if init and "init" not in accepts and "rng" in accepts and layer.params:
        raise ConfigError(f"model.init = {init!r}: {path} ({type(layer).__name__}) draws its weights its own way "
                          "and takes no init; remove model.init and give init to the layers that take it (Affine, "
                          "Maxout, Conv1D, Conv2D)")


def loss_of(cfg: dict[str, Any]) -> Loss:
    """The config's loss. A config without a loss (a hand-made one) has the schema's default, softmax."""
    spec = dict(cfg.get("loss", {"type": "softmax"}))
    spec.pop("reg", None)
    cls = registered(LOSSES, spec.pop("type", "softmax"), "loss.type")
    return build("loss", cls, kwargs_for("loss", cls, spec))


def task_of(cfg: dict[str, Any]) -> Task:
    """The task of the config's loss (``Loss.task``)."""
    return loss_of(cfg).task


def build_objects(cfg: dict[str, Any], data: dict[str, np.ndarray]) -> tuple[Sequential, Solver]:
    """Model, loss, optimizer, schedule and Solver from a self-contained config (``config.self_contained``)."""
    task = task_of(cfg)
    outputs = task.outputs_for([data["y_train"], *(v for k, v in data.items() if k in ("y_val", "y_test"))])
    model = build_model(cfg["model"], data["X_train"], model_rng(cfg), outputs)

    def make(section: str, registry: Registry) -> Any:
        spec = dict(cfg[section])
        cls = registered(registry, spec.pop("type"), f"{section}.type")
        kwargs = kwargs_for(section, cls, spec)
        if section == "schedule" and "epochs" in inspect.signature(cls).parameters:
            kwargs.setdefault("epochs", cfg["solver"]["epochs"])  # a schedule over the run's length (cosine)
        return build(section, cls, kwargs)

    solver_cfg = dict(cfg["solver"])
    solver_cfg["patience"] = solver_cfg["patience"] or None
    schedule = make("schedule", SCHEDULES) if "schedule" in cfg else None
    loss, optimizer = loss_of(cfg), make("optim", OPTIMIZERS)
    try:  # the Solver checks the data and the settings once, for configs and Python callers alike
        solver = Solver(model, data, loss=loss, optimizer=optimizer, reg=cfg["loss"]["reg"], schedule=schedule,
                        **solver_cfg)
    except OutputError as e:  # the outputs do not fit the targets: the layers' doing
        raise ConfigError(f"model.layers: {str(e).removeprefix('Solver: ')}") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"solver: {e}") from None
    if solver.num_classes != outputs:
        raise ConfigError(f"model.layers: the last layer gives {solver.num_classes} {task.output_noun} per "
                          f"example, but the data has {outputs} {task.outputs_noun}")
    return model, solver


def registered(registry: Registry, name: str, path: str) -> type:
    """The class a config names, or a ConfigError with close matches and the known names."""
    try:
        return registry.lookup(name)
    except KeyError as e:
        raise ConfigError(f"{path}: {e.args[0]}") from None


def load_data(cfg: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The ``[data]`` section's arrays (of a self-contained config), standardized when asked, and the
    preprocessing statistics ({} or the training mean and std) to keep with the run."""
    data_cfg = cfg["data"]
    data = datasets.load(data_cfg, Path("."), task_of(cfg))
    vocabulary = data.pop("vocabulary", None)
    if vocabulary is not None and data_cfg["standardize"]:
        raise ConfigError("data.standardize: a text source gives character indices, which are not standardized")
    per = "feature" if data_cfg["standardize"] is True else data_cfg["standardize"]
    stats = datasets.standardization(data["X_train"], per) if per else {}
    if stats:
        data = datasets.standardize(data, stats)
    if vocabulary is not None:
        stats = {**stats, "vocabulary": vocabulary}  # kept with the run: chainrule sample decodes with it
    return data, stats  # the Solver gives the inputs the model's dtype (Layer.as_input), checking the range once


def model_rng(cfg: dict[str, Any]) -> np.random.Generator:
    """The Generator that initialises the model: its own stream of the solver seed."""
    return np.random.default_rng((cfg["solver"]["seed"], 1))
