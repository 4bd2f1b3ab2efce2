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
from .objective import Objective


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


class ObjectiveLayer(Layer, register=False):
    """The training objective J(X) = objective(model(X), y) for fixed labels y, as a one-input layer whose
    parameters are the model's (under "model."): backward fills the model's gradients with the penalty's added."""

    input_names = ("X",)

    def __init__(self, model: Layer, objective: Objective, y: NDArray[np.integer]) -> None:
        super().__init__()
        self.model, self.objective, self.y = model, objective, np.asarray(y)

    def __repr__(self) -> str:
        return f"ObjectiveLayer({type(self.model).__name__}, {self.objective!r})"

    def forward(self, X: NDArray[np.floating]) -> NDArray[np.floating]:
        scores = self.model.forward(X)
        return np.asarray(self.objective.forward(scores, self.y, self.model.params))

    def backward(self, dout: NDArray[np.floating]) -> NDArray[np.floating]:
        dX = self.model.backward(self.objective.backward() * dout)
        self.objective.add_penalty_grad(self.model.params, self.model.grads, scale=float(dout))
        return dX


def check_loss(loss: Loss, scores: Any, y: Any, **kwargs: Any) -> GradReport:
    """Gradient-check ``loss`` with respect to ``scores`` for fixed labels ``y`` (keywords as for gradcheck)."""
    report = gradcheck(LossLayer(loss, y), scores, **kwargs)
    report.layer = type(loss).__name__
    return report


def check_objective(model: Layer, loss: Loss, X: Any, y: Any, reg: float = 0.0, **kwargs: Any) -> GradReport:
    """Gradient-check the whole training objective against the input and every parameter of ``model``;
    the rows name the model's parameters as ``model.params`` does, with the class that holds each
    ("0.W (Affine)", "1.fc.b (Affine)")."""
    report = gradcheck(ObjectiveLayer(model, Objective(loss, reg), y), X, **kwargs)
    report.layer = f"{type(model).__name__} + {type(loss).__name__} + L2({reg:g})"
    owners = dict(model.named_layers())
    for check in report.checks:
        name = check.name.removeprefix("model.")
        owner = owners.get(name.rpartition(".")[0])
        check.name = f"{name} ({type(owner).__name__})" if owner is not None and owner is not model else name
    return report
