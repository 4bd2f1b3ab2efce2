"""Words for a gradient mismatch: what the analytic gradient looks like next to the numerical one."""

from __future__ import annotations

import numpy as np

from ..base import Array


def describe_mismatch(analytic: Array, numerical: Array, failed: np.ndarray, values: Array | None,
                      name: str = "x") -> str:
    """A short phrase such as "analytic is 0.50x numerical", "sign flipped" or "only entries with x > 2 differ".

    ``failed`` marks the entries outside the budget; ``values`` are the tensor's own entries
    (the input or parameter), used to say where the failing entries lie.
    """
    a, n = analytic.ravel(), numerical.ravel()
    if not np.all(np.isfinite(a)):
        return "analytic has NaN or inf"
    if not np.any(a) and np.any(n):
        return "analytic is all zero"
    nn = float(n @ n)
    if nn > 0:
        k = float(a @ n) / nn
        if np.linalg.norm(a - k * n) <= 1e-3 * np.linalg.norm(a):
            if abs(k + 1) < 1e-3:
                return "sign flipped"
            if abs(k - 1) < 0.01:
                return f"analytic is about {k:.6f}x numerical (a relative error of {k - 1:+.1e})"
            return f"analytic is {k:.3g}x numerical"
    if analytic.ndim == 2 and analytic.shape[0] == analytic.shape[1] > 1:
        if np.allclose(analytic.T, numerical, rtol=1e-4, atol=1e-8):
            return "analytic is the numerical gradient transposed"
    count, size = int(failed.sum()), failed.size
    if values is not None and values.shape == failed.shape and 0 < count < size:
        where = threshold_phrase(values.ravel(), failed.ravel(), name)
        if where:
            return f"only entries with {where} differ"
    if count < size:
        first = tuple(int(i) for i in np.argwhere(failed)[0])
        return f"{count} of {size} entries differ, the first at {first}"
    return "every entry differs"


def threshold_phrase(values: Array, failed: np.ndarray, name: str = "x") -> str:
    """"x > t" or "x < t" when a threshold on the values separates the failing entries from the rest."""
    bad, good = values[failed], values[~failed]
    if bad.min() > good.max():
        return f"{name} > {round_between(good.max(), bad.min())}"
    if bad.max() < good.min():
        return f"{name} < {round_between(bad.max(), good.min())}"
    return ""


def round_between(low: float, high: float) -> str:
    """The shortest number strictly between ``low`` and ``high``: 0 where it lies between, else fewest digits."""
    if low < 0 < high:
        return "0"
    for digits in range(1, 8):
        candidate = float(f"{(low + high) / 2:.{digits}g}")
        if low < candidate < high:
            return f"{candidate:g}"
    return f"{(low + high) / 2:.6g}"
