"""The lecture's first example: f(x, y, z) = (x + y) z at x = -2, y = 5, z = -4.

Forward: q = x + y = 3, f = q z = -12. Backward: the mul gate swaps its inputs
(df/dq = z = -4, df/dz = q = 3); the add gate distributes (df/dx = df/dy = df/dq = -4).
"""

import numpy as np
from lecture_common import fmt, out_dir, save_picture

from layers import Add, Graph, Mul

folder = out_dir(__doc__)
graph = Graph(["x", "y", "z"])
graph.add("q", Add(), "x", "y")
graph.add("f", Mul(), "q", "z")

f = graph.forward(x=np.array(-2.0), y=np.array(5.0), z=np.array(-4.0))
dx, dy, dz = graph.backward()
print(f"f = {fmt([f])}")
print(f"df/dx, df/dy, df/dz = {fmt([dx, dy, dz])}")
print(f"df/dq = {fmt([graph.grad('q')])}")
save_picture(graph, folder, "add_mul")
