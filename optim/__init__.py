"""chainrule optimizers and learning-rate schedules."""

from .adaptive import AdaGrad, Adam, RMSProp
from .base import OPTIMIZERS, Optimizer
from .schedules import SCHEDULES, CosineDecay, ExponentialDecay, Schedule, StepDecay
from .sgd import SGD

__all__ = ["OPTIMIZERS", "Optimizer", "SGD", "AdaGrad", "RMSProp", "Adam",
           "SCHEDULES", "Schedule", "ExponentialDecay", "StepDecay", "CosineDecay"]
