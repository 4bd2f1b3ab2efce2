"""chainrule layers: gates, layers and containers with an explicit forward/backward API.

Gradient checking lives in ``layers.gradcheck`` (``from layers.gradcheck import gradcheck``).
"""

from .activations import ELU, LeakyReLU, ReLU, Sigmoid, Tanh
from .affine import Affine
from .base import REGISTRY, Layer
from .containers import Sequential
from .elementary import AddConst, Exp, Reciprocal, Scale, Square, Sum
from .gates import Add, MatMul, Max, Mul
from .graph import Graph
from .maxout import Maxout
from .normalization import BatchNorm, Dropout, LayerNorm

__all__ = [
    "REGISTRY", "Layer", "Add", "Mul", "Max", "Affine", "ReLU", "LeakyReLU", "ELU", "Sigmoid",
    "Tanh", "Maxout", "Sequential", "Graph", "MatMul", "Exp", "Reciprocal", "Scale", "AddConst", "Square", "Sum",
    "Dropout", "BatchNorm", "LayerNorm",
]
