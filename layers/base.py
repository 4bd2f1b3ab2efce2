"""The Layer contract, and the one walk over a tree of layers.

A layer is eight things. It defines the first two, sets the third, and takes the others where it needs them:

1. ``forward(*inputs)`` computes the output and caches only what ``backward`` needs: ``self.x = x``.
2. ``backward(dout)`` returns the gradient of each input (a tuple for several) and overwrites ``grads``; it never
   changes ``dout``, its inputs or its parameters: ``self.grads["W"] = self.x.T @ dout; return dout @ W.T``.
   ``backward_params(dout)`` may fill ``grads`` alone where skipping the input gradient saves work.
3. ``params`` and ``grads``, set in ``__init__`` after ``super().__init__()``: dicts of arrays with the same keys,
   shapes and dtypes, ``self.params = {"W": W}``. Optimizers update ``params`` in place: never rebind them.
4. ``buffers``: arrays that are state but are not trained, ``self.buffers = {"running_mean": mu}``. Checkpoints
   keep them; optimizers and the L2 penalty never see them. Update them in place.
5. ``self.training``: True after ``train()``, False after ``eval()``: ``if self.training: mask = ...``.
6. What it holds: a Layer or a ``numpy.random.Generator`` in an attribute, or in a list, tuple or dict held in
   one, is part of the tree. ``self.fc = Affine(4, 4)`` puts ``fc.W`` in the holder's ``params`` and reaches
   ``fc`` with ``train()``, ``astype``, checks and checkpoints; ``self.rng = np.random.default_rng(0)`` is
   restored by checkpoints and held fixed by gradient checks. One instance holds one place in a tree. A
   container gives its own order and names by overriding ``children()`` (Sequential: ``"0.W"``).
7. ``infer(x)``, a classmethod: the sizes a config fills in from the layer's input, as constructor arguments,
   ``{"num_embeddings": int(x.max()) + 1}``. By default the course's names (``in_features``, ``num_features``,
   ``in_channels``, ``num_channels``, ``input_size``); a constructor's ``dtype``, ``rng`` and ``init`` get the
   model's. ``integer_input = True`` marks a layer that reads integer indices (an Embedding).
8. ``example(rng, batch)``, a classmethod: a small float64 instance and its inputs for ``python -m
   layers.gradcheck``, ``return cls(3, 2, rng=rng, dtype=np.float64), (rng.standard_normal((batch, 3)),)``;
   the same layer whatever the ``rng`` (it draws values, not geometries). A class with several geometries or
   modes takes ``variant`` and says how many in ``variants`` (Conv2D: 4); each is checked.

Defining a subclass registers it by class name (``register=False`` keeps a helper base out of the registry).

Memory layout: a layer may return a view in another memory order (the convolutions return channel-major
views); a layer makes its new arrays with ``np.empty_like``/``zeros_like`` or ``order="K"``, which follow the
input's order, so a chain of layers keeps one layout instead of copying at each step.

Outside the contract, none needed by a layer of your own: the helpers ``as_float_array`` and ``check_dout``
(boundary checks with the project's messages) and ``self.cached`` (a forward cache, or the call-order error);
``leaf=True`` in a built-in class statement, which promises no sub-layers so its arrays are read without a walk,
and ``structure()``, a container's children held ready (Sequential's list), which let the walk be kept between
reads (without both, an MLP's training step takes 1.4-1.8x as long: benchmarks/walk_bench.py); and
``to_onnx``, the export hook (see ``chainrule.trained.export``).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from operator import is_
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .checks import (  # noqa: F401  (the boundary checks, imported by the layer modules from here)
    as_float_array,
    away_from_zero,
    check_dout,
    check_flags,
    check_sizes,
    features_of,
    read_only,
)
from .registry import Registry
from .saving import Keys, load_state_dict, state_dict

Array = NDArray[np.floating]
Mask = NDArray[np.bool_]

REGISTRY = Registry("layer")
#: Built-in classes whose instances hold no sub-layers (``leaf=True`` in the class statement): their
#: ``params``, ``grads`` and ``buffers`` are plain attributes, read without a walk (0.05 against 0.3 µs a
#: read, a dozen reads a training step). A subclass of one is walked like any other layer.
LEAVES: set[type] = set()
TENSOR_KINDS = ("params", "grads", "buffers")


def is_plain(value: Any) -> bool:
    """A value a repr can show in a line: a number, string, bool, None, or a short tuple or list of them."""
    if isinstance(value, (tuple, list)):
        return len(value) <= 8 and all(is_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str, np.generic))


def same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def held(name: str, value: Any, kind: type) -> Iterator[tuple[str, Any]]:
    """(qualified name, item) for ``value`` itself when it is a ``kind``, or for each ``kind`` inside it when
    it is a list, tuple or dict (nested ones too), named by index or key: ``parts.0``, ``heads.a``."""
    if isinstance(value, kind):
        yield name, value
    elif isinstance(value, (list, tuple, dict)):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            yield from held(f"{name}.{key}", item, kind)


def tree_view(kind: str) -> Any:
    """The ``params``/``grads``/``buffers`` property: reading merges the tree's arrays (``Layer.merged``);
    assigning sets the layer's own dict."""

    def own(layer: Layer, value: dict[str, Array]) -> None:
        layer.__dict__[kind] = value

    return property(lambda layer: layer.merged(kind), own, doc=f"The tree's {kind} under qualified names.")


class Layer:
    """Base class of every gate, layer and container; the contract is in this module's docstring.

    ``params``, ``grads`` and ``buffers`` of a layer with sub-layers merge its own arrays with theirs under
    qualified names. Each read is a new dict over the same arrays; assigning an entry (``net.params["0.W"] =
    W``, or ``self.grads["alpha"] = d`` inside a block) rebinds it in the layer that owns it.
    """

    training: bool
    #: How many examples ``example`` gives (``variant=0..variants-1``): geometries or modes, each checked.
    variants = 1

    def __init_subclass__(cls, register: bool = True, leaf: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if register:
            REGISTRY.add(cls)
        if leaf:
            LEAVES.add(cls)
        for kind in TENSOR_KINDS:  # a leaf's own dicts are found in the instance; others go through the walk
            if kind not in vars(cls):
                setattr(cls, kind, None if leaf else vars(Layer)[kind])

    def __init__(self) -> None:
        self.params = {}
        self.grads = {}
        self.buffers = {}
        self.training = True

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def backward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define backward()")

    def backward_params(self, dout: Array) -> None:
        """Fill ``grads`` for ``dout``; the input gradient is not needed (the first layer of a model).
        By default this is ``backward``; a layer overrides it where skipping the input gradient saves work."""
        self.backward(dout)

    def __call__(self, *inputs: Array) -> Array:
        return self.forward(*inputs)

    def __repr__(self) -> str:
        """The class and the constructor's arguments it keeps as attributes of the same name, where they differ
        from their defaults (``LearnedSoftplus(beta=2.0)``); built-in layers write their own."""
        try:
            parameters = list(inspect.signature(type(self).__init__).parameters.values())[1:]
        except (TypeError, ValueError):
            parameters = []
        shown = []
        for p in parameters:
            value = vars(self).get(p.name, p.default)
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or value is p.empty or not is_plain(value):
                continue
            if p.default is p.empty or not same(value, p.default):
                shown.append(f"{p.name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    # The tree ------------------------------------------------------------------------------------------

    def children(self) -> list[tuple[str, Layer]]:
        """The sub-layers this layer holds, by name: every Layer in its attributes (and in lists, tuples and
        dicts held in them), in the order the attributes were first set. Containers override this to give
        their own order and names."""
        if type(self) in LEAVES:
            return []
        found: list[tuple[str, Layer]] = []
        for name, value in vars(self).items():
            if name not in ("params", "grads", "buffers", "_walk"):
                found += held(name, value, Layer)
        return found

    def named_layers(self) -> list[tuple[str, Layer]]:
        """This layer and every layer below it, as (qualified name, layer) in a stable order, this one first
        as "". One instance in two places, or a layer holding one above it, is a ValueError naming both."""
        return [(prefix[:-1], layer) for prefix, layer in self.walk()]

    def walk(self) -> list[tuple[str, Layer]]:
        """``named_layers`` with each name as a key prefix ("" for this layer, "1.fc." below it). A layer whose
        children are all leaves keeps its walk while the same instances stand in the same places."""
        key = self.structure()
        if key is None:
            key = [layer for _, layer in self.children()]
        cached = self.__dict__.get("_walk")
        if cached is not None and len(key) == len(cached[0]) and all(map(is_, key, cached[0])):
            return cached[1]
        found: list[tuple[str, Layer]] = []
        places: dict[int, str] = {}

        def visit(prefix: str, layer: Layer) -> None:
            if id(layer) in places:
                raise ValueError(
                    f"{type(self).__name__}: the instance {layer!r} is at both {places[id(layer)] or '(top)'!r} "
                    f"and {prefix[:-1]!r}; one instance is one place in a network: create a new one for each place")
            places[id(layer)] = prefix[:-1]
            found.append((prefix, layer))
            for name, child in layer.children():
                visit(f"{prefix}{name}.", child)

        visit("", self)
        if LEAVES.issuperset(type(layer) for layer in key) and len(found) == len(key) + 1:
            self.__dict__["_walk"] = (list(key), found)
        return found

    def structure(self) -> list[Layer] | None:
        """For speed only: the layers directly below in ``children()``'s order, where a container holds them
        ready (Sequential's list), or None to have them taken from ``children()``."""
        return None

    def merged(self, kind: str) -> dict[str, Array]:
        """The ``kind`` arrays ("params", "grads" or "buffers") of the whole tree under qualified names."""
        walk = self.walk()
        if len(walk) == 1:
            return self.__dict__.setdefault(kind, {})
        merged = TreeDict({prefix + k: v for prefix, layer in walk for k, v in layer.__dict__.get(kind, {}).items()})
        merged.root, merged.kind = self, kind
        return merged

    params = tree_view("params")
    grads = tree_view("grads")
    buffers = tree_view("buffers")

    def owner(self, key: str) -> tuple[Layer, str]:
        """The layer below (or at) this one that owns the qualified name ``key``, and the name there."""
        for name, layer in reversed(self.named_layers()):
            prefix = f"{name}." if name else ""
            if key.startswith(prefix) and "." not in key[len(prefix):]:
                return layer, key[len(prefix):]
        raise KeyError(f"{type(self).__name__}: no layer owns {key!r}; "
                       f"layers: {', '.join(repr(n) for n, _ in self.named_layers())}")

    def train(self, mode: bool = True) -> Layer:
        """Set training mode (``mode=True``) or evaluation mode on this layer and every layer below it."""
        for _, layer in self.named_layers():
            layer.training = mode
        return self

    def eval(self) -> Layer:
        return self.train(False)

    @contextmanager
    def mode(self, training: bool) -> Iterator[Layer]:
        """``with net.mode(False):`` runs the block in evaluation mode (True: training mode), then puts back
        the mode the layer had."""
        was_training = self.training
        self.train(training)
        try:
            yield self
        finally:
            self.train(was_training)

    def state_dict(self) -> dict[str, Array]:
        """Copies of the tree's parameters and buffers by dotted name (``"0.W"``, ``"1.running_mean"``)."""
        return state_dict(self)

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> Keys:
        """Copy ``state`` into the tree's parameters and buffers in place; with ``strict``, missing and
        unexpected keys are a ValueError; a shape that differs is a ValueError (``layers.saving``)."""
        return load_state_dict(self, state, strict)

    def params_dtype(self) -> np.dtype | None:
        """The floating dtype of the tree's parameters, or None without any (or with several)."""
        dtypes = {p.dtype for p in self.params.values() if p.dtype.kind == "f"}
        return dtypes.pop() if len(dtypes) == 1 else None

    def as_input(self, X: Any, name: str = "X") -> NDArray[Any]:
        """``X`` as the tree takes it: real numbers in its parameters' dtype (float32 when it has none and X
        is not floating), integer indices as they are for a tree that ``takes_indices``. Values beyond the
        dtype are a ValueError naming ``name``, not a silent inf."""
        X = np.asarray(X)
        if X.dtype.kind not in "fiu":
            raise TypeError(f"{name} must be real numbers, got {X.dtype}")
        dtype = self.params_dtype() or (X.dtype if X.dtype.kind == "f" else np.dtype(np.float32))
        if X.dtype == dtype or (X.dtype.kind in "iu" and self.takes_indices()):
            return X
        with np.errstate(over="ignore"):
            converted = X.astype(dtype)
        if X.dtype.kind == "f" and not np.array_equal(np.isfinite(converted), np.isfinite(X)):
            raise ValueError(f"{name} has values beyond {dtype} (largest {np.finfo(dtype).max:.3g}); scale the "
                             f"data or use a {X.dtype} model (model.dtype = \"{X.dtype}\" in a config, "
                             f"model.astype(np.{X.dtype}) in Python)")
        return converted

    def takes_indices(self) -> bool:
        """Whether the tree reads integer indices (it holds a layer with ``integer_input``, an Embedding), so
        integer data is given to it as it is rather than converted to its dtype."""
        return any(getattr(layer, "integer_input", False) for _, layer in self.named_layers())

    def generators(self) -> dict[str, np.random.Generator]:
        """The Generators of the whole tree by qualified name: "rng" of this layer, "3.rng", "block.drop.rng"."""
        found: dict[str, np.random.Generator] = {}
        for name, layer in self.named_layers():
            for attr, value in vars(layer).items():
                found.update({f"{name}.{k}" if name else k: g for k, g in held(attr, value, np.random.Generator)})
        return found

    def astype(self, dtype: Any) -> Layer:
        """Cast parameters, gradients and floating buffers of the whole tree to ``dtype`` (float64 for checks)."""
        for _, layer in self.named_layers():
            for kind in TENSOR_KINDS:
                own = layer.__dict__.get(kind, {})
                for key, value in own.items():
                    if value.dtype.kind == "f":
                        own[key] = value.astype(dtype, copy=False)
        return self

    def cached(self, value: Any) -> Any:
        """Return a forward cache, or raise if ``forward`` has not run yet."""
        if value is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        return value

    @classmethod
    def infer(cls, x: NDArray[Any]) -> dict[str, Any]:
        """Sizes this layer takes from ``x``, an example of its input (the data for a first layer, else the
        previous layer's output), as constructor arguments: a config fills in those the constructor takes and
        the config leaves out. By default the course's names: ``in_features`` (the values of one example),
        ``num_features`` (the channels of an (N, C, ...) input, else its features), ``in_channels`` and
        ``num_channels`` (axis 1) and ``input_size`` (the last axis). Override it for any other size."""
        features = features_of(x)
        channels = int(x.shape[1]) if x.ndim > 1 else features
        return {"in_features": features, "num_features": channels if x.ndim > 2 else features,
                "in_channels": channels, "num_channels": channels, "input_size": int(x.shape[-1])}

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        """A small float64 instance and inputs for gradient checks.

        The default builds ``cls()`` with one input of shape (batch, 2, 3),
        which suits shape-agnostic elementwise layers; override it otherwise.
        """
        return cls(), (rng.standard_normal((batch, 2, 3)),)


class TreeDict(dict[str, Array]):
    """A merged view of a tree's arrays: a plain dict to read; assigning an entry rebinds it in its owner."""

    __slots__ = ("root", "kind")
    root: Layer
    kind: str

    def __setitem__(self, key: str, value: Array) -> None:
        layer, name = self.root.owner(key)
        layer.__dict__.setdefault(self.kind, {})[name] = value
        super().__setitem__(key, value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(f"{type(self.root).__name__}.{self.kind} is a merged view of its layers' arrays: "
                        "assign entries, or remove them from the layer that owns them")

    __delitem__ = pop = popitem = clear = setdefault = readonly  # type: ignore[assignment]
