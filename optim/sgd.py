"""Stochastic gradient descent, with optional (Nesterov) momentum."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.linalg.blas import daxpy, saxpy

from .base import Optimizer, check_fraction

Array = NDArray[np.floating]
AXPY = {np.dtype(np.float32): saxpy, np.dtype(np.float64): daxpy}


def add_scaled(y: Array, x: Array, a: float) -> None:
    """y += a * x in place.

    Contiguous float32/float64 pairs go through BLAS axpy: one fused, multi-threaded pass with no
    temporary, several times faster than ``y -= lr * x`` on large tensors.
    """
    axpy = AXPY.get(y.dtype)
    if axpy is not None and x.dtype == y.dtype and y.flags.c_contiguous and x.flags.c_contiguous and y.size:
        axpy(x.reshape(-1), y.reshape(-1), a=a)  # both reshapes are views: y is updated in place
    else:
        y += y.dtype.type(a) * x


class SGD(Optimizer):
    """w <- w - lr * dw; with momentum mu: v <- mu * v + dw, w <- w - lr * v
    (Nesterov: w <- w - lr * (dw + mu * v)), the convention PyTorch uses.
    """

    aliases = ("sgd",)

    def __init__(self, lr: float = 1e-2, momentum: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(lr)
        check_fraction(self, momentum=momentum)
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.slots = ("velocity",) if momentum else ()

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr}, momentum={self.momentum}, nesterov={self.nesterov})"

    def step(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        if self.momentum:
            super().step(params, grads)
            return
        self.t += 1
        for name, p in params.items():  # plain SGD keeps no state: one in-place update per tensor
            add_scaled(p, grads[name], -self.lr)

    def update(self, p: Array, g: Array, state: dict[str, Any]) -> None:
        v = state["velocity"]
        v *= v.dtype.type(self.momentum)
        add_scaled(v, g, 1.0)
        if self.nesterov:
            add_scaled(p, g, -self.lr)
            add_scaled(p, v, -self.lr * self.momentum)
        else:
            add_scaled(p, v, -self.lr)
