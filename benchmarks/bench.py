"""Benchmark a full training step against hand-written numpy, the matmuls alone and PyTorch.

    python benchmarks/bench.py                 # the full table (a few minutes)
    python benchmarks/bench.py --quick         # tiny sizes, seconds: checks that everything runs
    python benchmarks/bench.py --json out.json

Timings are medians of interleaved blocks in one process (A/B/C/D, shuffled each round),
with BLAS limited to --threads threads; ratios compare numbers from the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

try:
    import threadpoolctl
except ImportError:  # optional: the bench extra
    threadpoolctl = None

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from layer_bench import layer_rows  # noqa: E402
from steps import framework_step, matmul_step, numpy_step, torch_step  # noqa: E402

CONFIGS = {  # name: (inputs, hidden layers, classes, batch)
    "small": (64, [("relu", 100)], 10, 32),
    "deep-narrow": (100, [("relu", 100)] * 10, 10, 64),
    "medium": (784, [("relu", 512), ("relu", 512)], 10, 128),
    "large": (3072, [("relu", 1024), ("relu", 1024)], 10, 256),
    "maxout": (784, [("maxout", 256, 2)], 10, 128),
    "sigmoid-tanh": (784, [("sigmoid", 512), ("tanh", 512)], 10, 128),
}
# Each timed block runs about this long: OpenBLAS's and PyTorch's worker threads keep spinning for a
# while after their last op, and long blocks amortise that hand-over between the two thread pools.
BLOCK_SECONDS = 0.05
QUICK = {
    "small": (16, [("relu", 8)], 4, 8),
    "maxout": (16, [("maxout", 8, 2)], 4, 8),
    "sigmoid-tanh": (16, [("sigmoid", 8), ("tanh", 8)], 4, 8),
}


def batches(d_in: int, classes: int, batch: int, dtype: Any, count: int = 8) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(2)
    return [(rng.standard_normal((batch, d_in)).astype(dtype), rng.integers(0, classes, batch)) for _ in range(count)]


def time_interleaved(steps: dict[str, Any], data: dict[str, list], seconds: float) -> dict[str, float]:
    """Median seconds per step for each implementation, timed in rotating blocks."""
    for name, step in steps.items():  # warm up, and size the blocks
        for X, y in data[name][:3]:
            step(X, y)
    t0 = time.perf_counter()
    step0 = next(iter(steps))
    for X, y in data[step0]:
        steps[step0](X, y)
    per_step = (time.perf_counter() - t0) / len(data[step0])
    block = max(1, int(BLOCK_SECONDS / max(per_step, 1e-7)))
    rounds = max(5, int(seconds / (block * per_step * len(steps) + 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in steps}
    order = np.random.default_rng(0)
    for _ in range(rounds):
        for name in order.permutation(list(steps)):
            step, batches_ = steps[name], data[name]
            start = time.perf_counter()
            for i in range(block):
                X, y = batches_[i % len(batches_)]
                step(X, y)
            samples[name].append((time.perf_counter() - start) / block)
    return {name: statistics.median(v) for name, v in samples.items()}


def peak_memory(make: Any, X: np.ndarray, y: np.ndarray) -> int:
    """Peak bytes traced during a second step (caches kept from the first count), parameters excluded."""
    step = make()
    gc.collect()
    tracemalloc.start()
    step(X, y)
    step(X, y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def bench_config(name: str, spec: tuple, dtype: Any, seconds: float) -> dict[str, Any]:
    d_in, hidden, classes, batch = spec
    steps = {"chainrule": framework_step(d_in, hidden, classes, dtype),
             "numpy": numpy_step(d_in, hidden, classes, dtype),
             "matmul": matmul_step(d_in, hidden, classes, dtype, batch)}
    data = {k: batches(d_in, classes, batch, dtype) for k in steps}
    torch = torch_step(d_in, hidden, classes, dtype)
    if torch is not None:
        import torch as th

        steps["torch"] = torch
        data["torch"] = [(th.from_numpy(X), th.from_numpy(y)) for X, y in data["numpy"]]
    t = time_interleaved(steps, data, seconds)
    X, y = data["numpy"][0]
    mem = {"chainrule": peak_memory(lambda: framework_step(d_in, hidden, classes, dtype), X, y),
           "numpy": peak_memory(lambda: numpy_step(d_in, hidden, classes, dtype), X, y)}
    row: dict[str, Any] = {
        "config": name, "dtype": np.dtype(dtype).name, "batch": batch,
        "chainrule_us": t["chainrule"] * 1e6, "steps_per_s": 1 / t["chainrule"], "numpy_us": t["numpy"] * 1e6,
        "matmul_us": t["matmul"] * 1e6, "vs_numpy": t["chainrule"] / t["numpy"],
        "vs_matmul": t["chainrule"] / t["matmul"],
        "peak_kib": mem["chainrule"] / 1024, "peak_vs_numpy": mem["chainrule"] / mem["numpy"],
    }
    if "torch" in t:
        row.update(torch_us=t["torch"] * 1e6, vs_torch=t["chainrule"] / t["torch"])
    return row


def fmt_table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    head = [c[1] for c in columns]
    body = [[format(r[c[0]], c[2]) if c[0] in r else "-" for c in columns] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])


STEP_COLUMNS = [("config", "config", "s"), ("dtype", "dtype", "s"), ("batch", "batch", "d"),
                ("chainrule_us", "chainrule µs", ".1f"), ("steps_per_s", "steps/s", ".0f"),
                ("numpy_us", "numpy µs", ".1f"), ("vs_numpy", "÷numpy", ".2f"),
                ("matmul_us", "matmul µs", ".1f"), ("vs_matmul", "÷matmul", ".2f"),
                ("torch_us", "torch µs", ".1f"), ("vs_torch", "÷torch", ".2f"),
                ("peak_kib", "peak KiB", ".0f"), ("peak_vs_numpy", "peak÷numpy", ".2f")]
LAYER_COLUMNS = [("layer", "layer", "s"), ("size", "size", "s"), ("forward_us", "forward µs", ".1f"),
                 ("backward_us", "backward µs", ".1f")]


def blas_limited_to(threads: int) -> Any:
    """A context that holds BLAS to ``threads`` threads, or does nothing (with a note) without threadpoolctl."""
    if threadpoolctl is None:
        print("note: threadpoolctl is not installed (pip install -e '.[bench]'): BLAS threads are neither "
              "limited nor recorded")
        return contextlib.nullcontext()
    return threadpoolctl.threadpool_limits(limits=threads, user_api="blas")


def blas_info() -> list[dict[str, Any]]:
    """The BLAS libraries numpy (and torch) loaded, with their versions and threads, as threadpoolctl sees them."""
    if threadpoolctl is None:
        return []
    return [{k: i.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
            for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]


def environment(threads: int) -> dict[str, Any]:
    blas = blas_info()
    env = {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
           "threads": threads, "blas": blas, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}
    try:
        import torch

        env["torch"] = torch.__version__
    except ImportError:
        env["torch"] = None
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and short timings")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=None, help="timing budget per configuration and dtype")
    parser.add_argument("--only", nargs="*", help="configurations to run")
    parser.add_argument("--json", default=str(Path(__file__).with_name("last-run.json")))
    args = parser.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        print("note: PyTorch is not installed (pip install -e '.[bench]'): the torch columns are skipped")
    configs = QUICK if args.quick else CONFIGS
    seconds = args.seconds or (0.2 if args.quick else 4.0)
    rows = []
    with blas_limited_to(args.threads):
        env = environment(args.threads)
        print(f"BLAS: {env['blas'] or 'unknown'}, threads {args.threads}, numpy {env['numpy']}, torch {env['torch']}")
        for name, spec in configs.items():
            if args.only and name not in args.only:
                continue
            for dtype in (np.float32, np.float64):
                rows.append(bench_config(name, spec, dtype, seconds))
                print(fmt_table(rows[-1:], STEP_COLUMNS).splitlines()[-1], flush=True)
        layers = layer_rows(quick=args.quick)
    print("\nTraining step, median per step (÷x: chainrule's time over x's; peak: traced bytes of a step)")
    print(fmt_table(rows, STEP_COLUMNS))
    print("\nPer layer, float32, median")
    print(fmt_table(layers, LAYER_COLUMNS))
    Path(args.json).write_text(json.dumps({"environment": env, "steps": rows, "layers": layers}, indent=1))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
