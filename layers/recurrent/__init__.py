"""Recurrent nets: the course's step functions (``steps``: one time step of a vanilla RNN, an LSTM and a GRU,
forward and backward, the readable reference) and the fused layers (``fused``: RNN, LSTM and GRU over a whole
sequence, tested against the steps)."""

from .fused import GRU, LSTM, RNN, Recurrent

__all__ = ["RNN", "LSTM", "GRU", "Recurrent"]
