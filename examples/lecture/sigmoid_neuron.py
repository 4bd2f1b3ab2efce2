"""The sigmoid neuron f(w, x) = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))) at w = (2, -3, -3), x = (-1, -2).

First from elementary gates (mul, add, scale by -1, exp, add 1, reciprocal), then
with one Sigmoid node: same value and gradients, because the sigmoid's local
gradient is simply (1 - s) s.
"""

import numpy as np
from lecture_common import fmt, out_dir, save_picture

from layers import Add, AddConst, Exp, Graph, Mul, Reciprocal, Scale, Sigmoid

folder = out_dir(__doc__)
inputs = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
inputs = {k: np.array(v) for k, v in inputs.items()}


def neuron(sigmoid_gate: bool) -> Graph:
    g = Graph(list(inputs))
    g.add("a", Mul(), "w0", "x0")
    g.add("b", Mul(), "w1", "x1")
    g.add("c", Add(), "a", "b")
    g.add("d", Add(), "c", "w2")
    if sigmoid_gate:
        g.add("f", Sigmoid(), "d")
    else:
        g.add("e", Scale(-1.0), "d")
        g.add("exp", Exp(), "e")
        g.add("plus1", AddConst(1.0), "exp")
        g.add("f", Reciprocal(), "plus1")
    return g


for name, use_sigmoid in (("elementary gates", False), ("one sigmoid gate", True)):
    graph = neuron(use_sigmoid)
    f = graph.forward(**inputs)
    grads = dict(zip(inputs, graph.backward(), strict=True))
    print(f"{name}: f = {fmt([f])}")
    print(f"{name}: dw = ({fmt([grads['w0'], grads['w1'], grads['w2']])})")
    print(f"{name}: dx = ({fmt([grads['x0'], grads['x1']])})")
    save_picture(graph, folder, "sigmoid_neuron_sigmoid_gate" if use_sigmoid else "sigmoid_neuron")

s = float(graph.value("f"))
print(f"local gradient of the sigmoid gate: (1 - s) s = {(1 - s) * s:.2f}")
