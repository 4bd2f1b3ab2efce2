"""Numerical gradient checking for any Layer, and ``python -m layers.gradcheck [MODULE ...]``.

``gradcheck(layer, *inputs)`` compares every input gradient and every
parameter gradient from ``backward`` with centred differences of
f = sum(forward(*inputs) * dout) for a random ``dout``, in float64 (the layer
is copied and cast; the caller's layer and inputs are untouched).

Kinks: built-in examples keep inputs at least 0.1 away from kinks (ReLU and
LeakyReLU at 0, Max ties). Independently, each entry's one-sided slopes are
compared; where they disagree the step crossed a kink (a Maxout tie, say),
the entry is skipped and counted in ``kinks``, not failed.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base import REGISTRY, Array, Layer


@dataclass
class TensorCheck:
    """The comparison for one tensor: worst entry, both values there, and the verdict."""

    name: str
    max_rel_error: float
    worst_index: tuple[int, ...]
    analytic: float
    numerical: float
    passed: bool
    kinks: int = 0


@dataclass
class GradReport:
    """Every tensor's check for one layer and one set of inputs."""

    layer: str
    shapes: str
    tol: float
    checks: list[TensorCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def rows(self) -> list[tuple[str, ...]]:
        return [
            (self.layer, self.shapes, c.name, f"{c.max_rel_error:.2e}", str(c.worst_index),
             f"{c.analytic:.6g}", f"{c.numerical:.6g}", str(c.kinks), "pass" if c.passed else "FAIL")
            for c in self.checks
        ]

    def __str__(self) -> str:
        return format_table([HEADER, *self.rows()])


HEADER = ("layer", "inputs", "tensor", "max rel err", "worst index", "analytic", "numerical", "kinks", "result")


def format_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def rel_error(analytic: Array, numerical: Array, floor: float = 1e-4) -> Array:
    """|a - n| / max(|a|, |n|, floor), elementwise.

    Entries below ``floor`` in magnitude are compared in absolute terms (scaled by 1/floor):
    centred differences carry about 1e-12 of rounding noise, which is no relative
    measure of a gradient of 1e-6. A wrong gradient still shows: a factor of 2 on an
    entry of 1e-6 reports 1e-2.
    """
    denom = np.maximum(np.maximum(np.abs(analytic), np.abs(numerical)), floor)
    return np.abs(analytic - numerical) / denom


def numerical_gradient(
    forward: Callable[[], Array], x: Array, dout: Array, h: float = 1e-5, kink_tol: float = 1e-3
) -> tuple[Array, Array]:
    """Centred differences of sum(forward() * dout) with respect to ``x``, perturbed in place.

    Returns the gradient and a boolean mask of entries whose step crossed a kink.
    Output differences are taken elementwise before the dot with ``dout``,
    which keeps rounding error far below that of differencing two sums.
    """
    grad = np.zeros_like(x)
    kinks = np.zeros(x.shape, dtype=bool)
    out0 = np.array(forward(), dtype=np.float64)
    flat = x.reshape(-1)  # a view: writes perturb x
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        plus = np.sum((forward() - out0) * dout)
        flat[i] = old - h
        minus = np.sum((out0 - forward()) * dout)
        flat[i] = old
        slope = (plus + minus) / (2 * h)
        grad.flat[i] = slope
        kinks.flat[i] = abs(plus - minus) / h > kink_tol * max(1.0, abs(slope))
    return grad, kinks


def input_names(layer: Layer, count: int) -> list[str]:
    names = getattr(layer, "input_names", None)
    if names is not None and len(names) == count:
        return [f"d{n}" for n in names]
    return ["dx"] if count == 1 else ["dx", "dy"] if count == 2 else [f"dx{i}" for i in range(count)]


def compare(name: str, analytic: Array, numerical: Array, kinks: Array, tol: float) -> TensorCheck:
    if analytic.shape != numerical.shape:
        return TensorCheck(f"{name} (shape {analytic.shape}, expected {numerical.shape})",
                           np.inf, (), np.nan, np.nan, False)
    err = np.where(kinks, 0.0, rel_error(analytic, numerical))
    worst = np.unravel_index(int(np.argmax(err)), err.shape) if err.size else ()
    max_err = float(err[worst]) if err.size else 0.0
    passed = bool(max_err < tol)
    if np.isnan(analytic).any():
        passed, max_err = False, np.nan
    return TensorCheck(name, max_err, tuple(int(i) for i in worst),
                       float(analytic[worst]) if err.size else 0.0,
                       float(numerical[worst]) if err.size else 0.0, passed, int(kinks.sum()))


def gradcheck(
    layer: Layer,
    *inputs: Any,
    dout: Any = None,
    tol: float = 1e-7,
    h: float = 1e-5,
    rng: np.random.Generator | int = 0,
) -> GradReport:
    """Check ``layer.backward`` against centred differences for every input and parameter.

    Returns a GradReport; ``report.passed`` is True when every tensor's max
    relative error is below ``tol``. Works on float64 copies of the layer and inputs.
    """
    layer = copy.deepcopy(layer).astype(np.float64)
    xs = [np.array(x, dtype=np.float64) for x in inputs]
    report = GradReport(type(layer).__name__, " ".join(str(x.shape) for x in xs), tol)
    out = layer.forward(*xs)
    g = np.random.default_rng(rng) if isinstance(rng, int) else rng
    d = g.standard_normal(np.shape(out)) if dout is None else np.array(dout, dtype=np.float64)
    dxs = layer.backward(d)
    dxs = list(dxs) if isinstance(dxs, (tuple, list)) else [dxs]
    if len(dxs) != len(xs):
        raise ValueError(f"{layer!r}: backward returned {len(dxs)} gradients for {len(xs)} inputs")
    names = input_names(layer, len(xs))
    analytic: dict[str, Array] = {n: np.asarray(a, dtype=np.float64) for n, a in zip(names, dxs, strict=True)}
    analytic.update({k: np.array(v, dtype=np.float64) for k, v in layer.grads.items()})
    tensors: dict[str, Array] = dict(zip(names, xs, strict=True))
    tensors.update(layer.params)

    def forward() -> Array:
        return layer.forward(*xs)

    for name, tensor in tensors.items():
        numerical, kinks = numerical_gradient(forward, tensor, d, h)
        report.checks.append(compare(name, analytic[name], numerical, kinks, tol))
    return report


def assert_gradients(layer: Layer, *inputs: Any, **kwargs: Any) -> GradReport:
    """For pytest suites: raise AssertionError with the report's table unless every gradient passes."""
    report = gradcheck(layer, *inputs, **kwargs)
    if not report.passed:
        failed = ", ".join(c.name for c in report.checks if not c.passed)
        raise AssertionError(f"gradient check failed for {report.layer} ({failed}):\n{report}")
    return report


def numerical_jacobian(layer: Layer, *inputs: Any, wrt: int = 0, h: float = 1e-5) -> Array:
    """The full Jacobian d out / d inputs[wrt], shape (out.size, inputs[wrt].size), by centred differences."""
    layer = copy.deepcopy(layer).astype(np.float64)
    xs = [np.array(x, dtype=np.float64) for x in inputs]
    size = np.size(layer.forward(*xs))
    flat = xs[wrt].reshape(-1)
    J = np.empty((size, flat.size))
    for j in range(flat.size):
        old = flat[j]
        flat[j] = old + h
        plus = np.array(layer.forward(*xs), dtype=np.float64).ravel()
        flat[j] = old - h
        J[:, j] = (plus - np.ravel(layer.forward(*xs))) / (2 * h)
        flat[j] = old
    return J


def check_jacobian(layer: Layer, *inputs: Any, wrt: int = 0, tol: float = 1e-6) -> Array:
    """Confirm that backward(e_i) == J^T e_i for every output basis vector e_i.

    backward never forms J: it computes J^T dout directly. This builds J
    numerically only to show they agree. Returns J; raises AssertionError on a mismatch.
    """
    J = numerical_jacobian(layer, *inputs, wrt=wrt)
    layer = copy.deepcopy(layer).astype(np.float64)
    xs = [np.array(x, dtype=np.float64) for x in inputs]
    out = np.asarray(layer.forward(*xs))
    for i in range(out.size):
        e = np.zeros(out.size)
        e[i] = 1.0
        grads = layer.backward(e.reshape(out.shape))
        row = np.ravel(grads[wrt] if isinstance(grads, tuple) else grads)
        err = float(np.max(np.abs(row - J[i]), initial=0.0))
        if err > tol:
            raise AssertionError(f"{layer!r}: backward(e_{i}) differs from row {i} of the Jacobian by {err:.2e}")
    return J


def layer_classes(modules: list[str]) -> list[type[Layer]]:
    """Registered built-ins, then the registered Layer subclasses defined in each named module."""
    found = [cls for cls in REGISTRY.values() if cls.__module__.startswith("layers.")]
    for name in modules:
        module = importlib.import_module(name)
        found += [cls for cls in vars(module).values()
                  if inspect.isclass(cls) and issubclass(cls, Layer) and cls.__module__ == module.__name__
                  and REGISTRY.get(cls.__name__) is cls and cls not in found]
    return found


def check_class(cls: type[Layer], batch: int, rng: np.random.Generator) -> list[tuple[str, ...]]:
    """Table rows for one class at one batch size; a class that cannot build an example fails."""
    try:
        takes_batch = "batch" in inspect.signature(cls.example).parameters
        layer, inputs = cls.example(rng, batch=batch) if takes_batch else cls.example(rng)
        return gradcheck(layer, *inputs, rng=rng).rows()
    except Exception as e:  # a broken user layer is a failed row, not a crash
        return [(cls.__name__, f"batch {batch}", "-", "-", "-", "-", "-", "-",
                 f"FAIL ({type(e).__name__}: {e})".splitlines()[0])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m layers.gradcheck",
        description="Gradient-check every registered layer, plus the Layer subclasses of the named modules.",
    )
    parser.add_argument("modules", nargs="*", metavar="MODULE", help="importable module defining Layer subclasses")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    sys.path.insert(0, "")
    try:
        classes = layer_classes(args.modules)
    except Exception as e:
        if args.debug:
            raise
        print(f"layers.gradcheck: cannot import module: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    rows = [row for cls in classes for batch in (1, 3) for row in check_class(cls, batch, rng)]
    print(format_table([HEADER, *rows]))
    failed = sorted({r[0].split("(")[0] for r in rows if r[-1].startswith("FAIL")})
    print(f"\n{len(classes)} layers, {len(rows)} tensors checked: "
          + (f"FAILED: {', '.join(failed)}" if failed else "all passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
