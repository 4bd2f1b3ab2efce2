"""chainrule losses: multiclass SVM, softmax cross-entropy, and the objective with L2 regularization."""

from .base import LOSSES, Loss
from .classification import SoftmaxCrossEntropy, SVMLoss
from .objective import Objective, add_l2_grad, is_weight, l2_penalty

__all__ = ["LOSSES", "Loss", "SVMLoss", "SoftmaxCrossEntropy", "Objective", "is_weight", "l2_penalty",
           "add_l2_grad"]
