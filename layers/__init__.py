"""chainrule layers: gates, layers and containers with an explicit forward/backward API.

Gradient checking lives in ``layers.gradcheck`` (``from layers.gradcheck import gradcheck``); the lecture's
gates and Graph in ``layers.graphs``; convolution and pooling in ``layers.convolutional``.
"""

from .activations import ELU, GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .affine import Affine
from .attention import MultiHeadAttention, PositionalEmbedding, SinusoidalPositionalEncoding, TransformerBlock
from .base import REGISTRY, Layer
from .containers import Parallel, Residual, Sequential
from .convolutional import AvgPool1D, AvgPool2D, Conv1D, Conv2D, GlobalAvgPool, MaxPool1D, MaxPool2D
from .dropout import Dropout
from .embedding import Embedding, TemporalAffine
from .graphs import Add, AddConst, Exp, Graph, MatMul, Max, Mul, Reciprocal, Scale, Square, Sum
from .maxout import Maxout
from .normalization import BatchNorm, GroupNorm, LayerNorm
from .recurrent import GRU, LSTM, RNN
from .saving import load, save
from .shape import Flatten, Reshape, Transpose
from .summary import summary

__all__ = [
    "REGISTRY", "Layer", "Add", "Mul", "Max", "Affine", "ReLU", "LeakyReLU", "ELU", "Sigmoid", "Residual", "Parallel",
    "Tanh", "Maxout", "Sequential", "Graph", "MatMul", "Exp", "Reciprocal", "Scale", "AddConst", "Square", "Sum",
    "Dropout", "BatchNorm", "LayerNorm", "GroupNorm", "Conv1D", "Conv2D", "MaxPool1D", "MaxPool2D", "AvgPool1D",
    "AvgPool2D", "GlobalAvgPool", "Flatten", "Reshape", "RNN", "LSTM", "GRU", "Embedding", "TemporalAffine",
    "GELU", "Softmax", "Transpose", "MultiHeadAttention", "PositionalEmbedding", "SinusoidalPositionalEncoding",
    "TransformerBlock", "save", "load", "summary",
]
