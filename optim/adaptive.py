"""Per-parameter adaptive learning rates: AdaGrad, RMSProp, Adam."""

from __future__ import annotations

from collections.abc import Sequence
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


class AdamW(Optimizer):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW`` (Loshchilov and Hutter): each step first
    shrinks every parameter, w <- w (1 - lr * weight_decay), then m <- b1 m + (1 - b1) dw,
    v <- b2 v + (1 - b2) dw**2, w <- w - lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps).

    The decay does not pass through the gradient, so it is not scaled by Adam's step size; the L2 term of the
    loss (``loss.reg``) stays for the course's optimizers and is usually 0 with AdamW. ``betas`` is (b1, b2).
    """

    aliases = ("adamw",)
    slots = ("m", "v")

    def __init__(self, lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, clip_norm: float | None = None) -> None:
        super().__init__(lr, clip_norm)
        if not (isinstance(betas, (list, tuple)) and len(betas) == 2):
            raise ValueError(f"AdamW: betas must be two numbers (b1, b2), got {betas!r}")
        check_fraction(self, beta1=betas[0], beta2=betas[1])
        check_positive(self, eps=eps)
        if not (isinstance(weight_decay, (int, float)) and not isinstance(weight_decay, bool) and weight_decay >= 0):
            raise ValueError(f"AdamW: weight_decay must be a number >= 0, got {weight_decay!r}")
        self.betas, self.eps, self.weight_decay = (float(betas[0]), float(betas[1])), float(eps), float(weight_decay)

    def __repr__(self) -> str:
        return f"AdamW(lr={self.lr}, betas={self.betas}, eps={self.eps}, weight_decay={self.weight_decay})"

    def update(self, p: Array, g: Array, state: dict[str, Any]) -> None:
        t = p.dtype.type
        (b1, b2), m, v = self.betas, state["m"], state["v"]
        p *= t(1 - self.lr * self.weight_decay)
        m *= t(b1)
        m += t(1 - b1) * g
        v *= t(b2)
        v += t(1 - b2) * g * g
        denom = np.sqrt(v) / t(np.sqrt(1 - b2**self.t))
        denom += t(self.eps)
        p -= t(self.lr / (1 - b1**self.t)) * m / denom
