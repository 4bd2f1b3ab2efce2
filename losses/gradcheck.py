"""Gradient checks that need a loss: a loss with respect to its scores, and a whole model's training objective.

Both wrap their subject as a Layer so that ``layers.gradcheck.gradcheck`` applies its full set of checks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from layers import Layer
from layers.gradcheck import GradReport, gradcheck

from .base import Loss
from .l2 import l2_penalty


class LossLayer(Layer, register=False):
    """The scalar loss(scores, y) for fixed labels y as a one-input layer: out shape (), dscores = dout * backward()."""

    input_names = ("scores",)

    def __init__(self, loss: Loss, y: NDArray[np.integer]) -> None:
        super().__init__()
        self.loss, self.y = loss, np.asarray(y)

    def __repr__(self) -> str:
        return repr(self.loss)

    def forward(self, scores: NDArray[np.floating]) -> NDArray[np.floating]:
        return np.asarray(self.loss.forward(scores, self.y), dtype=scores.dtype)

    def backward(self, dout: NDArray[np.floating]) -> NDArray[np.floating]:
        return self.loss.backward() * dout


class Objective(Layer, register=False):
    """What the Solver minimises: loss(model(X), y) + reg * sum(W**2) over weight tensors, as a one-input layer.

    ``params`` are the model's (qualified names); ``grads`` add 2 * reg * W to the model's own.
    """

    input_names = ("X",)

    def __init__(self, model: Layer, loss: Loss, y: NDArray[np.integer], reg: float) -> None:
        # No Layer.__init__: params and grads are views of the model's, as in Sequential.
        self.model, self.loss, self.y, self.reg = model, loss, np.asarray(y), float(reg)
        self.training, self.dout = True, 1.0

    def __repr__(self) -> str:
        return f"Objective({type(self.model).__name__}, {self.loss!r}, reg={self.reg:g})"

    def children(self) -> list[tuple[str, Layer]]:
        return [("model", self.model)]

    @property
    def params(self) -> dict[str, Any]:  # type: ignore[override]
        return self.model.params

    @property
    def buffers(self) -> dict[str, Any]:  # type: ignore[override]
        return self.model.buffers

    @property
    def grads(self) -> dict[str, Any]:  # type: ignore[override]
        grads = dict(self.model.grads)
        for key, w in self.model.params.items():
            if w.ndim >= 2 and self.reg:
                grads[key] = grads[key] + self.dout * 2 * self.reg * w
        return grads

    def forward(self, X: NDArray[np.floating]) -> NDArray[np.floating]:
        scores = self.model.forward(X)
        return np.asarray(self.loss.forward(scores, self.y) + l2_penalty(self.model.params, self.reg))

    def backward(self, dout: NDArray[np.floating]) -> NDArray[np.floating]:
        self.dout = float(dout)
        return self.model.backward(self.loss.backward() * dout)


def check_loss(loss: Loss, scores: Any, y: Any, **kwargs: Any) -> GradReport:
    """Gradient-check ``loss`` with respect to ``scores`` for fixed labels ``y`` (keywords as for gradcheck)."""
    report = gradcheck(LossLayer(loss, y), scores, **kwargs)
    report.layer = type(loss).__name__
    return report


def check_objective(model: Layer, loss: Loss, X: Any, y: Any, reg: float = 0.0, **kwargs: Any) -> GradReport:
    """Gradient-check the whole training objective against the input and every parameter of ``model``."""
    report = gradcheck(Objective(model, loss, y, reg), X, **kwargs)
    report.layer = f"{type(model).__name__} + {type(loss).__name__} + L2({reg:g})"
    return report
