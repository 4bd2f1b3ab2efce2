"""Gradient checking for any Layer: ``gradcheck``, ``assert_gradients``, ``check_jacobian``.

``gradcheck(layer, *inputs)`` works on a float64 copy of the layer and inputs (the caller's are
untouched), in ``mode="train"`` (default) or ``"eval"``, and checks two kinds of thing:

1. What no tolerance can see, each a failure with its reason in words: forward must give the same
   output twice (a layer that draws from a ``numpy.random.Generator`` it holds is checked with
   that Generator's state restored before every forward; other randomness is a failure with
   instructions); forward and backward must leave ``dout``, the inputs and the parameters
   unchanged; a second backward after a fresh forward must give identical gradients (``grads``
   are overwritten, never accumulated); backward returns one gradient per input, of its shape.
2. Every input and parameter gradient against centred differences of sum(forward() * dout),
   with the decision rule of ``layers.gradcheck.finite_diff``: |analytic - numerical| must be within
   rtol * |value| + the truncation error seen between steps h and 2h + the rounding noise of
   float64 at step h. Entries whose step crossed a kink are skipped and counted; a tensor whose
   every entry is a kink fails.

``dout`` is drawn from its own stream (seeded by ``rng``, independent of ``default_rng(rng)``), so
it never equals an input drawn with the same seed. ``python -m layers.gradcheck`` is the command
line (it lives in ``chainrule.cli.gradcheck``, which also checks losses and whole models).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..base import Array, Layer
from .contract import as_float64, as_list, changed, check_determinism, fixed_forward, harness_checks, snapshot
from .diagnose import describe_mismatch
from .finite_diff import RTOL, allowed_error, finite_differences, rounding_allowance

DOUT_STREAM = 0x646F7574  # "dout": mixed into the seed so dout never equals default_rng(seed)'s draws


@dataclass
class TensorCheck:
    """One tensor's comparison at its worst entry (largest error relative to its budget)."""

    name: str
    passed: bool
    worst_index: tuple[int, ...] = ()
    analytic: float = 0.0
    numerical: float = 0.0
    abs_error: float = 0.0
    allowed: float = 0.0
    max_rel_error: float = 0.0
    kinks: int = 0
    reason: str = ""


@dataclass
class GradReport:
    """Every check for one layer and one set of inputs; ``problems`` are failures of the harness checks."""

    layer: str
    shapes: str
    mode: str = "train"
    checks: list[TensorCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems and all(c.passed for c in self.checks)

    def rows(self) -> list[tuple[str, ...]]:
        blank = ("-",) * 8
        rows: list[tuple[str, ...]] = [(self.layer, self.shapes, *blank, f"FAIL: {p}") for p in self.problems]
        for c in self.checks:
            result = "pass" if c.passed else "FAIL" + (f": {c.reason}" if c.reason else "")
            rows.append((self.layer, self.shapes, c.name, f"{c.abs_error:.2e}", f"{c.allowed:.2e}",
                         f"{c.max_rel_error:.2e}", str(c.worst_index), f"{c.analytic:.6g}", f"{c.numerical:.6g}",
                         str(c.kinks), result))
        return rows

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    def __str__(self) -> str:
        text = format_table([HEADER, *self.rows()])
        return "\n".join([text, *(f"note: {n}" for n in self.notes)])


HEADER = ("layer", "inputs", "tensor", "abs err", "allowed", "rel err", "worst index", "analytic", "numerical",
          "kinks", "result")


def format_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def input_names(layer: Layer, count: int) -> list[str]:
    names = getattr(layer, "input_names", None)
    if names is not None and len(names) == count:
        return [str(n) for n in names]
    return ["x"] if count == 1 else ["x", "y"] if count == 2 else [f"x{i}" for i in range(count)]


def compare(name: str, analytic: Array, diffs: Any, rounding: float, values: Array | None, value_name: str,
            rtol: float) -> TensorCheck:
    """The decision rule applied to one tensor; the worst entry is the one furthest past its budget."""
    numerical = diffs.numerical
    if analytic.shape != numerical.shape:
        return TensorCheck(name, False, reason=f"analytic has shape {analytic.shape}, expected {numerical.shape}")
    if analytic.size == 0:
        return TensorCheck(name, True)
    kinks = diffs.kinks
    allowed = allowed_error(analytic, diffs, rounding, rtol)
    error = np.abs(analytic - numerical)
    ratio = np.where(kinks, 0.0, error / np.maximum(allowed, 1e-300))
    ratio = np.where(np.isnan(error) & ~kinks, np.inf, ratio)
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    rel = np.where(kinks, 0.0, error / np.maximum(np.maximum(np.abs(analytic), np.abs(numerical)), 1e-300))
    check = TensorCheck(name, bool(ratio[worst] <= 1.0), tuple(int(i) for i in worst), float(analytic[worst]),
                        float(numerical[worst]), float(error[worst]), float(allowed[worst]),
                        float(np.max(rel)), int(kinks.sum()))
    if kinks.all():
        check.passed, check.reason = False, "every entry was skipped as a kink: move the inputs away from kinks"
    elif not check.passed:
        failed = (ratio > 1.0) & ~kinks
        check.reason = describe_mismatch(analytic, numerical, failed, values, value_name)
    return check


def gradcheck(layer: Layer, *inputs: Any, dout: Any = None, h: float = 1e-5, rtol: float = RTOL,
              rng: np.random.Generator | int = 0, mode: str = "train") -> GradReport:
    """Check ``layer``'s forward/backward contract and every gradient; returns a GradReport (see the module doc)."""
    if mode not in ("train", "eval"):
        raise ValueError(f"gradcheck: mode must be 'train' or 'eval', got {mode!r}")
    for key, value in (("h", h), ("rtol", rtol)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 < value < np.inf:
            raise ValueError(f"gradcheck: {key} must be a finite number > 0, got {value!r}")
    layer = copy.deepcopy(layer).astype(np.float64).train(mode == "train")
    xs: dict[str, Array] = dict(zip(input_names(layer, len(inputs)), map(as_float64, inputs), strict=True))
    report = GradReport(type(layer).__name__, " ".join(str(x.shape) for x in xs.values()), mode)
    report.problems += [f"input {k} is empty (shape {x.shape}): nothing to compare; check with one example or more"
                        for k, x in xs.items() if x.size == 0]
    if report.problems:
        return report
    forward = fixed_forward(layer, list(xs.values()))
    inputs0 = snapshot(xs)
    forward()
    report.problems += [f"forward modified input {k} in place" for k in changed(inputs0, xs)]
    if report.problems or not check_determinism(forward, layer, report.problems, report.notes):
        return report
    out = forward()
    problem = output_problem(out)
    if problem:
        report.problems.append(problem)
        return report
    g = np.random.default_rng((DOUT_STREAM, rng)) if isinstance(rng, (int, np.integer)) else rng
    d = g.standard_normal(out.shape) if dout is None else np.array(dout, dtype=np.float64)
    if d.shape != out.shape:
        raise ValueError(f"gradcheck: dout has shape {d.shape} but {report.layer}'s output has shape {out.shape}")
    result = harness_checks(layer, forward, xs, d, report.problems)
    if result is None:
        return report
    dxs, grads = result
    rounding = rounding_allowance(out, d, h)
    tensors: list[tuple[str, str, Array, Any]] = [(f"d{k}", k, x, dx) for (k, x), dx in
                                                  zip(xs.items(), dxs, strict=True) if x.dtype.kind == "f"]
    tensors += [(k, k, p, grads.get(k)) for k, p in layer.params.items()]
    for label, name, tensor, grad in tensors:
        if grad is None:
            if label == name:
                report.checks.append(TensorCheck(label, False, reason=f"grads has no entry {name!r}"))
            continue
        values = tensor.copy() if label != name else None  # inputs only: where their failing entries lie
        diffs = finite_differences(forward, tensor, d, h)
        report.checks.append(compare(label, grad, diffs, rounding, values, name, rtol))
    if not report.checks and not report.problems:
        report.problems.append("nothing was checked: the inputs are not floating and the layer has no parameters; "
                               "give it a floating input (or example() one) to check")
    if not report.problems and getattr(layer, "keeps_dtype", True):
        report.notes += float32_notes(layer, list(xs.values()))
    return report


def float32_notes(layer: Layer, xs: list[Array]) -> list[str]:
    """One float32 forward of the layer (a float32 copy, float32 inputs): a layer that turns it into float64 (a
    numpy float64 constant in it, say) breaks a float32 model at the next layer (Sequential refuses it), so the
    report says so in a note (its gradient may still be right)."""
    small = copy.deepcopy(layer).astype(np.float32)
    inputs = [x.astype(np.float32) if x.dtype.kind == "f" else x for x in xs]
    try:
        with np.errstate(all="ignore"):
            out = small.forward(*inputs)
    except Exception as e:  # the float64 checks passed: say what float32 did, do not hide the report
        return [f"a float32 forward raised {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"]
    dtype = getattr(out, "dtype", None)
    if dtype is not None and dtype.kind == "f" and dtype != np.float32:
        return [f"forward turned float32 inputs into {dtype} output, which a float32 model refuses; a layer "
                "computes in its input's dtype: write constants as x.dtype.type(c), or cast with .astype(x.dtype)"]
    return []


def output_problem(out: Any) -> str | None:
    """Why an output cannot be checked in float64, or None: it is not a floating array, or the layer gave
    another float dtype for its float64 inputs (a float32 constant or cast inside it)."""
    kind = getattr(getattr(out, "dtype", None), "kind", None)
    if kind != "f":
        got = f"dtype {out.dtype}" if kind else type(out).__name__
        return f"forward returned {got}; a layer returns a floating array, whose gradient is checked"
    if out.dtype != np.float64:
        return (f"forward returned {out.dtype} for float64 inputs: the layer changes its input's dtype (a float32 "
                "constant or cast inside it), so its gradient cannot be checked in float64; compute in x.dtype")
    return None


def assert_gradients(layer: Layer, *inputs: Any, **kwargs: Any) -> GradReport:
    """For pytest suites: raise AssertionError with the report's table unless every check passes."""
    report = gradcheck(layer, *inputs, **kwargs)
    if not report.passed:
        failed = ", ".join([c.name for c in report.checks if not c.passed] + report.problems)
        raise AssertionError(f"gradient check failed for {report.layer} ({failed}):\n{report}")
    return report


def numerical_jacobian(layer: Layer, *inputs: Any, wrt: int = 0, h: float = 1e-5) -> Array:
    """The full Jacobian d out / d inputs[wrt], shape (out.size, inputs[wrt].size), by centred differences."""
    layer = copy.deepcopy(layer).astype(np.float64)
    xs: list[Array] = [np.array(x, dtype=np.float64) for x in inputs]
    forward = fixed_forward(layer, xs)
    size = np.size(forward())
    flat = xs[wrt].reshape(-1)
    J = np.empty((size, flat.size))
    for j in range(flat.size):
        old = flat[j]
        flat[j] = old + h
        plus = forward().ravel()
        flat[j] = old - h
        J[:, j] = (plus - forward().ravel()) / (2 * h)
        flat[j] = old
    return J


def check_jacobian(layer: Layer, *inputs: Any, wrt: int = 0, tol: float = 1e-6) -> Array:
    """Confirm that backward(e_i) == J^T e_i for every output basis vector e_i.

    backward never forms J: it computes J^T dout directly. This builds J
    numerically only to show they agree. Returns J; raises AssertionError on a mismatch.
    """
    J = numerical_jacobian(layer, *inputs, wrt=wrt)
    layer = copy.deepcopy(layer).astype(np.float64)
    xs: list[Array] = [np.array(x, dtype=np.float64) for x in inputs]
    forward = fixed_forward(layer, xs)
    out = forward()
    for i in range(out.size):
        e = np.zeros(out.size)
        e[i] = 1.0
        forward()
        row = np.ravel(as_list(layer.backward(e.reshape(out.shape)))[wrt])
        err = float(np.max(np.abs(row - J[i]), initial=0.0))
        if err > tol:
            raise AssertionError(f"{layer!r}: backward(e_{i}) differs from row {i} of the Jacobian by {err:.2e}")
    return J
