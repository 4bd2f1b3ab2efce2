"""What the walk's shortcuts save: a training step with and without ``leaf=True`` and the kept walk.

    python benchmarks/walk_bench.py

Reading a model's ``params`` and ``grads`` walks its tree of layers. Built-in layers that never hold sub-layers
say so (``leaf=True``: their arrays are plain attributes) and a container whose children are all leaves keeps
its walk while they stay in place. This script times ``Solver.step`` on two MLPs, one BLAS thread, as they are
and with both shortcuts switched off (in a second process, so the two never share a warm-up).
"""

from __future__ import annotations

import os
import subprocess
import sys
import timeit
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NETS = {"1 hidden layer (64-100-10, batch 32)": (1, 64, 32), "10 hidden layers (100 wide, batch 64)": (10, 100, 64)}


def switch_off() -> None:
    """Every class a plain layer: no leaf shortcut, no kept walk."""
    import layers.base as base
    from layers import Sequential

    for cls in list(base.LEAVES):
        for kind in base.TENSOR_KINDS:
            if vars(cls).get(kind, 1) is None:
                delattr(cls, kind)
    base.LEAVES.clear()
    Sequential.structure = lambda self: None  # type: ignore[method-assign]


def step_seconds(depth: int, features: int, batch: int) -> float:
    from layers import Affine, ReLU, Sequential
    from solver import Solver

    rng = np.random.default_rng(0)
    parts = []
    for i in range(depth):
        parts += [Affine(features if i == 0 else 100, 100, rng=rng), ReLU()]
    model = Sequential(*parts, Affine(100, 10, rng=rng))
    X, y = rng.standard_normal((1000, features)).astype(np.float32), rng.integers(0, 10, 1000)
    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": X[:10], "y_val": y[:10]}, verbose=False,
                    threads=1)
    xb, yb = X[:batch], y[:batch]
    solver.step(xb, yb)
    return min(timeit.repeat(lambda: solver.step(xb, yb), number=300, repeat=7)) / 300


def solo(off: bool) -> None:
    sys.path.insert(0, str(ROOT))
    if off:
        switch_off()
    print(" ".join(f"{step_seconds(*spec) * 1e6:.1f}" for spec in NETS.values()))


def main() -> None:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    times = {}
    for label, off in (("as built", False), ("without", True)):
        out = subprocess.run([sys.executable, __file__, "--solo", str(int(off))], env=env, text=True,
                             capture_output=True, check=True).stdout
        times[label] = [float(v) for v in out.split()]
    print(f"load average {os.getloadavg()[0]:.2f}; Solver.step, best of 7 x 300, one BLAS thread")
    print(f"{'net':<40} {'as built us':>12} {'without us':>11} {'ratio':>6}")
    for i, name in enumerate(NETS):
        a, b = times["as built"][i], times["without"][i]
        print(f"{name:<40} {a:>12.1f} {b:>11.1f} {b / a:>6.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--solo":
        solo(bool(int(sys.argv[2])))
    else:
        main()
