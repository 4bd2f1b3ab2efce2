"""chainrule losses: multiclass SVM, softmax cross-entropy and the L2 penalty."""

from .base import LOSSES, Loss, lookup
from .classification import SoftmaxCrossEntropy, SVMLoss
from .l2 import add_l2_grad, l2_penalty

__all__ = ["LOSSES", "Loss", "lookup", "SVMLoss", "SoftmaxCrossEntropy", "l2_penalty", "add_l2_grad"]
