"""The Layer contract and the registry that subclassing fills.

A layer holds ``params`` and ``grads`` (same keys, shapes and dtypes), computes
``forward(*inputs)`` while caching only what ``backward`` needs, and
``backward(dout)`` returns the input gradient (a tuple for several inputs)
after overwriting ``grads``.  Defining a subclass registers it by class name,
so configs and ``python -m layers.gradcheck`` can find it.

State that is not trained lives in ``buffers`` (a dict of arrays, like
``params``: BatchNorm's running statistics). Optimizers and the L2 penalty
never see buffers; checkpoints, the Solver's best-parameter snapshot and
resume save and restore them with the parameters, bit for bit. Update a
buffer in place (``buf *= ...``), as optimizers do parameters. A layer that
draws randomness keeps its own ``numpy.random.Generator`` as an attribute;
``generators()`` finds it, so checkpoints restore its state and gradient
checks hold it fixed. ``training`` (set by ``train()``/``eval()``) says which
behaviour forward has.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]
Mask = NDArray[np.bool_]

REGISTRY: dict[str, type[Layer]] = {}


def add_to_registry(registry: dict[str, type], cls: type, kind: str) -> None:
    """Add ``cls`` to ``registry`` by class name; a different class may not take a used name."""
    name = cls.__name__
    old = registry.get(name)
    if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(
            f"{kind} name {name!r} is already registered by {old.__module__}.{old.__qualname__}; "
            f"rename {cls.__module__}.{cls.__qualname__} or pass register=False"
        )
    registry[name] = cls


def as_float_array(layer: object, x: Any, name: str = "x") -> Array:
    """Return ``x`` as an ndarray, refusing integer, boolean and complex data (no silent casts)."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(
            f"{layer!r}: expected {name} with a floating dtype (float32 or float64), "
            f"got {x.dtype}; convert it first, e.g. {name}.astype(np.float32)"
        )
    return x


def read_only(a: Array) -> Array:
    """A read-only view of ``a``: for outputs a layer also caches for backward, so no caller can change them.
    (numpy scalars, which ufuncs return for 0-d input, are immutable already.)"""
    if not isinstance(a, np.ndarray):
        return a
    view = a.view()
    view.flags.writeable = False
    return view


def check_dout(layer: object, dout: Array, shape: tuple[int, ...]) -> None:
    """Raise a ValueError naming the layer unless ``dout`` has the output's shape."""
    if dout.shape != shape:
        raise ValueError(f"{layer!r}: expected dout of shape {shape} (the output's), got {dout.shape}")


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], margin: float = 0.1) -> Array:
    """Standard-normal float64 samples with ``|x| >= margin``, for inputs near a kink at 0."""
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + margin, x - margin)


def held_generators(name: str, value: Any, seen: set[int]) -> dict[str, np.random.Generator]:
    """Generators in an attribute's value: a Generator, a Layer not in ``seen``, or a list, tuple or dict of them."""
    if isinstance(value, np.random.Generator):
        return {name: value}
    if isinstance(value, Layer):
        if id(value) in seen:
            return {}
        seen.add(id(value))
        return {f"{name}.{k}": g for k, g in value.generators().items()}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    found: dict[str, np.random.Generator] = {}
    for key, item in items:
        found.update(held_generators(f"{name}.{key}", item, seen))
    return found


class Layer:
    """Base class of every gate, layer and container.

    Subclass it, create parameters in ``__init__`` after ``super().__init__()``,
    and define ``forward`` and ``backward``.  ``params`` arrays are updated in
    place by optimizers, so a layer must never rebind them; ``grads`` entries
    are overwritten by each ``backward``.  ``register=False`` in the class
    statement keeps a helper base class out of the registry.
    """

    params: dict[str, Array]
    grads: dict[str, Array]
    buffers: dict[str, Array]
    training: bool
    #: False lets backward skip the input gradient and return None (the Solver's first layer needs none).
    input_grad: bool = True

    def __init_subclass__(cls, register: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if register:
            add_to_registry(REGISTRY, cls, "Layer")

    def __init__(self) -> None:
        self.params = {}
        self.grads = {}
        self.buffers = {}
        self.training = True

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def backward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define backward()")

    def __call__(self, *inputs: Array) -> Array:
        return self.forward(*inputs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def children(self) -> list[tuple[str, Layer]]:
        """Named sub-layers; containers override this."""
        return []

    def train(self, mode: bool = True) -> Layer:
        self.training = mode
        for _, child in self.children():
            child.train(mode)
        return self

    def eval(self) -> Layer:
        return self.train(False)

    def generators(self) -> dict[str, np.random.Generator]:
        """The Generators this layer holds, by qualified name: its own attributes ("rng"), its children's under
        their names ("3.rng"), and those of layers it keeps in other attributes, lists or dicts ("block.rng")."""
        found: dict[str, np.random.Generator] = {}
        children = self.children()
        seen = {id(child) for _, child in children}
        for name, child in children:
            found.update({f"{name}.{k}": g for k, g in child.generators().items()})
        for name, value in vars(self).items():
            found.update(held_generators(name, value, seen))
        return found

    def astype(self, dtype: Any) -> Layer:
        """Cast parameters, gradients and floating buffers to ``dtype`` (e.g. float64 for a gradient check)."""
        for key in list(self.__dict__.get("params", {})):
            self.params[key] = self.params[key].astype(dtype, copy=False)
            self.grads[key] = self.grads[key].astype(dtype, copy=False)
        buffers = self.__dict__.get("buffers", {})
        for key, value in buffers.items():
            if value.dtype.kind == "f":
                buffers[key] = value.astype(dtype, copy=False)
        for _, child in self.children():
            child.astype(dtype)
        return self

    def cached(self, value: Any) -> Any:
        """Return a forward cache, or raise if ``forward`` has not run yet."""
        if value is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        return value

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        """A small float64 instance and inputs for gradient checks.

        The default builds ``cls()`` with one input of shape (batch, 2, 3),
        which suits shape-agnostic elementwise layers; override it otherwise.
        """
        return cls(), (rng.standard_normal((batch, 2, 3)),)
