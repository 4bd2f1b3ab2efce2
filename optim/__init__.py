"""chainrule optimizers, learning-rate schedules, and the kinds of early stop."""

from .adaptive import AdaGrad, Adam, RMSProp
from .base import OPTIMIZERS, Optimizer
from .schedules import SCHEDULES, CosineDecay, ExponentialDecay, Schedule, StepDecay
from .sgd import SGD
from .stopping import Stop, StopReason

__all__ = ["OPTIMIZERS", "Optimizer", "SGD", "AdaGrad", "RMSProp", "Adam",
           "SCHEDULES", "Schedule", "ExponentialDecay", "StepDecay", "CosineDecay", "Stop", "StopReason"]
