"""A user module: a custom layer that subclasses Layer and so works everywhere a built-in does.

Name it in a config (``imports = ["mylayers"]`` and ``{ type = "PReLU" }``), or check it:
``python -m layers.gradcheck mylayers`` (run from this folder).
"""

import numpy as np

from layers import Layer


class PReLU(Layer):
    """out = x where x > 0 else a * x, with a learned slope a per feature.

    x : (N, D) floating; params ``a`` of shape (D,). Caches x.
    """

    def __init__(self, in_features: int, init_slope: float = 0.25, dtype=np.float32):
        super().__init__()
        self.params = {"a": np.full(in_features, init_slope, dtype=dtype)}
        self.grads = {"a": np.zeros(in_features, dtype=dtype)}
        self.x = None

    def forward(self, x):
        self.x = x
        return np.where(x > 0, x, self.params["a"] * x)

    def backward(self, dout):
        x = self.cached(self.x)
        self.grads["a"] = np.sum(np.where(x > 0, 0, dout * x), axis=0)
        return np.where(x > 0, dout, dout * self.params["a"])

    def to_onnx(self, graph, x):
        """For ``chainrule export``: ONNX's PRelu, whose slope is ours."""
        return graph.node("PRelu", [x, graph.const(self.params["a"])])

    @classmethod
    def example(cls, rng, batch=3):
        x = rng.standard_normal((batch, 4))
        return cls(4, dtype=np.float64), (np.where(x > 0, x + 0.1, x - 0.1),)
