"""A 2-layer network f = W2 max(0, W1 x) as a graph of matmul and ReLU gates,
compared with the same network as a Sequential of Affine layers (biases zero).
Rows of x are examples, so the graph computes max(0, x W1) W2.
"""

import numpy as np
from lecture_common import out_dir, save_picture

from layers import Affine, Graph, MatMul, ReLU, Sequential

folder = out_dir(__doc__)
rng = np.random.default_rng(0)
x = rng.standard_normal((4, 3))
seq = Sequential(Affine(3, 5, rng=rng, dtype=np.float64), ReLU(), Affine(5, 2, rng=rng, dtype=np.float64))
W1, W2 = seq[0].params["W"], seq[2].params["W"]

graph = Graph(["x", "W1", "W2"])
graph.add("h", MatMul(), "x", "W1")
graph.add("r", ReLU(), "h")
graph.add("f", MatMul(), "r", "W2")

dout = rng.standard_normal((4, 2))
out_graph = graph.forward(x, W1, W2)
dx_graph, dW1_graph, dW2_graph = graph.backward(dout)
out_seq = seq.forward(x)
dx_seq = seq.backward(dout)

print(f"max |graph - sequential| output: {np.abs(out_graph - out_seq).max():.1e}")
print(f"max |graph - sequential| dx: {np.abs(dx_graph - dx_seq).max():.1e}")
print(f"max |graph - sequential| dW1: {np.abs(dW1_graph - seq.grads['0.W']).max():.1e}")
print(f"max |graph - sequential| dW2: {np.abs(dW2_graph - seq.grads['2.W']).max():.1e}")
save_picture(graph, folder, "two_layer")
