"""Seedable weight initialisation: "he", "xavier" and "normal"."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

SCHEMES = ("he", "xavier", "normal")


def make_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator from a Generator or an integer seed (None means seed 0, never global state)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng(0)
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng: expected a numpy.random.Generator or an integer seed, got {type(rng).__name__}")


def float_dtype(dtype: Any, owner: str) -> np.dtype:
    """``dtype`` as a numpy floating dtype, or a TypeError naming ``owner``."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{owner}: dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{owner}: dtype must be float32 or float64, got {dt}")
    return dt


def init_weight(
    shape: tuple[int, ...],
    fan_in: int,
    fan_out: int,
    *,
    scheme: str,
    scale: float | None,
    rng: np.random.Generator,
    dtype: np.dtype,
) -> NDArray[np.floating]:
    """Draw a weight tensor.

    he:     N(0, (scale * sqrt(2 / fan_in))^2), scale defaults to 1 (for ReLU nets)
    xavier: N(0, (scale * sqrt(2 / (fan_in + fan_out)))^2), scale defaults to 1
    normal: N(0, scale^2), scale defaults to 0.01 (the classic course code's weight_scale)
    """
    if scheme == "he":
        std = (1.0 if scale is None else scale) * np.sqrt(2.0 / fan_in)
    elif scheme == "xavier":
        std = (1.0 if scale is None else scale) * np.sqrt(2.0 / (fan_in + fan_out))
    elif scheme == "normal":
        std = 0.01 if scale is None else scale
    else:
        raise ValueError(f"init: unknown scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    if not std > 0:
        raise ValueError(f"init: scale must be positive, got {scale!r}")
    w = rng.standard_normal(shape, dtype=dtype)
    w *= dtype.type(std)
    return w
