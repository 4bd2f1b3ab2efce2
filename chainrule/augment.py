"""Per-batch transforms of training batches, from a config's ``[data.augment]``:

    [data.augment]
    pad_crop = 1      # zero-pad each example by 1 value on each side of its spatial axes, crop back at random
    hflip = true      # reverse the last axis of a random half of the examples
    noise = 0.05      # add Gaussian noise of this standard deviation

Spatial axes: the last one of (N, L) and (N, C, L) inputs (1-D signals), the last two of (N, C, H, W) images.
Each transform draws from the Generator it is given (the Solver's), so a resumed run draws the same values.
The Solver applies them to training batches only: validation, test, evaluate and predict see the data as is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chainrule.config import ConfigError, check_type

SETTINGS = {"pad_crop": ((int,), 0), "hflip": ((bool,), False), "noise": ((float,), 0.0)}


def spatial_axes(x: NDArray[Any]) -> int:
    """How many trailing axes are positions: 2 for (N, C, H, W), else 1."""
    if x.ndim < 2:
        raise ValueError(f"data.augment: inputs of shape {x.shape} have no axis to augment along")
    return 2 if x.ndim == 4 else 1


def pad_crop(x: NDArray[Any], pixels: int, rng: np.random.Generator) -> NDArray[Any]:
    """Each example zero-padded by ``pixels`` on both sides of its spatial axes and cropped back to its size
    at an offset drawn uniformly from 0..2*pixels per axis (0..2*pixels: ``pixels`` is the unshifted crop)."""
    axes = spatial_axes(x)
    sizes = x.shape[-axes:]
    padded = np.pad(x, [(0, 0)] * (x.ndim - axes) + [(pixels, pixels)] * axes)
    offsets = rng.integers(0, 2 * pixels + 1, size=(len(x), axes))
    out = np.empty_like(x)
    for offset in np.unique(offsets, axis=0):  # at most (2 * pixels + 1) ** axes groups, each one slice
        rows = (offsets == offset).all(axis=1)
        window = tuple(slice(o, o + size) for o, size in zip(offset, sizes, strict=True))
        out[rows] = padded[rows][(Ellipsis,) + window]
    return out


def hflip(x: NDArray[Any], rng: np.random.Generator) -> NDArray[Any]:
    """A random half of the examples (each with probability 1/2) reversed along the last axis."""
    flip = rng.random(len(x)) < 0.5
    out = x.copy()
    out[flip] = x[flip][..., ::-1]
    return out


def noise(x: NDArray[Any], std: float, rng: np.random.Generator) -> NDArray[Any]:
    """x plus Gaussian noise of standard deviation ``std``, in x's dtype."""
    return x + rng.standard_normal(x.shape, dtype=x.dtype) * x.dtype.type(std)


def augmenter(settings: dict[str, Any]) -> Callable[..., tuple[NDArray[Any], NDArray[Any]]] | None:
    """The Solver's ``augment`` for ``[data.augment]`` (checked here), or None when it asks for nothing."""
    if not isinstance(settings, dict):
        raise ConfigError(f"data.augment: expected a table, got {settings!r}")
    for key, value in settings.items():
        if key not in SETTINGS:
            raise ConfigError(f"unknown key data.augment.{key}; allowed: {', '.join(SETTINGS)}")
        check_type(f"data.augment.{key}", value, SETTINGS[key][0])
    pixels, flip = int(settings.get("pad_crop", 0)), bool(settings.get("hflip", False))
    std = float(settings.get("noise", 0.0))
    if pixels < 0 or std < 0:
        raise ConfigError(f"data.augment: pad_crop and noise must be >= 0, got {pixels} and {std}")
    if not (pixels or flip or std):
        return None

    def augment(x: NDArray[Any], y: NDArray[Any], rng: np.random.Generator) -> tuple[NDArray[Any], NDArray[Any]]:
        if x.dtype.kind != "f":
            raise ValueError(f"data.augment: the inputs are {x.dtype} (indices?); only real-valued inputs are "
                             "augmented")
        if pixels:
            x = pad_crop(x, pixels, rng)
        if flip:
            x = hflip(x, rng)
        if std:
            x = noise(x, std, rng)
        return x, y

    return augment
