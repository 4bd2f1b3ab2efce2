"""The numerics of gradient checking: centred differences at two step sizes, kinks, and the decision rule.

For f(theta) = sum(forward(...) * dout), each entry theta_i is perturbed by +-h and +-2h (h = 1e-5):

    g_h  = (f(+h) - f(-h)) / 2h        error  h^2 f'''/6 + rounding
    g_2h = (f(+2h) - f(-2h)) / 4h      error 4h^2 f'''/6 + rounding / 2
    numerical = (4 g_h - g_2h) / 3     Richardson: the h^2 term cancels

The analytic entry ``a`` passes when ``|a - numerical| <= allowed``, with

    allowed = rtol * max(|a|, |numerical|)          rtol = 1e-5
            + |g_h - g_2h|                          the truncation error seen (3x that of g_h)
            + max(K * eps * max|out| * sum|dout| / h,    rounding of each output difference, K = 64,
                  2 max_i |a_2h - 2 a_h|)               or the rounding seen in the tensor, if larger
                                                        (capped at 1e4 times the first)

where a_h = (f(+h) - 2 f(0) + f(-h)) / h is the difference of the one-sided slopes, which for a smooth
function is f'' h, so a_2h - 2 a_h is zero up to rounding: its largest value over the tensor (kinks left
out) measures the rounding noise of a forward that loses digits to cancellation (a variance computed as
E[x^2] - E[x]^2 on inputs near 100, say). eps is float64's 2.2e-16. At h = 1e-5 the rounding term is
about 1.4e-9 * max|out| * sum|dout|, i.e. 1e-8 to 1e-6 absolute for the built-in examples, while the
relative term catches a 6e-4 relative error (60x its budget) and a 1% error in one parameter's gradient
wherever that entry is above the noise.

A step that crosses a kink (ReLU at 0, a Max tie, a hinge) makes the one-sided slopes disagree by far
more than curvature can (which grows linearly with the step): such entries are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..base import Array

EPS = float(np.finfo(np.float64).eps)
RTOL = 1e-5
ROUNDING_FACTOR = 64.0
KINK_TOL = 1e-3
NOISE_CAP = 1e4


@dataclass
class Differences:
    """Per-entry results of the finite differences for one tensor."""

    g_h: Array
    g_2h: Array
    kinks: np.ndarray
    noise: Array  # |asym_2h - 2 asym_h|: zero for a smooth function in exact arithmetic, so rounding seen

    @property
    def numerical(self) -> Array:
        return (4 * self.g_h - self.g_2h) / 3


def finite_differences(forward: Callable[[], Array], x: Array, dout: Array, h: float = 1e-5) -> Differences:
    """Centred differences of sum(forward() * dout) in each entry of ``x`` (perturbed in place, then restored).

    Output differences are taken elementwise before the dot with ``dout``: differencing two sums
    would add the rounding error of the sums themselves.
    """
    out0 = np.array(forward(), dtype=np.float64)
    flat = x.reshape(-1)  # a view: writes perturb x
    g_h, g_2h, kinks = np.zeros(x.shape), np.zeros(x.shape), np.zeros(x.shape, dtype=bool)
    noise = np.zeros(x.shape)

    def delta(i: int, step: float) -> float:
        old = flat[i]
        flat[i] = old + step
        try:
            return float(np.sum((np.asarray(forward(), dtype=np.float64) - out0) * dout))
        finally:
            flat[i] = old

    for i in range(flat.size):
        p1, m1, p2, m2 = delta(i, h), -delta(i, -h), delta(i, 2 * h), -delta(i, -2 * h)
        g_h.flat[i] = (p1 + m1) / (2 * h)
        g_2h.flat[i] = (p2 + m2) / (4 * h)
        asym_h, asym_2h = (p1 - m1) / h, (p2 - m2) / (2 * h)
        kinks.flat[i] = crossed_kink(asym_h, asym_2h, g_h.flat[i])
        noise.flat[i] = abs(asym_2h - 2 * asym_h)
    return Differences(g_h, g_2h, kinks, noise)


def crossed_kink(asym_h: float, asym_2h: float, slope: float) -> bool:
    """One-sided slopes that differ by more than curvature explains: a step crossed a kink.

    For a smooth function the difference of the one-sided slopes is f'' times the step, so it
    doubles from h to 2h; a kink within the step gives a difference that does not.
    """
    if max(abs(asym_h), abs(asym_2h)) <= KINK_TOL * max(1.0, abs(slope)):
        return False
    return abs(asym_2h - 2 * asym_h) > 0.1 * max(abs(asym_2h), abs(asym_h))


def rounding_allowance(out: Array, dout: Array, h: float) -> float:
    """The rounding term of the budget: K * eps * max|out| * sum|dout| / h."""
    if out.size == 0:
        return 0.0
    return ROUNDING_FACTOR * EPS * float(np.max(np.abs(out))) * float(np.sum(np.abs(dout))) / h


def allowed_error(analytic: Array, diffs: Differences, rounding: float, rtol: float = RTOL) -> Array:
    """The per-entry error budget of the decision rule (see the module docstring)."""
    scale = np.maximum(np.abs(analytic), np.abs(diffs.numerical))
    smooth = ~diffs.kinks
    noise_seen = 2 * float(diffs.noise[smooth].max()) if smooth.any() else 0.0
    # Trusted up to 1e4 times the assumed rounding (four more digits lost to cancellation), so that
    # garbage differences (a forward that is not a function of its input) never buy a pass.
    noise_seen = min(noise_seen, NOISE_CAP * rounding)
    return rtol * scale + np.abs(diffs.g_h - diffs.g_2h) + max(rounding, noise_seen)
