"""The computational-graph lecture's pieces: two-input gates (Add, Mul, Max, MatMul), single-input elementary
gates (Exp, Reciprocal, Scale, AddConst, Square, Sum), the Graph that wires them, and its pictures (DOT)."""

from .elementary import AddConst, Exp, Reciprocal, Scale, Square, Sum
from .gates import Add, MatMul, Max, Mul
from .graph import Graph

__all__ = ["Add", "Mul", "Max", "MatMul", "Exp", "Reciprocal", "Scale", "AddConst", "Square", "Sum", "Graph"]
