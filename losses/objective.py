"""The training objective: a data loss plus L2 regularization over the weights, as the lecture writes it.

    J = loss(scores, y) + reg * sum_k sum(W_k ** 2),    dJ/dW_k = dloss/dW_k + 2 * reg * W_k

Weights are the parameters with two or more dimensions (``is_weight``); biases and normalization scales
are not regularized. The Solver trains with an ``Objective``; the whole-model gradient check checks one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .base import Loss

Params = dict[str, NDArray[np.floating]]


def is_weight(param: NDArray[Any]) -> bool:
    """A weight matrix or kernel (ndim >= 2), which L2 regularizes; a bias or scale vector is not one."""
    return param.ndim >= 2


def l2_penalty(params: Params, reg: float) -> float:
    """reg * the sum of squares of every weight."""
    if reg == 0:
        return 0.0
    return reg * sum(float(np.vdot(w, w)) for w in params.values() if is_weight(w))


def add_l2_grad(params: Params, grads: Params, reg: float, scale: float = 1.0) -> None:
    """grads[k] += scale * 2 * reg * params[k] in place, for every weight."""
    if reg == 0:
        return
    for key, w in params.items():
        if is_weight(w):
            g = grads[key]
            g += g.dtype.type(scale * 2 * reg) * w


class Objective:
    """J = ``loss``(scores, y) + ``reg`` * sum(W**2) over the weights of ``params``.

    ``forward(scores, y, params)`` returns J and caches the loss's gradient; ``backward()`` returns
    dJ/dscores; ``penalty(params)`` is the L2 term alone; ``add_penalty_grad(params, grads)`` adds the
    penalty's gradient to the model's.
    """

    def __init__(self, loss: Loss, reg: float = 0.0) -> None:
        if not (isinstance(reg, (int, float)) and not isinstance(reg, bool) and reg >= 0):
            raise ValueError(f"Objective: reg must be a number >= 0, got {reg!r}")
        self.loss, self.reg = loss, float(reg)

    def __repr__(self) -> str:
        return f"{self.loss!r} + L2({self.reg:g})"

    def forward(self, scores: NDArray[np.floating], y: NDArray[np.integer], params: Params) -> float:
        loss = self.loss.forward(scores, y)
        return loss + l2_penalty(params, self.reg) if self.reg else loss

    def penalty(self, params: Params) -> float:
        return l2_penalty(params, self.reg)

    def backward(self) -> NDArray[np.floating]:
        return self.loss.backward()

    def add_penalty_grad(self, params: Params, grads: Params, scale: float = 1.0) -> None:
        if self.reg:
            add_l2_grad(params, grads, self.reg, scale)
