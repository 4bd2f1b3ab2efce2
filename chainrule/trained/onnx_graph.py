"""The ONNX graph an export builds, and the checks on a user layer's ``to_onnx`` hook: what it returns must name
its output, it may only use ONNX's operators, and an error inside it is one line naming the layer."""

from __future__ import annotations

from typing import Any

import numpy as np

HOOK = "to_onnx(self, graph, x)"


def onnx_modules() -> Any:
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ImportError("export needs the onnx package: pip install -e '.[onnx]'") from None
    return onnx, helper, numpy_helper


class OnnxGraph:
    """The graph being built: constants (float32) and operators, each output named uniquely."""

    def __init__(self, opset: int) -> None:
        self.opset = opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.count = 0

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, array: Any, hint: str = "const") -> str:
        """A constant (floating arrays as float32, integers as int64); returns its name."""
        _, _, numpy_helper = onnx_modules()
        value = np.asarray(array)
        value = value.astype(np.float32) if value.dtype.kind == "f" else value.astype(np.int64)
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op_type: str, inputs: list[str], **attributes: Any) -> str:
        """An operator on ``inputs``; returns the name of its (first) output."""
        _, helper, _ = onnx_modules()
        out = self.fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attributes))
        return out


def user_hook(graph: OnnxGraph, layer: Any, hook: Any, inputs: tuple[str, ...]) -> str:
    """``layer.to_onnx(graph, *inputs)``, checked: a ValueError naming the layer when it raises, returns anything
    but the name of a value in the graph, or adds an operator ONNX does not have."""
    onnx, _, _ = onnx_modules()
    name, before = type(layer).__name__, len(graph.nodes)
    try:
        out = hook(graph, *inputs)
    except Exception as e:  # the user's code: any error, said in one line with the layer's name
        raise ValueError(f"export: {name}.to_onnx raised {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                         ) from None
    unknown = sorted({n.op_type for n in graph.nodes[before:] if not onnx.defs.has(n.op_type)})
    if unknown:
        raise ValueError(f"export: {name}.to_onnx used {', '.join(map(repr, unknown))}, which ONNX has no operator "
                         "for (see onnx.ai's operator list)")
    known = set(inputs) | {o for n in graph.nodes for o in n.output} | {i.name for i in graph.initializers}
    if not isinstance(out, str) or out not in known:
        raise ValueError(f"export: {name}.to_onnx returned {out!r}; it must return the name of its output, as "
                         "graph.node(...) gives it")
    return out
