"""The checks at a layer's boundary, with the project's messages: floating inputs, douts of the output's shape,
sizes and flags given to constructors; and the helpers layers share to keep outputs and examples safe."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from .base import Layer

Array = NDArray[np.floating]


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
    """Raise an error naming the layer unless ``dout`` is a floating array (a TypeError, as for an integer x) of
    the output's shape (a ValueError)."""
    kind = getattr(getattr(dout, "dtype", None), "kind", None)
    if kind != "f":
        got = f"dtype {dout.dtype}" if kind else type(dout).__name__
        raise TypeError(f"{layer!r}: expected dout as a floating array of shape {shape} (the output's), got {got}")
    if dout.shape != shape:
        raise ValueError(f"{layer!r}: expected dout of shape {shape} (the output's), got {dout.shape}")


def features_of(x: NDArray[Any]) -> int:
    """The values of one example, every axis but the first: what a layer that flattens its input reads."""
    return int(np.prod(x.shape[1:]))


def check_sizes(owner: Layer, **sizes: Any) -> None:
    """Each size a positive integer, or a ValueError naming the layer's class, the argument and the value."""
    for key, value in sizes.items():
        if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1):
            raise ValueError(f"{type(owner).__name__}: {key} must be an integer >= 1, got {value!r}")


def check_flags(owner: Layer, **flags: Any) -> None:
    """Each flag a bool, or a ValueError naming the layer's class, the argument and the value."""
    for key, value in flags.items():
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{type(owner).__name__}: {key} must be true or false, got {value!r}")


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], margin: float = 0.1) -> Array:
    """Standard-normal float64 samples with ``|x| >= margin``, for inputs near a kink at 0."""
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + margin, x - margin)
