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
from chainrule.augment import augmenter
from chainrule.config import ConfigError, check_type
from layers import REGISTRY, Graph, Layer, Sequential
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
            raise ConfigError(f"unknown key {path}.{key} for {name_of(cls)}; {did_you_mean(key, allowed)}"
                              f"allowed: {', '.join(allowed) or 'none'}")
    hints = annotations_of(cls)
    return {key: check_type(f"{path}.{key}", value, plain_types(hints.get(key))) if plain_types(hints.get(key))
            else value for key, value in given.items()}


PLAIN = (bool, int, float, str, list)


def annotations_of(cls: type) -> dict[str, Any]:
    """The constructor's resolved annotations, or {} where they cannot be resolved (a user class's own business)."""
    try:
        return typing.get_type_hints(cls.__init__ if isinstance(cls, type) else cls)  # type: ignore[misc]
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
        raise ConfigError(f"{path} ({name_of(cls)}): {e}") from None
    except MemoryError as e:
        raise ConfigError(f"{path} ({name_of(cls)}): not enough memory for {kwargs_text(kwargs)} "
                          f"({e or 'the arrays are too large'})") from None


def name_of(factory: Any) -> str:
    """The class a factory builds: the class itself, or the class of a classmethod (``Sequential.from_config``)."""
    return str(getattr(factory, "__self__", factory).__name__)


def kwargs_text(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if isinstance(v, (int, float, str)))


def build_model(cfg: dict[str, Any], sample: np.ndarray, rng: np.random.Generator, classes: int | None = None
                ) -> Sequential:
    """Layers by registered name, each given what it infers from its input (``Layer.infer``: the data for the
    first layer, then the previous layer's output) and, when its constructor takes them, the model's ``dtype``,
    ``rng`` and (when the config sets it) ``init``; and the last layer's ``out_features``, when the config leaves
    it out, from ``classes`` (the outputs the targets need). What the config gives wins, and what is filled in
    is written into the config's layer tables (``num_embeddings = 20``), so the run's saved config rebuilds the
    same model without guessing. Containers (Sequential, Residual, Parallel) nest: each list of layers they
    hold reads the container's input."""
    dtype = np.dtype(cfg["dtype"])
    model_wide = {"dtype": dtype, "rng": rng, **({"init": cfg["init"]} if cfg["init"] else {})}
    layers, _ = build_chain(cfg["layers"], first_input(cfg, sample, dtype, classes), "model.layers", model_wide,
                            classes)
    return Sequential(*layers)


def build_chain(specs: Any, x: np.ndarray, path: str, model_wide: dict[str, Any], classes: int | None = None
                ) -> tuple[list[Layer], np.ndarray]:
    """The layers of a list of tables, each reading the previous one's output, and the last output."""
    if not isinstance(specs, list):
        raise ConfigError(f"{path}: expected a list of layer tables, got {specs!r}")
    layers = []
    for i, spec in enumerate(specs):
        layer, x = build_layer(spec, x, f"{path}[{i}]", model_wide, classes if i == len(specs) - 1 else None)
        layers.append(layer)
    return layers, x


def build_layer(spec: Any, x: np.ndarray, path: str, model_wide: dict[str, Any], classes: int | None
                ) -> tuple[Layer, np.ndarray]:
    """One layer from its table, with the sizes it infers from ``x``, and its output on ``x``."""
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise ConfigError(f"{path}: expected a table with a string 'type', got {spec!r}")
    cls = registered(REGISTRY, spec["type"], f"{path}.type")
    check_one_input(path, cls)
    factory = getattr(cls, "from_config", cls)  # a container built from lists (Sequential: from_config(layers))
    kwargs = kwargs_for(path, factory, {k: v for k, v in spec.items() if k != "type"})
    chain_classes = classes if issubclass(cls, Sequential) else None  # a chain's output is its last layer's
    for key in getattr(cls, "layer_lists", ()):
        if key in kwargs:
            kwargs[key] = nested_layers(kwargs[key], x, f"{path}.{key}", model_wide, chain_classes)
    accepts = inspect.signature(factory).parameters
    try:
        inferred = cls.infer(x)  # type: ignore[attr-defined]  # a Layer subclass: the registry holds no other
    except (TypeError, ValueError, IndexError) as e:
        raise ConfigError(f"{path} ({spec['type']}) cannot take the previous output of shape {x.shape}: "
                          f"{e}") from None
    filled = {k: v for k, v in {**({"out_features": classes} if classes is not None else {}), **inferred}.items()
              if k in accepts and k not in kwargs}
    kwargs.update({**{k: v for k, v in model_wide.items() if k in accepts and k not in kwargs}, **filled})
    layer = build(path, factory, kwargs)
    spec.update({k: plain(v) for k, v in filled.items() if is_config_value(v)})  # kept with the run: no guessing
    check_init(path, layer, model_wide.get("init", ""), accepts)
    try:
        with layer.mode(False):  # shape inference must not touch state (BatchNorm's running statistics)
            return layer, layer.forward(x[:2])
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path} ({spec['type']}) does not accept the previous output of shape {x.shape}: "
                          f"{str(e).splitlines()[0]}") from None


def is_config_value(value: Any) -> bool:
    """A value a config (TOML) can hold: a number, string or bool, or a list of them."""
    if isinstance(value, (list, tuple)):
        return all(is_config_value(v) for v in value)
    return isinstance(value, (bool, int, float, str, np.integer, np.floating, np.bool_))


def plain(value: Any) -> Any:
    """numpy scalars as Python's, tuples as lists: what TOML writes."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def nested_layers(value: Any, x: np.ndarray, path: str, model_wide: dict[str, Any], classes: int | None = None
                  ) -> list[Any]:
    """A container's list of layer tables as layers, or its list of such lists (Parallel's branches) as lists of
    layers; each list reads the container's input ``x``."""
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return [build_chain(v, x, f"{path}[{j}]", model_wide)[0] for j, v in enumerate(value)]
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return build_chain(value, x, path, model_wide, classes)[0]
    raise ConfigError(f"{path}: expected a list of layer tables (branches: a list of such lists), got {value!r}")


def check_one_input(path: str, cls: type) -> None:
    """A config's layers each take one input, the previous output: a Graph or a two-input gate (Add) is a
    ConfigError that says how a config joins two paths."""
    joins = ("join two paths with Residual (out = layers(x) + shortcut(x)) or Parallel (branches over one "
             "input, combine = \"concat\" or \"add\")")
    if issubclass(cls, Graph):
        raise ConfigError(f"{path}: a Graph is wired in Python (Graph.add); in a config, {joins}")
    forward = cls.forward  # type: ignore[attr-defined]  # a Layer subclass: the registry holds no other
    inputs = [p.name for p in list(inspect.signature(forward).parameters.values())[1:]
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    if len(inputs) > 1:
        raise ConfigError(f"{path}: {cls.__name__} takes {len(inputs)} inputs ({', '.join(inputs)}) but a config's "
                          f"layers take one, the previous output; {joins}")


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
    sample = model_sample(data)
    if cfg["data"].get("source") == "text":  # inputs and labels share the vocabulary: a score per character,
        outputs = max(outputs, int(sample.max()) + 1)  # the first one too (an input, never a label)
    model = build_model(cfg["model"], sample, model_rng(cfg), outputs)

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
                        augment=augmenter(cfg["data"].get("augment", {})), **solver_cfg)
    except OutputError as e:  # the outputs do not fit the targets: the layers' doing
        raise ConfigError(f"model.layers: {str(e).removeprefix('Solver: ')}") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"solver: {e}") from None
    if solver.num_classes != outputs:
        raise ConfigError(f"model.layers: the last layer gives {solver.num_classes} {task.output_noun} per "
                          f"example, but the data has {outputs} {task.outputs_noun}")
    return model, solver


def model_sample(data: dict[str, np.ndarray]) -> np.ndarray:
    """What the model's sizes are inferred from: the training inputs; for integer indices, a training row and
    a row of the largest index of every split, so an Embedding holds every index the run will see (as the
    read-out holds every class of every split)."""
    X = data["X_train"]
    if X.dtype.kind not in "iu" or not X.size:
        return X
    top = max(int(data[k].max()) for k in ("X_train", "X_val", "X_test") if k in data and data[k].size)
    return np.concatenate([X[:1], np.full((1, *X.shape[1:]), top, dtype=X.dtype)])


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
    names = data.pop("class_names", None)
    if vocabulary is not None and data_cfg["standardize"]:
        raise ConfigError("data.standardize: a text source gives character indices, which are not standardized")
    per = "feature" if data_cfg["standardize"] is True else data_cfg["standardize"]
    stats = datasets.standardization(data["X_train"], per) if per else {}
    if stats:
        data = datasets.standardize(data, stats)
    if vocabulary is not None:
        stats = {**stats, "vocabulary": vocabulary}  # kept with the run: chainrule sample decodes with it
    if names is not None:
        stats = {**stats, "class_names": names}  # kept with the run: predict and evaluate print them
    return data, stats  # the Solver gives the inputs the model's dtype (Layer.as_input), checking the range once


def model_rng(cfg: dict[str, Any]) -> np.random.Generator:
    """The Generator that initialises the model: its own stream of the solver seed."""
    return np.random.default_rng((cfg["solver"]["seed"], 1))
