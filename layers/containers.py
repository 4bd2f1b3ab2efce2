"""Sequential: a chain of layers, itself a Layer."""

from __future__ import annotations

from collections.abc import Iterator

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


class Sequential(Layer):
    """Chains layers: forward runs them in order, backward in reverse.

    ``params`` and ``grads`` are views keyed by qualified names such as
    ``"0.W"`` (``"1.0.W"`` when nested), so an optimizer can walk every tensor.
    An error inside a layer gets a note with its position.
    """

    def __init__(self, *layers: Layer) -> None:
        # No Layer.__init__: params and grads are properties over the children.
        check_layers("Sequential", list(layers))
        self.layers = list(layers)
        self.training = True

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

    @property
    def params(self) -> dict[str, Array]:  # type: ignore[override]
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()}

    @property
    def grads(self) -> dict[str, Array]:  # type: ignore[override]
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()}

    @property
    def buffers(self) -> dict[str, Array]:  # type: ignore[override]
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.buffers.items()}

    def forward(self, x: Array) -> Array:
        for i, layer in enumerate(self.layers):
            try:
                x = layer.forward(x)
            except (ValueError, TypeError, RuntimeError) as e:
                add_note(e, f"in layer {i} ({layer!r}) of Sequential.forward")
                raise
        return x

    def backward(self, dout: Array) -> Array | None:
        """Backward through every layer in reverse; with ``input_grad`` False the first layer may skip dx."""
        first = self.layers[0] if self.layers else self
        first_flag = first.input_grad
        first.input_grad = first_flag and self.input_grad
        try:
            for i in range(len(self.layers) - 1, -1, -1):
                layer = self.layers[i]
                try:
                    dout = layer.backward(dout)
                except (ValueError, TypeError, RuntimeError) as e:
                    add_note(e, f"in layer {i} ({layer!r}) of Sequential.backward")
                    raise
        finally:
            first.input_grad = first_flag
        return dout

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        from .activations import Tanh
        from .affine import Affine

        net = cls(Affine(6, 5, rng=rng, dtype=np.float64), Tanh(), Affine(5, 4, rng=rng, dtype=np.float64))
        return net, (rng.standard_normal((batch, 2, 3)),)
