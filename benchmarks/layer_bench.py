"""Per-layer microbenchmarks: forward and backward of each layer at a small and a large size, float32."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from layers import ELU, Add, Affine, Layer, LeakyReLU, Max, Maxout, Mul, ReLU, Sigmoid, Tanh


def median_us(fn: Callable[..., Any], args: tuple, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def cases(N: int, D: int, rng: np.random.Generator) -> list[tuple[str, Layer, tuple]]:
    x = rng.standard_normal((N, D)).astype(np.float32)
    y = rng.standard_normal((N, D)).astype(np.float32)
    one = [Affine(D, D), Maxout(D, D // 2, 2), ReLU(), LeakyReLU(), ELU(), Sigmoid(), Tanh()]
    two = [Add(), Mul(), Max()]
    return [(type(m).__name__, m, (x,)) for m in one] + [(type(g).__name__, g, (x, y)) for g in two]


def layer_rows(quick: bool = False) -> list[dict[str, Any]]:
    sizes = {"tiny": (4, 8)} if quick else {"small": (32, 100), "large": (256, 1024)}
    repeats = 20 if quick else 200
    rows = []
    for label, (N, D) in sizes.items():
        for name, layer, inputs in cases(N, D, np.random.default_rng(0)):
            dout = np.ones_like(layer.forward(*inputs))
            rows.append({"layer": name, "size": f"{label} {N}x{D}",
                         "forward_us": median_us(layer.forward, inputs, repeats),
                         "backward_us": median_us(layer.backward, (dout,), repeats)})
    return rows
