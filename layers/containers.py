"""Sequential: a chain of layers, itself a Layer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .base import Array, Layer


def add_note(error: BaseException, note: str) -> None:
    """Attach ``note`` to ``error`` (shown under the message in tracebacks) on Python >= 3.11."""
    if hasattr(error, "add_note"):
        error.add_note(note)


def check_layers(owner: str, layers: list[Layer]) -> None:
    """Every item a Layer instance, and no instance twice (one instance is one position)."""
    seen: set[int] = set()
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"{owner}: item {i} is a {type(layer).__name__}, not a Layer instance")
        if id(layer) in seen:
            raise ValueError(f"{owner}: item {i} ({layer!r}) appears twice; create a new instance per position")
        seen.add(id(layer))


def check_kept_dtype(layer: Layer, x: Any, out: Any) -> None:
    """A layer computes in its input's floating dtype: a float32 input that came out float64 (a float64 constant
    in a user layer, say) is a TypeError naming that layer, not an error at the next one."""
    before, after = getattr(x, "dtype", None), getattr(out, "dtype", None)
    if before is not None and after is not None and before != after and before.kind == after.kind == "f":
        raise TypeError(f"{layer!r} turned {before} input into {after} output; a layer computes in its input's "
                        f"dtype: write its constants as x.dtype.type(c), or cast its result with .astype(x.dtype)")


class Sequential(Layer):
    """Chains layers: forward runs them in order, backward in reverse.

    ``params``, ``grads`` and ``buffers`` merge the layers' arrays under qualified
    names such as ``"0.W"`` (``"1.fc.W"`` for a block's sub-layer), so an optimizer
    can walk every tensor. ``layers`` is a plain list you may append to or assign
    into. An error inside a layer gets a note with its position.
    """

    def __init__(self, *layers: Layer) -> None:
        super().__init__()
        check_layers("Sequential", list(layers))
        self.layers = list(layers)

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}) {layer!r}".replace("\n", "\n  ") for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)" if inner else "Sequential()"

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Layer:
        return self.layers[index]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def children(self) -> list[tuple[str, Layer]]:
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def structure(self) -> list[Layer]:
        return self.layers

    def forward(self, x: Array) -> Array:
        layer = None
        try:
            for layer in self.layers:
                out = layer.forward(x)
                check_kept_dtype(layer, x, out)
                x = out
        except (ValueError, TypeError, RuntimeError) as e:
            self.note_position(e, layer, "forward")
            raise
        return x

    def backward(self, dout: Array) -> Array:
        return self.backward_through(dout, input_grad=True)

    def backward_params(self, dout: Array) -> None:
        """Backward through every layer, the first one without its input gradient."""
        self.backward_through(dout, input_grad=False)

    def backward_through(self, dout: Array, input_grad: bool) -> Any:
        """Backward in reverse order; the first layer computes dx only when ``input_grad`` is True."""
        if not self.layers:
            return dout
        layer = None
        try:
            for layer in self.layers[:0:-1]:
                dout = layer.backward(dout)
            layer = self.layers[0]
            return layer.backward(dout) if input_grad else layer.backward_params(dout)
        except (ValueError, TypeError, RuntimeError) as e:
            self.note_position(e, layer, "backward")
            raise

    def note_position(self, error: BaseException, layer: Layer | None, method: str) -> None:
        """Say in ``error`` which position of the chain raised it."""
        i = next(i for i, item in enumerate(self.layers) if item is layer)
        add_note(error, f"in layer {i} ({layer!r}) of Sequential.{method}")

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        from .activations import Tanh
        from .affine import Affine

        net = cls(Affine(6, 5, rng=rng, dtype=np.float64), Tanh(), Affine(5, 4, rng=rng, dtype=np.float64))
        return net, (rng.standard_normal((batch, 2, 3)),)
