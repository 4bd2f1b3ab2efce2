"""Gradient checks that need a loss: a loss with respect to its scores, a whole model's training objective, and
the harness that checks one registered class, a layer or a loss, from its ``example`` (``check_case``, what
``python -m layers.gradcheck`` runs for each class, batch size and seed).

The first two wrap their subject as a Layer so that ``layers.gradcheck.gradcheck`` applies its full set of checks.
"""

from __future__ import annotations

import inspect
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
    keeps_dtype = False  # a loss is a float64 number: the checker's float32 pass is for layers

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

    keeps_dtype = False

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


EXAMPLE_HINT = ("define a classmethod example(cls, rng, batch=3) that returns an instance and its inputs, "
                "e.g. `return cls(4), (rng.standard_normal((batch, 4)),)`")


def check_case(cls: Any, batch: int, seed: int, mode: str, drawn: bool = False, variant: int = 0
               ) -> GradReport | None:
    """One class at one batch size and seed, its example ``variant``; a class that cannot build or run its
    example gets a failed report. With ``drawn``, the example's parameters are first moved to values drawn away
    from them (``draw_params``); None when the example has no parameters to draw."""
    rng = np.random.default_rng((seed, batch))
    try:
        takes = inspect.signature(cls.example).parameters
        kwargs = {"batch": batch} if "batch" in takes else {}
        kwargs.update({"variant": variant} if "variant" in takes else {})
        subject, inputs = cls.example(rng, **kwargs)
    except Exception as e:
        if drawn:
            return None  # said once, by the case at the example's own values
        return GradReport(cls.__name__, f"batch {batch}", mode,
                          problems=[f"cannot build an example ({type(e).__name__}: {one_line(e)}); {EXAMPLE_HINT}"])
    shapes = " ".join(str(np.shape(x)) for x in inputs)
    if drawn:
        if isinstance(subject, Loss) or not draw_params(subject, np.random.default_rng((seed, batch, DRAW_STREAM))):
            return None
    try:
        if isinstance(subject, Loss):
            report = check_loss(subject, *inputs, rng=seed, mode=mode)
        else:
            report = gradcheck(subject, *inputs, rng=seed, mode=mode)
    except Exception as e:  # a broken user layer is a failed row, not a crash
        hint = f"; {EXAMPLE_HINT}" if "example" not in vars(cls) else ""  # the inherited default may not fit
        return GradReport(cls.__name__, shapes, mode, problems=[f"raised {type(e).__name__}: {one_line(e)}{hint}"])
    report.shapes += f" variant {variant}" if variant else ""
    if drawn:
        report.shapes += " params drawn"
    return report


DRAW_STREAM = 7  # the Generator stream of the drawn parameter values, apart from the example's own


def draw_params(layer: Any, rng: np.random.Generator) -> bool:
    """Move every floating parameter away from the example's values, in place: each entry is multiplied by a
    factor drawn from [0.5, 2], so its sign is kept (a positive scale or temperature stays positive), and an entry
    that is exactly 0 becomes 0.5 * N(0, 1). An example that sets a parameter to 1 hides a missing factor of it,
    and one at 0 hides a missing term multiplied by it: the drawn values show both. A parameter whose domain is
    narrower than its sign (a probability, say) should be derived from an unconstrained one. False when the
    layer has no floating parameters."""
    drawn = False
    for value in layer.params.values():
        if value.dtype.kind == "f" and value.size:
            factor = rng.uniform(0.5, 2.0, value.shape)
            value[...] = np.where(value == 0, 0.5 * rng.standard_normal(value.shape), value * factor)
            drawn = True
    return drawn


def one_line(error: BaseException) -> str:
    lines = str(error).splitlines()
    return lines[0] if lines else ""
