"""Recurrent nets: the course's step functions (``steps``: one time step of a vanilla RNN, an LSTM and a GRU,
forward and backward, the readable reference) and the fused layers over a whole sequence, tested against the
steps (``fused``: what they share, and RNN; ``gated``: LSTM and GRU)."""

from .fused import RNN, Recurrent
from .gated import GRU, LSTM

__all__ = ["RNN", "LSTM", "GRU", "Recurrent"]
