"""Per-parameter adaptive learning rates: AdaGrad, RMSProp, Adam."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .base import Optimizer, check_fraction, check_positive

Array = NDArray[np.floating]


class AdaGrad(Optimizer):
    """cache <- cache + dw**2; w <- w - lr * dw / (sqrt(cache) + eps)."""

    aliases = ("adagrad",)
    slots = ("cache",)

    def __init__(self, lr: float = 1e-2, eps: float = 1e-8,
                 clip_norm: float | None = None) -> None:
        super().__init__(lr, clip_norm)
        check_positive(self, eps=eps)
        self.eps = float(eps)

    def update(self, p: Array, g: Array, state: dict[str, Any]) -> None:
        cache = state["cache"]
        cache += g * g
        p -= p.dtype.type(self.lr) * g / (np.sqrt(cache) + p.dtype.type(self.eps))


class RMSProp(Optimizer):
    """cache <- rho * cache + (1 - rho) * dw**2; w <- w - lr * dw / (sqrt(cache) + eps)."""

    aliases = ("rmsprop",)
    slots = ("cache",)

    def __init__(self, lr: float = 1e-2, decay_rate: float = 0.99, eps: float = 1e-8,
                 clip_norm: float | None = None) -> None:
        super().__init__(lr, clip_norm)
        check_fraction(self, decay_rate=decay_rate)
        check_positive(self, eps=eps)
        self.decay_rate, self.eps = float(decay_rate), float(eps)

    def update(self, p: Array, g: Array, state: dict[str, Any]) -> None:
        rho = p.dtype.type(self.decay_rate)
        cache = state["cache"]
        cache *= rho
        cache += (1 - rho) * g * g
        p -= p.dtype.type(self.lr) * g / (np.sqrt(cache) + p.dtype.type(self.eps))


class Adam(Optimizer):
    """m <- b1 m + (1 - b1) dw; v <- b2 v + (1 - b2) dw**2;
    w <- w - lr * m_hat / (sqrt(v_hat) + eps) with bias-corrected m_hat, v_hat (step t from 1).
    """

    aliases = ("adam",)
    slots = ("m", "v")

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 clip_norm: float | None = None) -> None:
        super().__init__(lr, clip_norm)
        check_fraction(self, beta1=beta1, beta2=beta2)
        check_positive(self, eps=eps)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def update(self, p: Array, g: Array, state: dict[str, Any]) -> None:
        t = p.dtype.type
        b1, b2 = t(self.beta1), t(self.beta2)
        m, v = state["m"], state["v"]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        step = t(self.lr * np.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t))
        p -= step * m / (np.sqrt(v) + t(self.eps))
