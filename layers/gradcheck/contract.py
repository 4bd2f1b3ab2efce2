"""The contract checks of gradient checking, which no tolerance can see.

Forward must be deterministic once the layer's own Generators are reset; forward and backward must
leave ``dout``, the inputs and the parameters unchanged; a second backward after a fresh forward must
give identical gradients; backward returns one gradient per floating input, of its shape. Each failure
is a sentence appended to ``problems``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..base import Array, Layer


def fixed_forward(layer: Layer, xs: Sequence[Array]) -> Callable[[], Array]:
    """forward(*xs) with every Generator the layer holds reset to its current state first."""
    gens = list(layer.generators().values())
    states = [g.bit_generator.state for g in gens]

    def forward() -> Array:
        for g, state in zip(gens, states, strict=True):
            g.bit_generator.state = state
        out = layer.forward(*xs)
        if not isinstance(out, (np.ndarray, np.generic)):
            raise TypeError(f"{type(layer).__name__}.forward returned a {type(out).__name__}, expected one numpy "
                            "array (a layer has one output; return np.stack or np.concatenate of several)")
        return np.asarray(out)

    return forward


def as_float64(x: Any) -> Array:
    """A float64 copy of a floating (or Python number) input; integer and boolean inputs are copied as they are."""
    x = np.array(x)
    return x.astype(np.float64) if x.dtype.kind in "fc" or x.dtype == object else x


def as_list(grads: Any) -> list[Any]:
    return list(grads) if isinstance(grads, (tuple, list)) else [grads]


def snapshot(arrays: Mapping[str, Array]) -> dict[str, Array]:
    return {k: np.array(v, copy=True) for k, v in arrays.items()}


def changed(before: Mapping[str, Array], after: Mapping[str, Any]) -> list[str]:
    return [k for k, v in before.items() if not np.array_equal(v, np.asarray(after[k]), equal_nan=True)]


def harness_checks(layer: Layer, forward: Callable[[], Array], xs: Mapping[str, Array], dout: Array,
                   problems: list[str]) -> tuple[list[Any], dict[str, Array]] | None:
    """Run forward/backward twice and record what no tolerance can see; returns (dxs, grads) of the first run."""
    inputs0, params0, dout0 = snapshot(xs), snapshot(layer.params), dout.copy()
    out = forward()
    if out.shape != dout.shape:
        problems.append(f"forward returned shape {out.shape}, expected {dout.shape} as before")
        return None
    d = dout.copy()
    dxs = [None if g is None else np.array(g, dtype=np.float64) for g in as_list(layer.backward(d))]
    grads = snapshot(layer.grads)
    if not np.array_equal(d, dout0):
        problems.append("backward modified dout in place")
    problems += [f"backward modified input {k} in place" for k in changed(inputs0, xs)]
    problems += [f"forward or backward modified parameter {k}" for k in changed(params0, layer.params)]
    if len(dxs) != len(xs):
        problems.append(f"backward returned {len(dxs)} gradients for {len(xs)} inputs")
        return None
    for name, x, dx in zip(xs, xs.values(), dxs, strict=True):
        if x.dtype.kind != "f":
            continue  # integer inputs (indices, labels) have no gradient to check
        if dx is None:
            problems.append(f"backward returned None for d{name}; it must return the gradient of {name} (an "
                            f"array of shape {x.shape})")
        elif dx.shape != x.shape:
            problems.append(f"backward returned d{name} of shape {dx.shape}, expected {x.shape}")
    forward()
    dxs2 = as_list(layer.backward(dout0.copy()))
    for key in changed(grads, layer.grads):
        problems.append(f"grads accumulate across backward calls: {key} changed when backward ran again "
                               f"after a fresh forward ({ratio_phrase(grads[key], layer.grads[key])}); "
                               "backward must overwrite grads, not add to them")
    for name, a, b in zip(xs, dxs, dxs2, strict=True):
        if a is not None and not np.array_equal(a, np.asarray(b, dtype=np.float64), equal_nan=True):
            problems.append(f"d{name} changed when backward ran again after a fresh forward")
    return dxs, grads


def ratio_phrase(first: Array, second: Array) -> str:
    second = np.asarray(second, dtype=np.float64)
    ff = float(np.vdot(first, first))
    return f"the second is {float(np.vdot(first, second)) / ff:.3g}x the first" if ff else "the first was zero"


def check_determinism(forward: Callable[[], Array], layer: Layer, problems: list[str], notes: list[str]) -> bool:
    """Forward twice on the same input must agree; True when the numerical check can go on."""
    first, second, third = forward(), forward(), forward()
    if np.array_equal(first, second, equal_nan=True) and np.array_equal(first, third, equal_nan=True):
        if layer.generators():
            notes.append(f"{type(layer).__name__} holds a random Generator: checked with its state restored "
                                "before every forward (randomness held fixed)")
        return True
    held = "even with its Generators reset before every forward" if layer.generators() else \
        "and it holds no numpy.random.Generator that gradcheck could reset"
    problems.append(
        f"stochastic: forward gave different outputs for the same input, {held}; draw randomness from a "
        "Generator the layer keeps (self.rng = np.random.default_rng(seed)), or check it with mode='eval'")
    return False
