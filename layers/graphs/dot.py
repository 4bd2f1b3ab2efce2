"""Pictures of a Graph: Graphviz DOT text, rendered through the graphviz package or the dot program."""

from __future__ import annotations

import html
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .graph import Graph

SYMBOLS = {"Add": "+", "Mul": "*", "Max": "max", "Exp": "exp", "Reciprocal": "1/x", "Square": "x²",
           "Sum": "Σ", "MatMul": "@", "Sigmoid": "σ", "ReLU": "max(0,·)"}


def summary(value: np.ndarray) -> str:
    """Two decimals for a scalar, the elements for up to 3, else shape, mean and range."""
    v = np.asarray(value)
    if v.size == 1:
        return f"{float(v.reshape(-1)[0]):.2f}"
    if v.size <= 3:
        return "[" + ", ".join(f"{x:.2f}" for x in v.reshape(-1)) + "]"
    return f"{v.shape} mean {v.mean():.2f} in [{v.min():.2f}, {v.max():.2f}]"


def edge_label(value: np.ndarray | None, grad: np.ndarray | None) -> str:
    parts = []
    if value is not None:
        parts.append(f'<font color="darkgreen">{html.escape(summary(value))}</font>')
    if grad is not None:
        parts.append(f'<font color="red">{html.escape(summary(grad))}</font>')
    return f"<{'<br/>'.join(parts)}>" if parts else '""'


def node_label(name: str, layer: object) -> str:
    kind = type(layer).__name__
    symbol = SYMBOLS.get(kind, repr(layer))
    if kind == "Scale":
        symbol = f"*{layer.c:g}"  # type: ignore[attr-defined]
    elif kind == "AddConst":
        symbol = f"+{layer.c:g}"  # type: ignore[attr-defined]
    return f"{name}\\n{symbol}" if symbol != name else name


def graph_to_dot(graph: Graph) -> str:
    quote = '"{}"'.format
    lines = ["digraph chainrule {", "  rankdir=LR;", '  node [shape=box, style=rounded, fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=10];']
    for name in graph.input_names:
        lines.append(f"  {quote(name)} [shape=plaintext];")
    for name, (layer, _) in graph.nodes.items():
        lines.append(f'  {quote(name)} [label="{node_label(name, layer)}"];')
    for name, (_, sources) in graph.nodes.items():
        for i, source in enumerate(sources):
            label = edge_label(graph.values.get(source), graph.edge_grads.get((name, i)))
            lines.append(f"  {quote(source)} -> {quote(name)} [label={label}];")
    if graph.nodes:
        out = graph.output
        lines.append('  "output" [shape=plaintext, label=""];')
        grad = graph.value_grads.get(out) if graph.value_grads else None
        lines.append(f'  {quote(out)} -> "output" [label={edge_label(graph.values.get(out), grad)}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot: str, path: str) -> str:
    """Render DOT text to ``path``; the format comes from its suffix (svg, png, pdf)."""
    fmt = Path(path).suffix.lstrip(".").lower()
    if fmt not in ("svg", "png", "pdf"):
        raise ValueError(f"Graph.render: expected a .svg, .png or .pdf path, got {path!r}")
    data = None
    try:
        import graphviz

        data = graphviz.Source(dot).pipe(format=fmt)
    except ImportError:
        pass
    except Exception as e:  # the package is there but Graphviz's dot program is not
        if type(e).__name__ != "ExecutableNotFound":
            raise
    if data is None and shutil.which("dot"):
        data = subprocess.run(["dot", f"-T{fmt}"], input=dot.encode(), capture_output=True, check=True).stdout
    if data is None:
        raise RuntimeError(
            f"Graph.render: cannot write {path!r}: Graphviz's dot program was not found. Install Graphviz "
            "(e.g. apt-get install graphviz) and optionally pip install -e '.[viz]', or save Graph.to_dot() "
            "to a .dot file and render it elsewhere")
    Path(path).write_bytes(data)
    return path
