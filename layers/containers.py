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


#: A cached merged view: the (position, key, id(array)) entries it was made from, and the dict.
View = tuple[list[tuple[int, str, int]], dict[str, Array]]


class Sequential(Layer):
    """Chains layers: forward runs them in order, backward in reverse.

    ``params``, ``grads`` and ``buffers`` are views keyed by qualified names
    such as ``"0.W"`` (``"1.0.W"`` when nested), so an optimizer can walk every
    tensor. They are cached and checked against the layers on every call, and
    each call returns a new dict, so assigning into it changes nothing: assign
    into the layer's own dict (``net[0].params["W"]``). ``layers`` is a plain list
    you may append to or assign into. An error inside a layer gets a note with
    its position.
    """

    def __init__(self, *layers: Layer) -> None:
        # No Layer.__init__: params and grads are properties over the children.
        check_layers("Sequential", list(layers))
        self.layers = list(layers)
        self.training = True
        self.views: dict[str, View] = {}

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
        return self.view("params")

    @property
    def grads(self) -> dict[str, Array]:  # type: ignore[override]
        return self.view("grads")

    @property
    def buffers(self) -> dict[str, Array]:  # type: ignore[override]
        return self.view("buffers")

    def view(self, kind: str) -> dict[str, Array]:
        """The layers' ``kind`` dicts (params, grads or buffers) merged under "position.key" names.

        The merged dict is cached and checked on every call against (position, key, id(array)) for every
        entry, so replacing, adding or removing a layer, adding or renaming a key, or rebinding an array
        makes a new one; the cached dict keeps its arrays alive, so no id can be reused while it is cached.
        Each caller gets its own copy.
        """
        key = [(i, k, id(v)) for i, layer in enumerate(self.layers) for k, v in getattr(layer, kind).items()]
        hit = self.views.get(kind)
        if hit is None or hit[0] != key:
            merged = {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in getattr(layer, kind).items()}
            hit = self.views[kind] = (key, merged)
        return hit[1].copy()

    def forward(self, x: Array) -> Array:
        layer = None
        try:
            for layer in self.layers:
                x = layer.forward(x)
        except (ValueError, TypeError, RuntimeError) as e:
            self.note_position(e, layer, "forward")
            raise
        return x

    def backward(self, dout: Array) -> Array | None:
        """Backward through every layer in reverse; with ``input_grad`` False the first layer may skip dx."""
        if not self.layers:
            return dout
        first, layer = self.layers[0], None
        try:
            for layer in self.layers[:0:-1]:
                dout = layer.backward(dout)
            layer = first
            if self.input_grad or not first.input_grad:
                return first.backward(dout)
            first.input_grad = False
            try:
                return first.backward(dout)
            finally:
                first.input_grad = True
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
