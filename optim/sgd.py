"""Stochastic gradient descent, with optional (Nesterov) momentum."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .base import Optimizer, check_fraction

Array = NDArray[np.floating]


class SGD(Optimizer):
    """w <- w - lr * dw; with momentum mu: v <- mu * v + dw, w <- w - lr * v
    (Nesterov: w <- w - lr * (dw + mu * v)), the convention PyTorch uses.
    """

    aliases = ("sgd",)

    def __init__(self, lr: float = 1e-2, momentum: float = 0.0, nesterov: bool = False,
                 clip_norm: float | None = None) -> None:
        super().__init__(lr, clip_norm)
        check_fraction(self, momentum=momentum)
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.slots = ("velocity",) if momentum else ()

    def __repr__(self) -> str:
        clip = "" if self.clip_norm is None else f", clip_norm={self.clip_norm}"
        return f"SGD(lr={self.lr}, momentum={self.momentum}, nesterov={self.nesterov}{clip})"

    def step(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        if self.momentum or self.clip_norm is not None:
            super().step(params, grads)
            return
        self.t += 1
        lr = self.lr  # a Python float takes each array's dtype (float32 stays float32), as p.dtype.type(lr) would
        for name, p in params.items():  # plain SGD keeps no state: one in-place update per tensor
            p -= lr * grads[name]

    def update(self, p: Array, g: Array, state: dict[str, Any]) -> None:
        lr, mu = p.dtype.type(self.lr), p.dtype.type(self.momentum)
        if not self.momentum:
            p -= lr * g
            return
        v = state["velocity"]
        v *= mu
        v += g
        p -= lr * (g + mu * v) if self.nesterov else lr * v
