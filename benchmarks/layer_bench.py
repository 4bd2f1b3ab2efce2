"""Per-layer microbenchmarks: forward and backward of each layer at a small and a large size, float32."""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from layers import ELU, Add, Affine, LeakyReLU, Max, Maxout, Mul, ReLU, Sigmoid, Tanh


def median_us(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def layer_rows(quick: bool = False) -> list[dict[str, Any]]:
    sizes = {"small": (32, 100), "large": (256, 1024)} if not quick else {"tiny": (4, 8)}
    repeats = 20 if quick else 200
    rows = []
    rng = np.random.default_rng(0)
    for label, (N, D) in sizes.items():
        x = rng.standard_normal((N, D)).astype(np.float32)
        y = rng.standard_normal((N, D)).astype(np.float32)
        makers = {
            "Affine": lambda: (Affine(D, D), (x,)), "Maxout": lambda: (Maxout(D, D // 2, 2), (x,)),
            "ReLU": lambda: (ReLU(), (x,)), "LeakyReLU": lambda: (LeakyReLU(), (x,)), "ELU": lambda: (ELU(), (x,)),
            "Sigmoid": lambda: (Sigmoid(), (x,)), "Tanh": lambda: (Tanh(), (x,)),
            "Add": lambda: (Add(), (x, y)), "Mul": lambda: (Mul(), (x, y)), "Max": lambda: (Max(), (x, y)),
        }
        for name, make in makers.items():
            layer, inputs = make()
            out = layer.forward(*inputs)
            dout = np.ones_like(out)
            rows.append({"layer": name, "size": f"{label} {N}x{D}",
                         "forward_us": median_us(lambda: layer.forward(*inputs), repeats),
                         "backward_us": median_us(lambda: layer.backward(dout), repeats)})
    return rows
