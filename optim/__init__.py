"""chainrule optimizers, learning-rate schedules, the kinds of early stop, and the BLAS threads of a step."""

from .adaptive import AdaGrad, Adam, AdamW, RMSProp
from .base import OPTIMIZERS, Optimizer
from .schedules import (
    SCHEDULES,
    CosineDecay,
    ExponentialDecay,
    ReduceOnPlateau,
    Schedule,
    StepDecay,
    Warmup,
)
from .sgd import SGD
from .stopping import Stop, StopReason
from .threads import blas_threads

__all__ = ["OPTIMIZERS", "Optimizer", "SGD", "AdaGrad", "RMSProp", "Adam", "AdamW",
           "SCHEDULES", "Schedule", "ExponentialDecay", "StepDecay", "CosineDecay", "Warmup", "ReduceOnPlateau",
           "Stop", "StopReason", "blas_threads"]
