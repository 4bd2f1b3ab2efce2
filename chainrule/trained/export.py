"""ONNX export of a trained model: ``chainrule export RUN_DIR`` and ``TrainedModel.to_onnx(path)``.

The exported graph takes raw inputs as ``TrainedModel.predict`` does: one float32 input named ``input`` (int64
indices for a character model) with a dynamic batch dimension, the run's standardization first, then the network,
and two outputs, ``scores`` and ``probabilities`` (their softmax); it passes ``onnx.checker.check_model(model,
full_check=True)``. Recurrent layers become ONNX's own RNN, GRU and LSTM operators, with the gates reordered.

Each built-in layer maps to standard ONNX operators (``EXPORTERS``). A layer of your own exports when it defines
``to_onnx(self, graph, x)``: ``x`` is its input's name in the graph, ``graph.const(array)`` adds a constant and
returns its name, ``graph.node(op_type, inputs, **attributes)`` adds an operator and returns its output's name, and
the method returns its output's name. Needs the extra ``onnx`` (``pip install -e '.[onnx]'``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.files import atomic_write
from layers import (
    ELU,
    GELU,
    GRU,
    LSTM,
    RNN,
    Add,
    AddConst,
    Affine,
    AvgPool1D,
    AvgPool2D,
    BatchNorm,
    Conv1D,
    Conv2D,
    Dropout,
    Embedding,
    Exp,
    Flatten,
    GlobalAvgPool,
    GroupNorm,
    Layer,
    LayerNorm,
    LeakyReLU,
    MatMul,
    Max,
    Maxout,
    MaxPool1D,
    MaxPool2D,
    Mul,
    MultiHeadAttention,
    Parallel,
    PositionalEmbedding,
    Reciprocal,
    ReLU,
    Reshape,
    Residual,
    Scale,
    Sequential,
    Sigmoid,
    SinusoidalPositionalEncoding,
    Softmax,
    Square,
    Sum,
    Tanh,
    TemporalAffine,
    TransformerBlock,
    Transpose,
)
from layers import Graph as LayerGraph

from .onnx_graph import HOOK, OnnxGraph, onnx_modules, user_hook

OPSETS = range(17, 22)


def export_layer(graph: OnnxGraph, layer: Layer, *inputs: str) -> str:
    """The layer's operators on its inputs (one name; two for a two-input gate): its own ``to_onnx`` hook, or
    the built-in exporter of its class."""
    hook = getattr(layer, "to_onnx", None)
    if callable(hook):
        return user_hook(graph, layer, hook, inputs)
    exporter = EXPORTERS.get(type(layer))
    if exporter is None:
        raise ValueError(f"export: {type(layer).__name__} has no ONNX export: define {HOOK} on it (see "
                         "chainrule/trained/export.py), or use layers that have one")
    return exporter(graph, layer, *inputs)


def computational_graph(graph: OnnxGraph, layer: LayerGraph, *inputs: str) -> str:
    """A Graph of gates and layers: each node's operators on its inputs' names, in the Graph's order."""
    names = dict(zip(layer.input_names, inputs, strict=True))
    for name, (node, sources) in layer.nodes.items():
        names[name] = export_layer(graph, node, *(names[s] for s in sources))
    return names[layer.output]


def gate(op: str) -> Callable[..., str]:
    return lambda graph, layer, *inputs: graph.node(op, list(inputs))


def reduce_sum(graph: OnnxGraph, layer: Sum, x: str) -> str:
    if layer.axis is None:
        return graph.node("ReduceSum", [x], keepdims=0)
    return graph.node("ReduceSum", [x, graph.const(np.array([layer.axis]), "axes")], keepdims=0)


def sequential(graph: OnnxGraph, layer: Sequential, x: str) -> str:
    return functools.reduce(lambda name, inner: export_layer(graph, inner, name), layer.layers, x)


def residual(graph: OnnxGraph, layer: Residual, x: str) -> str:
    return graph.node("Add", [export_layer(graph, layer.body, x), x if layer.shortcut is None else
                              export_layer(graph, layer.shortcut, x)])


def parallel(graph: OnnxGraph, layer: Parallel, x: str) -> str:
    outs = [export_layer(graph, branch, x) for branch in layer.branches]
    if layer.combine == "concat":
        return graph.node("Concat", outs, axis=layer.axis)
    return functools.reduce(lambda a, b: graph.node("Add", [a, b]), outs)


def affine(graph: OnnxGraph, layer: Affine, x: str) -> str:
    flat = graph.node("Flatten", [x], axis=1)  # Affine flattens (N, d1, ..., dk) to (N, D); a no-op on (N, D)
    return graph.node("Gemm", [flat, graph.const(layer.params["W"], "W"), graph.const(layer.params["b"], "b")])


def maxout(graph: OnnxGraph, layer: Maxout, x: str) -> str:
    z = graph.node("Gemm", [graph.node("Flatten", [x], axis=1), graph.const(layer.params["W"], "W"),
                            graph.const(layer.params["b"], "b")])
    pieces = graph.node("Reshape", [z, graph.const(np.array([0, layer.pieces, layer.out_features]), "shape")])
    if graph.opset >= 18:
        return graph.node("ReduceMax", [pieces, graph.const(np.array([1]), "axes")], keepdims=0)
    return graph.node("ReduceMax", [pieces], axes=[1], keepdims=0)


def batch_norm(graph: OnnxGraph, layer: BatchNorm, x: str) -> str:
    p, b = layer.params, layer.buffers
    return graph.node("BatchNormalization", [x, graph.const(p["gamma"]), graph.const(p["beta"]),
                                             graph.const(b["running_mean"]), graph.const(b["running_var"])],
                      epsilon=layer.eps)


def group_norm(graph: OnnxGraph, layer: GroupNorm, x: str) -> str:
    """Written out (GroupNormalization changed its meaning between opsets 18 and 21): the input as (N, G, -1),
    its mean and variance per group, normalized, as (N, C, -1) for the per-channel scale and shift, and back to
    its own shape."""
    grouped = graph.node("Reshape", [x, graph.const(np.array([0, layer.num_groups, -1]), "groups")])

    def mean(v: str) -> str:
        if graph.opset >= 18:
            return graph.node("ReduceMean", [v, graph.const(np.array([2]), "axes")], keepdims=1)
        return graph.node("ReduceMean", [v], axes=[2], keepdims=1)

    centred = graph.node("Sub", [grouped, mean(grouped)])
    variance = mean(graph.node("Mul", [centred, centred]))
    std = graph.node("Sqrt", [graph.node("Add", [variance, graph.const(np.float32(layer.eps), "eps")])])
    channels = graph.node("Reshape", [graph.node("Div", [centred, std]),
                                      graph.const(np.array([0, layer.num_channels, -1]), "channels")])
    gamma, beta = (graph.const(layer.params[k].reshape(-1, 1), k) for k in ("gamma", "beta"))
    out = graph.node("Add", [graph.node("Mul", [channels, gamma]), beta])
    return graph.node("Reshape", [out, graph.node("Shape", [x])])


def layer_norm(graph: OnnxGraph, layer: LayerNorm, x: str) -> str:
    return graph.node("LayerNormalization", [x, graph.const(layer.params["gamma"]), graph.const(layer.params["beta"])],
                      axis=-1, epsilon=layer.eps)


def conv(graph: OnnxGraph, layer: Any, x: str) -> str:
    g = layer.geometry
    inputs = [x, graph.const(layer.params["W"], "W")] + ([graph.const(layer.params["b"], "b")]
                                                         if "b" in layer.params else [])
    return graph.node("Conv", inputs, kernel_shape=list(g.kernel), strides=list(g.stride),
                      pads=list(g.padding) * 2, dilations=list(g.dilation), group=layer.groups)


def pool(op: str, **extra: Any) -> Callable[[OnnxGraph, Any, str], str]:
    def export(graph: OnnxGraph, layer: Any, x: str) -> str:
        g = layer.geometry
        return graph.node(op, [x], kernel_shape=list(g.kernel), strides=list(g.stride), pads=list(g.padding) * 2,
                          **extra)
    return export


def reshape(graph: OnnxGraph, layer: Reshape, x: str) -> str:
    return graph.node("Reshape", [x, graph.const(np.array([0, *layer.shape]), "shape")])


def squeeze(graph: OnnxGraph, x: str, axis: int) -> str:
    return graph.node("Squeeze", [x, graph.const(np.array([axis]), "axes")])


def recurrent(graph: OnnxGraph, layer: Any, x: str) -> str:
    """ONNX's own RNN, GRU and LSTM operators, time first (a Transpose each side), with the gate blocks put in
    ONNX's orders (GRU: z, r, h with linear_before_reset = 1, PyTorch's and chainrule's equations; LSTM: i, o, f,
    c against chainrule's i, f, o, g) and the weights transposed (ONNX keeps W (gates, D), chainrule x @ W)."""
    H, p = layer.hidden_size, layer.params
    blocks = lambda a, order: np.concatenate([a[..., k * H:(k + 1) * H] for k in order], axis=-1)  # noqa: E731
    order: tuple[int, ...]
    extra: dict[str, Any]
    if isinstance(layer, GRU):
        op, order, extra = "GRU", (1, 0, 2), {"linear_before_reset": 1}
        bias = np.concatenate([blocks(p["bx"], order), blocks(p["bh"], order)])
    elif isinstance(layer, LSTM):
        op, order, extra = "LSTM", (0, 2, 1, 3), {}
        bias = np.concatenate([blocks(p["b"], order), np.zeros(4 * H)])
    else:
        op, order, extra = "RNN", (0,), {"activations": ["Tanh" if layer.nonlinearity == "tanh" else "Relu"]}
        bias = np.concatenate([p["b"], np.zeros(H)])
    W, R = blocks(p["Wx"], order).T[None], blocks(p["Wh"], order).T[None]
    time_first = graph.node("Transpose", [x], perm=[1, 0, 2])
    _, helper, _ = onnx_modules()
    Y, Y_h = graph.fresh(op.lower() + "_y"), graph.fresh(op.lower() + "_h")
    graph.nodes.append(helper.make_node(op, [time_first, graph.const(W, "W"), graph.const(R, "R"),
                                             graph.const(bias[None], "B")], [Y, Y_h], hidden_size=H, **extra))
    if layer.return_sequences:  # Y: (T, 1, N, H)
        return graph.node("Transpose", [squeeze(graph, Y, 1)], perm=[1, 0, 2])
    return squeeze(graph, Y_h, 0)  # Y_h: (1, N, H)


def activation(op: str, **attributes: Callable[[Any], Any]) -> Callable[[OnnxGraph, Any, str], str]:
    def export(graph: OnnxGraph, layer: Any, x: str) -> str:
        return graph.node(op, [x], **{k: float(get(layer)) for k, get in attributes.items()})
    return export


def gelu(graph: OnnxGraph, layer: GELU, x: str) -> str:
    """x/2 (1 + erf(x / sqrt 2)), or the tanh approximation x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    if layer.approximate == "tanh":
        cube = graph.node("Mul", [graph.node("Mul", [x, x]), x])
        inner = graph.node("Add", [x, graph.node("Mul", [cube, graph.const(np.float32(0.044715))])])
        core = graph.node("Tanh", [graph.node("Mul", [inner, graph.const(np.float32(np.sqrt(2 / np.pi)))])])
    else:
        core = graph.node("Erf", [graph.node("Div", [x, graph.const(np.float32(np.sqrt(2)))])])
    half = graph.node("Mul", [x, graph.const(np.float32(0.5))])
    return graph.node("Mul", [half, graph.node("Add", [core, graph.const(np.float32(1))])])


def steps_of(graph: OnnxGraph, x: str) -> str:
    """T, axis 1 of x's shape, as a one-element int64 tensor: the sequence length, dynamic."""
    one, two = graph.const(np.array([1]), "one"), graph.const(np.array([2]), "two")
    return graph.node("Slice", [graph.node("Shape", [x]), one, two])


def positions(graph: OnnxGraph, table: Any, x: str) -> str:
    """x + table[:T], T read from x."""
    zero = graph.const(np.array([0]), "zero")
    return graph.node("Add", [x, graph.node("Slice", [graph.const(table, "P"), zero, steps_of(graph, x), zero])])


def attention(graph: OnnxGraph, layer: MultiHeadAttention, x: str) -> str:
    """The head's graph in ONNX operators: one product for q, k and v, heads split by Reshape and Transpose,
    the scaled scores (plus -1e9 above the diagonal, from Trilu on a T x T matrix, when causal), Softmax, the
    weighted sum, the heads merged, the output product. The sequence length stays dynamic."""
    D, H, p = layer.embed_dim, layer.num_heads, layer.params
    qkv = graph.node("MatMul", [x, graph.const(p["W_qkv"], "W_qkv")])
    if layer.bias:
        qkv = graph.node("Add", [qkv, graph.const(p["b_qkv"], "b_qkv")])
    split = graph.const(np.array([0, 0, H, D // H]), "heads")
    q, k, v = (graph.node("Reshape", [graph.node("Slice", [qkv, graph.const(np.array([i * D])), graph.const(
        np.array([(i + 1) * D])), graph.const(np.array([2]))]), split]) for i in range(3))
    q, v = (graph.node("Transpose", [t], perm=[0, 2, 1, 3]) for t in (q, v))
    scores = graph.node("Mul", [graph.node("MatMul", [q, graph.node("Transpose", [k], perm=[0, 2, 3, 1])]),
                                graph.const(np.float32(1 / np.sqrt(D // H)), "scale")])
    if layer.causal:
        T = steps_of(graph, x)
        onnx, helper, _ = onnx_modules()
        ones = graph.node("ConstantOfShape", [graph.node("Concat", [T, T], axis=0)],
                          value=helper.make_tensor("one", onnx.TensorProto.FLOAT, [1], [1.0]))
        above = graph.node("Trilu", [ones, graph.const(np.array(1), "k")], upper=1)
        scores = graph.node("Add", [scores, graph.node("Mul", [above, graph.const(np.float32(-1e9), "masked")])])
    context = graph.node("MatMul", [graph.node("Softmax", [scores], axis=-1), v])
    merged = graph.node("Reshape", [graph.node("Transpose", [context], perm=[0, 2, 1, 3]),
                                    graph.const(np.array([0, 0, D]), "merge")])
    out = graph.node("MatMul", [merged, graph.const(p["W_out"], "W_out")])
    return graph.node("Add", [out, graph.const(p["b_out"], "b_out")]) if layer.bias else out


def transformer_block(graph: OnnxGraph, layer: TransformerBlock, x: str) -> str:
    """h = x + attn(ln1(x)); out = h + fc2(gelu(fc1(ln2(h)))) (dropout is the identity at inference)."""
    h = graph.node("Add", [x, export_layer(graph, layer.attn, export_layer(graph, layer.ln1, x))])
    inner = export_layer(graph, layer.gelu, export_layer(graph, layer.fc1, export_layer(graph, layer.ln2, h)))
    return graph.node("Add", [h, export_layer(graph, layer.fc2, inner)])


EXPORTERS: dict[type, Callable[..., str]] = {
    Sequential: sequential, Residual: residual, Parallel: parallel, Affine: affine, Maxout: maxout,
    BatchNorm: batch_norm, LayerNorm: layer_norm, GroupNorm: group_norm,
    Conv1D: conv, Conv2D: conv, MaxPool1D: pool("MaxPool"), MaxPool2D: pool("MaxPool"),
    AvgPool1D: pool("AveragePool", count_include_pad=1), AvgPool2D: pool("AveragePool", count_include_pad=1),
    GlobalAvgPool: lambda graph, layer, x: graph.node("Flatten", [graph.node("GlobalAveragePool", [x])], axis=1),
    Flatten: lambda graph, layer, x: graph.node("Flatten", [x], axis=1), Reshape: reshape,
    Dropout: lambda graph, layer, x: x,  # the identity at inference
    ReLU: activation("Relu"), Sigmoid: activation("Sigmoid"), Tanh: activation("Tanh"),
    LeakyReLU: activation("LeakyRelu", alpha=lambda layer: layer.negative_slope),
    ELU: activation("Elu", alpha=lambda layer: layer.alpha),
    RNN: recurrent, GRU: recurrent, LSTM: recurrent,
    Embedding: lambda graph, layer, x: graph.node("Gather", [graph.const(layer.params["W"], "W"), x]),
    LayerGraph: computational_graph, Add: gate("Add"), Mul: gate("Mul"), Max: gate("Max"), MatMul: gate("MatMul"),
    Exp: gate("Exp"), Reciprocal: gate("Reciprocal"), Square: lambda graph, layer, x: graph.node("Mul", [x, x]),
    Scale: lambda graph, layer, x: graph.node("Mul", [x, graph.const(np.float32(layer.c), "c")]),
    AddConst: lambda graph, layer, x: graph.node("Add", [x, graph.const(np.float32(layer.c), "c")]),
    Sum: reduce_sum,
    TemporalAffine: lambda graph, layer, x: graph.node("Add", [
        graph.node("MatMul", [x, graph.const(layer.params["W"], "W")]), graph.const(layer.params["b"], "b")]),
    GELU: gelu, Softmax: lambda graph, layer, x: graph.node("Softmax", [x], axis=layer.axis),
    Transpose: lambda graph, layer, x: graph.node("Transpose", [x], perm=list(layer.order)),
    PositionalEmbedding: lambda graph, layer, x: positions(graph, layer.params["P"], x),
    SinusoidalPositionalEncoding: lambda graph, layer, x: positions(graph, layer.table, x),
    MultiHeadAttention: attention, TransformerBlock: transformer_block,
}


#: Each output a task may name (``Task.head_names``) as the ONNX operator that computes it from the network's.
HEADS: dict[str, tuple[str, dict[str, Any]]] = {
    "scores": ("Identity", {}), "probabilities": ("Softmax", {"axis": -1}), "predictions": ("Identity", {})}


def to_onnx(model: Any, opset: int = 17) -> Any:
    """The ONNX model of a ``TrainedModel``: standardization, the network, ``scores`` and ``probabilities`` (for
    a regression model, one output ``predictions`` (N, K)); checked with
    ``onnx.checker.check_model(full_check=True)``."""
    onnx, helper, _ = onnx_modules()
    if opset not in OPSETS:
        raise ValueError(f"--opset: expected {OPSETS[0]} to {OPSETS[-1]}, got {opset}")
    graph = OnnxGraph(opset)
    x = "input"
    if "mean" in model.preprocessing:
        x = graph.node("Sub", [x, graph.const(model.preprocessing["mean"], "mean")])
        x = graph.node("Div", [x, graph.const(model.preprocessing["std"], "std")])
    scores = export_layer(graph, model.network, x)
    outputs = model.task.head_names  # the task's outputs: the scores and their softmax, or the values
    for name in outputs:
        op, attributes = HEADS[name]
        graph.nodes.append(helper.make_node(op, [scores], [name], **attributes))
    input_type = onnx.TensorProto.INT64 if model.indices else onnx.TensorProto.FLOAT  # a character model's
    in_shape: list[Any] = ["N", *model.input_shape]
    out_shape: list[Any] = ["N", *model.output_shape[1:]]
    if model.indices:  # a sequence of indices: any length, and a score per step
        in_shape[1] = "T"
        out_shape[1] = "T" if len(out_shape) > 2 else out_shape[1]
    onnx_graph = helper.make_graph(
        graph.nodes, "chainrule", [helper.make_tensor_value_info("input", input_type, in_shape)],
        [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, out_shape)
         for name in outputs], graph.initializers)
    exported = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", opset)],
                                 producer_name="chainrule")
    onnx.checker.check_model(exported, full_check=True)
    return exported


def write_onnx(model: Any, path: str | Path, opset: int = 17) -> Path:
    """Export ``model`` to ``path`` (written atomically); returns the path."""
    exported = to_onnx(model, opset)
    path = Path(path)
    atomic_write(path, exported.SerializeToString())
    return path
