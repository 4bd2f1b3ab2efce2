"""f(x, W) = ||W x||^2 with W = [[0.1, 0.5], [-0.3, 0.8]], x = (0.2, 0.4).

With q = W x: df/dW = 2 q x^T and df/dx = 2 W^T q. The graph (matmul, square,
sum) gets them by the chain rule alone; this script checks them against the formulas.
"""

import numpy as np
from lecture_common import out_dir, save_picture

from layers import Graph, MatMul, Square, Sum

folder = out_dir(__doc__)
W = np.array([[0.1, 0.5], [-0.3, 0.8]])
x = np.array([0.2, 0.4])

graph = Graph(["W", "x"])
graph.add("q", MatMul(), "W", "x")
graph.add("sq", Square(), "q")
graph.add("f", Sum(), "sq")
f = graph.forward(W, x)
dW, dx = graph.backward()
q = W @ x
np.set_printoptions(precision=3, suppress=True)
print(f"q = {q}")
print(f"f = {float(f):.3f}")
print(f"dW = {np.round(dW, 3).tolist()}")
print(f"dx = {np.round(dx, 3).tolist()}")
print(f"dW equals 2 q x^T: {np.allclose(dW, 2 * np.outer(q, x), rtol=1e-14, atol=0)}")
print(f"dx equals 2 W^T q: {np.allclose(dx, 2 * W.T @ q, rtol=1e-14, atol=0)}")
save_picture(graph, folder, "l2_matvec")
