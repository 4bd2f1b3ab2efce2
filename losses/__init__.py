"""chainrule losses: multiclass SVM and softmax cross-entropy for classes, mean squared error and Huber for values,
and the objective with L2 regularization."""

from .base import LOSSES, Loss
from .classification import SoftmaxCrossEntropy, SVMLoss
from .measures import r2_score, rmse
from .objective import Objective, add_l2_grad, is_weight, l2_penalty
from .regression import HuberLoss, MSELoss, RegressionLoss
from .tasks import Classification, Regression, Task

__all__ = ["LOSSES", "Loss", "SVMLoss", "SoftmaxCrossEntropy", "Objective", "is_weight", "l2_penalty",
           "add_l2_grad",
           "RegressionLoss", "MSELoss", "HuberLoss", "Task", "Classification", "Regression", "r2_score", "rmse"]
