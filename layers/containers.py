"""Containers, each itself a Layer: Sequential (a chain), Residual (layers plus a shortcut) and Parallel
(branches over one input, concatenated or added)."""

from __future__ import annotations

from collections.abc import Iterator
from reprlib import recursive_repr
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


class CycleError(ValueError):
    """A container that holds itself: forward, the walk and the repr would never end."""


def listing(head: str, items: list[tuple[str, Layer]]) -> str:
    """``head(`` with each (name, layer) on its own line, nested ones indented, then ``)``."""
    lines = "".join(f"\n  ({name}) " + repr(layer).replace("\n", "\n  ") for name, layer in items)
    return f"{head}({lines}\n)" if items else f"{head}()"


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

    layer_lists = ("layers",)  # the config keys that hold lists of layer tables

    def __init__(self, *layers: Layer) -> None:
        super().__init__()
        check_layers("Sequential", list(layers))
        self.layers = list(layers)

    @recursive_repr("Sequential(... itself ...)")
    def __repr__(self) -> str:
        return listing("Sequential", self.children())

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
        except RecursionError:
            raise CycleError(f"{type(self).__name__}: a container holds itself (directly or inside another), so "
                             "forward never ends; one instance is one place in a network") from None
        except CycleError:
            raise
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

    @classmethod
    def from_config(cls, layers: list[Layer]) -> Sequential:
        """``{ type = "Sequential", layers = [...] }`` in a config: ``Sequential(*layers)``."""
        return cls(*layers)


def chain(owner: str, layers: Layer | list[Layer] | tuple[Layer, ...]) -> Layer:
    """A layer, or a list of layers as a Sequential (an empty list: the identity)."""
    if isinstance(layers, Layer):
        return layers
    if not isinstance(layers, (list, tuple)):
        raise TypeError(f"{owner}: expected a layer or a list of layers, got {type(layers).__name__}")
    check_layers(owner, list(layers))
    return Sequential(*layers)


class Residual(Layer):
    """out = layers(x) + shortcut(x): a residual block, the shortcut the identity unless one is given.

    ``layers`` and ``shortcut`` are each a layer or a list of layers (a Sequential); a shortcut maps x to the
    layers' output shape where they change it (a 1x1 Conv2D with the layers' stride, say). Shapes: any input;
    the output has the layers' output shape. backward: dx = dlayers(dout) + dshortcut(dout) (dout itself for
    the identity). Sub-layers are named ``body`` and ``shortcut`` (``"body.0.W"``).
    """

    layer_lists = ("layers", "shortcut")  # the config keys that hold lists of layer tables

    def __init__(self, layers: list[Layer] | Layer, shortcut: list[Layer] | Layer | None = None) -> None:
        super().__init__()
        self.body = chain("Residual.layers", layers)
        if isinstance(self.body, Sequential) and not self.body.layers:
            raise ValueError("Residual: layers is empty; give the layers whose output the shortcut is added to")
        self.shortcut = None if shortcut is None else chain("Residual.shortcut", shortcut)

    @recursive_repr("Residual(... itself ...)")
    def __repr__(self) -> str:
        text = listing("Residual", self.children())
        return text if self.shortcut is not None else text[:-2] + "\n  (shortcut) identity\n)"

    def children(self) -> list[tuple[str, Layer]]:
        return [("body", self.body)] + ([("shortcut", self.shortcut)] if self.shortcut is not None else [])

    def forward(self, x: Array) -> Array:
        out = self.body.forward(x)
        skip = x if self.shortcut is None else self.shortcut.forward(x)
        if np.shape(out) != np.shape(skip):
            where = "the input (the identity shortcut)" if self.shortcut is None else "the shortcut"
            raise ValueError(f"Residual: the layers give {np.shape(out)[1:]} per example but {where} gives "
                             f"{np.shape(skip)[1:]}; "
                             + ("give a shortcut that maps the input to the layers' shape"
                                if self.shortcut is None else "make the two shapes equal"))
        return out + skip

    def backward(self, dout: Array) -> Array:
        dx = self.body.backward(dout)
        return dx + (dout if self.shortcut is None else self.shortcut.backward(dout))

    def backward_params(self, dout: Array) -> None:
        self.body.backward_params(dout)
        if self.shortcut is not None:
            self.shortcut.backward_params(dout)

    variants = 2

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3, variant: int = 0) -> tuple[Layer, tuple[Array, ...]]:
        """Variant 0: Affine-Tanh with the identity shortcut; 1: a width change with an Affine shortcut."""
        from .activations import Tanh
        from .affine import Affine

        width = 4 if variant else 3
        body = [Affine(3, width, rng=rng, dtype=np.float64), Tanh()]
        shortcut = Affine(3, width, rng=rng, dtype=np.float64) if variant else None
        return cls(body, shortcut), (rng.standard_normal((batch, 3)),)


class Parallel(Layer):
    """Branches that each read the same input, their outputs joined: ``combine="concat"`` along ``axis`` (1:
    the feature or channel axis of (N, F) and (N, C, ...); -1 for (N, T, D) sequences), or ``"add"``.

    Each branch is a layer or a list of layers (a Sequential; an empty list passes x through). Shapes: any
    input; concat: the branches' outputs equal but on ``axis``, which sums; add: all equal. backward: dout is
    split (concat) or shared (add) among the branches, whose input gradients add. Sub-layers: "0", "1", ...
    """

    layer_lists = ("branches",)

    def __init__(self, branches: list[list[Layer] | Layer], combine: str = "concat", axis: int = 1) -> None:
        super().__init__()
        if not isinstance(branches, (list, tuple)) or not branches:
            raise ValueError(f"Parallel: branches must be a non-empty list of branches, got {branches!r}")
        if combine not in ("concat", "add"):
            raise ValueError(f"Parallel: combine must be 'concat' or 'add', got {combine!r}")
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or axis == 0:
            raise ValueError(f"Parallel: axis must be a non-zero integer (0 is the batch), got {axis!r}")
        self.branches = [chain(f"Parallel.branches[{i}]", b) for i, b in enumerate(branches)]
        check_layers("Parallel", self.branches)
        self.combine, self.axis = combine, int(axis)
        self.sizes: list[int] | None = None

    @recursive_repr("Parallel(... itself ...)")
    def __repr__(self) -> str:
        return listing(f"Parallel(combine={self.combine!r}, axis={self.axis}", self.children()).replace("(\n", ",\n", 1)

    def children(self) -> list[tuple[str, Layer]]:
        return [(str(i), branch) for i, branch in enumerate(self.branches)]

    def forward(self, x: Array) -> Array:
        outs = [branch.forward(x) for branch in self.branches]
        shapes = [tuple(np.shape(o)) for o in outs]
        per_example = [s[1:] for s in shapes]
        if self.combine == "add":
            if len(set(shapes)) > 1:
                raise ValueError(f"Parallel (combine='add'): the branches give {per_example} per example; they must "
                                 "be equal")
            self.sizes = None
            return sum(outs[1:], outs[0])
        axis = self.axis % max(len(shapes[0]), 1)
        if len({len(s) for s in shapes}) > 1 or axis == 0 or \
                len({s[:axis] + s[axis + 1:] for s in shapes}) > 1:
            raise ValueError(f"Parallel (combine='concat', axis={self.axis}): the branches give {per_example} per "
                             f"example; they must be equal but on axis {self.axis}")
        self.sizes = [s[axis] for s in shapes]
        return np.concatenate(outs, axis=axis)

    def split(self, dout: Array) -> list[Array]:
        if self.combine == "add":
            return [dout] * len(self.branches)
        sizes = self.cached(self.sizes)
        return np.split(dout, np.cumsum(sizes)[:-1], axis=self.axis)

    def backward(self, dout: Array) -> Array:
        grads = [branch.backward(d) for branch, d in zip(self.branches, self.split(dout), strict=True)]
        return sum(grads[1:], grads[0])

    def backward_params(self, dout: Array) -> None:
        for branch, d in zip(self.branches, self.split(dout), strict=True):
            branch.backward_params(d)

    variants = 2

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3, variant: int = 0) -> tuple[Layer, tuple[Array, ...]]:
        """Variant 0: two branches of 2 and 4 features concatenated, one an identity; 1: two added."""
        from .activations import Tanh
        from .affine import Affine

        if variant == 0:
            branches: list[Any] = [[Affine(3, 2, rng=rng, dtype=np.float64)], [Affine(3, 4, rng=rng, dtype=np.float64),
                                                                               Tanh()], []]
            return cls(branches), (rng.standard_normal((batch, 3)),)
        branches = [Affine(3, 4, rng=rng, dtype=np.float64), [Tanh(), Affine(3, 4, rng=rng, dtype=np.float64)]]
        return cls(branches, combine="add"), (rng.standard_normal((batch, 3)),)
