"""A model's table: each layer's output shape for one example and its parameter count, the layers inside a
container indented under it, and the totals; what ``chainrule train`` prints before training.

    >>> layers.summary(Sequential(Affine(4, 8), ReLU(), Affine(8, 3)), (4,))
    layer                                    output  parameters
    0 Affine(in_features=4, out_features=8)  (8,)            40
    ...
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from .base import Layer


def summary(model: Layer, input_shape: tuple[int, ...], dtype: Any = None, file: TextIO | None = None) -> None:
    """Print ``summary_table`` for inputs of ``input_shape`` (one example's, without the batch axis): zeros in
    the model's dtype, or integer indices for a model that reads them (an Embedding first)."""
    dtype = np.dtype(dtype) if dtype is not None else (
        np.dtype(np.int64) if model.takes_indices() else model.params_dtype() or np.dtype(np.float32))
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else (input_shape,)
    print(summary_table(model, np.zeros((2, *shape), dtype=dtype)), file=file or sys.stdout)


def summary_table(model: Layer, sample: NDArray[Any]) -> str:
    """The table for ``sample`` (a batch of inputs; two examples are run, in evaluation mode)."""
    shapes: dict[int, tuple[int, ...]] = {}
    with model.mode(False), recording(model, shapes):
        model.forward(sample[:2])
    rows = [("layer", "output", "parameters")]
    named = model.named_layers()
    top = named if len(named) == 1 else named[1:]
    for name, layer in top:
        depth = name.count(".")
        shape = str(shapes[id(layer)]) if id(layer) in shapes else ""
        rows.append((f"{'  ' * depth}{name} {one_line(layer)}".rstrip() if name else one_line(layer), shape,
                     f"{count(layer):,}"))
    buffers = sum(int(b.size) for b in model.buffers.values())
    rows.append(("total", "", f"{count(model):,}"))
    if buffers:
        rows.append(("buffers (not trained)", "", f"{buffers:,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{a.ljust(widths[0])}  {b.ljust(widths[1])}  {c.rjust(widths[2])}" for a, b, c in rows)


@contextmanager
def recording(model: Layer, shapes: dict[int, tuple[int, ...]]) -> Iterator[None]:
    """While inside, each layer's ``forward`` notes its output's shape for one example in ``shapes``."""
    layers = [layer for _, layer in model.named_layers()]

    def recorder(layer: Layer, forward: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            out = forward(*args, **kwargs)
            shapes[id(layer)] = tuple(np.shape(out)[1:])
            return out
        return recorded

    for layer in layers:
        layer.__dict__["forward"] = recorder(layer, layer.forward)
    try:
        yield
    finally:
        for layer in layers:
            layer.__dict__.pop("forward", None)


def one_line(layer: Layer) -> str:
    return repr(layer).replace("\n", " ") if not layer.children() else f"{type(layer).__name__}(...)"


def count(layer: Layer) -> int:
    return int(sum(p.size for p in layer.params.values()))
