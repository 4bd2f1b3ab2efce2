"""Compile time of the compiled kernels: the first training step of each layer family, in a fresh process with an
empty numba cache (compiling), then in another process with that cache filled (loading), against the same step
on numpy alone. Each figure is the first forward and backward of float32 layers at the smallest sizes the
kernels run at, numba's import included where it happens.

    python benchmarks/kernel_compile.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FAMILIES = ("convolution", "pooling", "relu", "gelu", "lstm", "gru")


def first_step(family: str) -> float:
    """Run in this process: seconds of the first forward and backward of ``family``'s layers."""
    sys.path.insert(0, str(HERE.parent))
    from layers import GELU, GRU, LSTM, AvgPool2D, Conv1D, Conv2D, MaxPool2D, ReLU

    rng = np.random.default_rng(0)
    image, series = (32, 3, 32, 32), (256, 3, 100)  # large enough for the kernels (layers.kernels.MIN_PARALLEL)
    cases = {"convolution": [(Conv2D(3, 4, 3, padding=1, rng=0), image), (Conv1D(3, 4, 3, rng=0), series)],
             "pooling": [(MaxPool2D(2), image), (MaxPool2D(3, 2, 1), image), (AvgPool2D(2), image)],
             "relu": [(ReLU(), (64, 1024))],
             "gelu": [(GELU(), (64, 1024))],
             "lstm": [(LSTM(1, 8, rng=0), (4, 5, 1))],
             "gru": [(GRU(1, 8, rng=0), (4, 5, 1))]}[family]
    start = time.perf_counter()
    for layer, shape in cases:
        out = layer.forward(rng.standard_normal(shape).astype(np.float32))
        layer.backward(np.ones_like(out))
    return time.perf_counter() - start


def measure(family: str, cache: str, kernels: str) -> float:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, CHAINRULE_KERNELS=kernels)
    out = subprocess.run([sys.executable, __file__, "--solo", family], capture_output=True, text=True, check=True,
                         env=env)
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    if sys.argv[1:2] == ["--solo"]:
        print(json.dumps(first_step(sys.argv[2])))
        return
    one, five, fifteen = os.getloadavg()
    print(f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores; float32; first forward and "
          "backward, seconds")
    print(f"{'family':>12}  {'compiling':>9}  {'from cache':>10}  {'numpy':>6}")
    with tempfile.TemporaryDirectory() as cache:
        for family in FAMILIES:
            cold, warm = measure(family, cache, "numba"), measure(family, cache, "numba")
            print(f"{family:>12}  {cold:>9.2f}  {warm:>10.2f}  {measure(family, cache, 'numpy'):>6.3f}")


if __name__ == "__main__":
    main()
