"""Graph: gates and layers wired into a directed acyclic graph by naming nodes and their inputs.

Values flow forward through the nodes in topological order; gradients flow back
in reverse by the chain rule, and where a value feeds several nodes its
gradients add ("gradients add at branches").
"""

from __future__ import annotations

import graphlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..base import Array, Layer, as_float_array
from ..containers import add_note


class Graph(Layer):
    """A DAG of layers with named inputs and one output; itself a Layer.

    Build it incrementally, ``g = Graph(["x", "y", "z"]); g.add("q", Add(), "x", "y"); g.add("f", Mul(), "q", "z")``,
    or at once, ``Graph(inputs, nodes={"f": (Mul(), ("q", "z")), "q": (Add(), ("x", "y"))}, output="f")``
    (any order; a cycle is an error). The output is ``output`` or the last node added.

    ``forward(*args, **inputs)`` takes the inputs by position or name and returns the output;
    ``backward(dout=None)`` (ones by default) returns the input gradients, a tuple in input
    order (the array itself for one input). ``value(name)`` and ``grad(name)`` read any
    node's value and gradient; ``params``/``grads`` are keyed ``"node.W"``.
    Caches every node's value (for the picture) and every edge's gradient.
    """

    def __init__(
        self,
        inputs: Sequence[str],
        nodes: Mapping[str, tuple[Layer, Sequence[str]]] | None = None,
        output: str | None = None,
    ) -> None:
        super().__init__()
        self.input_names = tuple(inputs)
        for name in self.input_names:
            self.check_name(name)
        if len(set(self.input_names)) != len(self.input_names):
            raise ValueError(f"Graph: input names repeat: {self.input_names}")
        self.nodes: dict[str, tuple[Layer, tuple[str, ...]]] = {}
        self.output_name = output
        self.values: dict[str, Array] = {}
        self.value_grads: dict[str, Array] = {}
        self.edge_grads: dict[tuple[str, int], Array] = {}
        if nodes:
            for name in self.topological_order(nodes):
                layer, node_inputs = nodes[name]
                self.add(name, layer, *node_inputs)

    def topological_order(self, nodes: Mapping[str, tuple[Layer, Sequence[str]]]) -> list[str]:
        known = set(self.input_names) | set(nodes)
        for name, (_, node_inputs) in nodes.items():
            for source in node_inputs:
                if source not in known:
                    raise ValueError(f"Graph: node {name!r} has unknown input {source!r}; "
                                     f"known: {', '.join(sorted(known))}")
        deps = {name: [s for s in node_inputs if s in nodes] for name, (_, node_inputs) in nodes.items()}
        try:
            return list(graphlib.TopologicalSorter(deps).static_order())
        except graphlib.CycleError as e:
            cycle = " -> ".join(map(repr, e.args[1]))
            raise ValueError(f"Graph: cycle through nodes {cycle}") from None

    def check_name(self, name: str) -> None:
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"Graph: names must be non-empty strings without '.', got {name!r}")

    def add(self, name: str, layer: Layer, *inputs: str) -> Graph:
        """Add node ``name`` computing ``layer.forward(*inputs)``; inputs name graph inputs or earlier nodes."""
        self.check_name(name)
        if name in self.nodes or name in self.input_names:
            raise ValueError(f"Graph: name {name!r} is already used")
        if not isinstance(layer, Layer):
            raise TypeError(f"Graph: node {name!r} needs a Layer instance, got {type(layer).__name__}")
        if any(layer is other for other, _ in self.nodes.values()):
            raise ValueError(f"Graph: node {name!r} reuses the layer instance {layer!r}; create one per node")
        if not inputs:
            raise ValueError(f"Graph: node {name!r} needs at least one input")
        for source in inputs:
            if source not in self.nodes and source not in self.input_names:
                raise ValueError(f"Graph: node {name!r} uses {source!r} before it is defined; "
                                 f"defined so far: {', '.join([*self.input_names, *self.nodes])}")
        self.nodes[name] = (layer, tuple(inputs))
        return self

    @property
    def output(self) -> str:
        if not self.nodes:
            raise RuntimeError("Graph: no nodes yet; add one with Graph.add")
        return self.output_name if self.output_name is not None else next(reversed(self.nodes))

    def __repr__(self) -> str:
        return f"Graph(inputs={list(self.input_names)}, nodes={list(self.nodes)}, output={self.output!r})"

    def children(self) -> list[tuple[str, Layer]]:
        return [(name, layer) for name, (layer, _) in self.nodes.items()]

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Array]:
        if len(args) > len(self.input_names):
            raise ValueError(f"Graph: got {len(args)} inputs, expected {len(self.input_names)} "
                             f"({', '.join(self.input_names)})")
        given = dict(zip(self.input_names, args, strict=False))
        for key, value in kwargs.items():
            if key not in self.input_names:
                raise ValueError(f"Graph: unknown input {key!r}; inputs: {', '.join(self.input_names)}")
            if key in given:
                raise ValueError(f"Graph: input {key!r} given twice")
            given[key] = value
        missing = [n for n in self.input_names if n not in given]
        if missing:
            raise ValueError(f"Graph: missing input {missing[0]!r} at forward; inputs: {', '.join(self.input_names)}")
        return {k: as_float_array(self, v, k) for k, v in given.items()}

    def forward(self, *args: Array, **inputs: Array) -> Array:
        values = self.bind(args, inputs)
        output = self.output
        for name, (layer, sources) in self.nodes.items():
            try:
                values[name] = layer.forward(*(values[s] for s in sources))
            except (ValueError, TypeError, RuntimeError) as e:
                add_note(e, f"in node {name!r} ({layer!r}) of the Graph")
                raise
        self.values, self.value_grads, self.edge_grads = values, {}, {}
        return values[output]

    def backward(self, dout: Any = None) -> Any:
        if not self.values:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        out = self.values[self.output]
        grads = {self.output: np.ones_like(out) if dout is None else np.asarray(dout, dtype=out.dtype)}
        self.edge_grads = {}
        for name in reversed(self.nodes):
            layer, sources = self.nodes[name]
            if name not in grads:  # does not reach the output: its parameters get zero gradients
                for g in layer.grads.values():
                    g[...] = 0
                continue
            try:
                local = layer.backward(grads[name])
            except (ValueError, TypeError, RuntimeError) as e:
                add_note(e, f"in node {name!r} ({layer!r}) of the Graph")
                raise
            local = local if isinstance(local, tuple) else (local,)
            for i, (source, g) in enumerate(zip(sources, local, strict=True)):
                self.edge_grads[(name, i)] = g
                grads[source] = grads[source] + g if source in grads else g  # gradients add at branches
        self.value_grads = grads
        result = tuple(grads[n] if n in grads else np.zeros_like(self.values[n]) for n in self.input_names)
        return result[0] if len(result) == 1 else result

    def value(self, name: str) -> Array:
        """The forward value of an input or node."""
        return self.values[name]

    def grad(self, name: str) -> Array:
        """d output / d value(name), after backward (zeros where the value does not reach the output)."""
        if not self.value_grads:
            raise RuntimeError(f"{self!r}: grad() needs backward() first")
        return self.value_grads.get(name, np.zeros_like(self.values[name]))

    def to_dot(self) -> str:
        """Graphviz DOT text: values above each edge (green), gradients below (red) after backward."""
        from .dot import graph_to_dot

        return graph_to_dot(self)

    def render(self, path: str) -> str:
        """Write the picture to ``path`` (.svg, .png or .pdf) with Graphviz; returns the path."""
        from .dot import render

        return render(self.to_dot(), path)

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        """A graph with fan-out (x feeds three nodes, a feeds two) and parameters."""
        from ..activations import Sigmoid, Tanh
        from ..affine import Affine
        from .gates import Add, Mul

        g = cls(["x"])
        g.add("h", Affine(4, 4, rng=rng, dtype=np.float64), "x")
        g.add("a", Tanh(), "x")
        g.add("m", Mul(), "h", "a")
        g.add("s", Add(), "m", "a")
        g.add("p", Mul(), "s", "x")
        g.add("out", Sigmoid(), "p")
        return g, (rng.standard_normal((batch, 4)),)
