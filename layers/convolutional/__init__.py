"""Convolutional nets' layers: convolution (Conv1D, Conv2D) and pooling (max, average, global average), on the
sliding windows they share."""

from .conv import Conv1D, Conv2D
from .pooling import AvgPool1D, AvgPool2D, GlobalAvgPool, MaxPool1D, MaxPool2D

__all__ = ["Conv1D", "Conv2D", "MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D", "GlobalAvgPool"]
