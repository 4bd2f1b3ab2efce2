"""Benchmarks: a training step against hand-written numpy, the matmuls alone and PyTorch; the limit (GEMM
throughput); time to accuracy against scikit-learn and PyTorch; each layer.

    python benchmarks/bench.py                 # the full tables (about 10 minutes)
    python benchmarks/bench.py --quick         # tiny sizes, one round: checks that everything runs
    python benchmarks/bench.py --only small medium --rounds 3 --json out.json

Every contender runs alone in its own process (benchmarks/solo.py): a thread pool left spinning by one
library takes the cores from the next (numpy's OpenBLAS workers spin after a call and made PyTorch look
2.5x slower in one process). Rounds alternate the contenders in a shuffled order; a figure is the median
of the rounds' medians, with the range of the rounds beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from layer_bench import layer_rows  # noqa: E402
from solo import TASKS  # noqa: E402
from steps import CONFIGS, FULL, QUICK, matmul_flops  # noqa: E402

STEP_CONTENDERS = ("chainrule", "numpy", "matmul", "torch")
FIT_CONTENDERS = ("chainrule", "sklearn", "torch")
FORCING = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def solo(*args: str) -> dict[str, Any]:
    """Run benchmarks/solo.py in a fresh process; its one line of JSON."""
    result = subprocess.run([sys.executable, str(HERE / "solo.py"), *args], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        raise RuntimeError(f"solo.py {' '.join(args)} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "low": min(values), "high": max(values)}


def step_table(configs: list[str], threads: int, rounds: int, seconds: float) -> list[dict[str, Any]]:
    cases = [f"{c}:{d}" for c in configs for d in ("float32", "float64")]
    samples: dict[str, dict[str, list]] = {c: {case: [] for case in cases} for c in STEP_CONTENDERS}
    peaks: dict[str, dict[str, int]] = {c: {} for c in STEP_CONTENDERS}
    order = np.random.default_rng(0)
    for _ in range(rounds):
        for contender in order.permutation(STEP_CONTENDERS):
            for case, result in solo("step", str(contender), str(threads), str(seconds), *cases).items():
                samples[contender][case].append(result["seconds"])
                if "peak" in result:
                    peaks[contender][case] = result["peak"]
    gemm = solo("gemm", str(threads), "1024:float32", "2048:float32", "1024:float64", "2048:float64")
    rows = []
    for case in cases:
        name, dtype = case.split(":")
        t = {c: summary(samples[c][case]) for c in STEP_CONTENDERS if samples[c][case]}
        peak = max(gemm[f"1024:{dtype}"], gemm[f"2048:{dtype}"])
        flops = matmul_flops(CONFIGS[name])
        row: dict[str, Any] = {"config": name, "dtype": dtype, "batch": CONFIGS[name][3], "times": t,
                               "mflop": flops / 1e6, "gflops": flops / t["chainrule"]["median"] / 1e9,
                               "peak_gflops": peak}
        row["of_peak"] = row["gflops"] / peak
        for other in ("numpy", "matmul", "torch"):
            if other in t:
                row[f"vs_{other}"] = t["chainrule"]["median"] / t[other]["median"]
        if case in peaks["chainrule"] and case in peaks["numpy"]:
            row["peak_vs_numpy"] = peaks["chainrule"][case] / peaks["numpy"][case]
        rows.append(row)
    return rows


def fit_table(threads: int, rounds: int) -> list[dict[str, Any]]:
    rows = []
    order = np.random.default_rng(1)
    results: dict[tuple[str, str], list[dict]] = {}
    for _ in range(rounds):
        for task in TASKS:
            for contender in order.permutation(FIT_CONTENDERS):
                try:
                    results.setdefault((task, str(contender)), []).append(
                        solo("accuracy", str(contender), str(threads), task))
                except RuntimeError as e:
                    print(f"note: {contender} on {task} did not run ({str(e).splitlines()[0]})")
    for (task, contender), runs in results.items():
        runs = [r for r in runs if r]
        if runs:
            rows.append({"task": task, "contender": contender, "times": summary([r["seconds"] for r in runs]),
                         "test_acc": statistics.median(r["test_acc"] for r in runs)})
    return rows


def fmt(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def span(t: dict[str, float], scale: float = 1e6, digits: int = 1) -> str:
    return f"{t['median'] * scale:.{digits}f} ({t['low'] * scale:.{digits}f}-{t['high'] * scale:.{digits}f})"


def print_steps(rows: list[dict[str, Any]]) -> None:
    head = ["config", "dtype", "batch", "chainrule µs (range)", "numpy µs", "÷numpy", "matmul µs", "÷matmul",
            "torch µs (range)", "÷torch", "MFLOP", "GFLOP/s", "÷peak", "peak mem÷numpy"]
    body = []
    for r in rows:
        t = r["times"]
        body.append([r["config"], r["dtype"], str(r["batch"]), span(t["chainrule"]), span(t["numpy"]),
                     f"{r['vs_numpy']:.2f}", span(t["matmul"]), f"{r['vs_matmul']:.2f}",
                     span(t["torch"]) if "torch" in t else "-", f"{r['vs_torch']:.2f}" if "vs_torch" in r else "-",
                     f"{r['mflop']:.1f}", f"{r['gflops']:.1f}", f"{r['of_peak']:.2f}",
                     f"{r['peak_vs_numpy']:.2f}" if "peak_vs_numpy" in r else "-"])
    print(fmt([head, *body]))


def print_fits(rows: list[dict[str, Any]]) -> None:
    head = ["task", "contender", "seconds (range)", "test accuracy"]
    body = [[r["task"], r["contender"], span(r["times"], 1, 2), f"{r['test_acc']:.3f}"] for r in rows]
    print(fmt([head, *body]))


def environment(threads: int) -> dict[str, Any]:
    blas = [{k: i.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
            for i in threadpool_info() if i["user_api"] == "blas"]
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    return {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
            "cores": os.cpu_count(), "threads": threads, "blas": blas, "torch": torch_version,
            "forced": {k: os.environ[k] for k in FORCING if k in os.environ}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round, no time-to-accuracy table")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 5, quick 1)")
    parser.add_argument("--seconds", type=float, default=None, help="timing per configuration in each round")
    parser.add_argument("--only", nargs="*", help="configurations to run")
    parser.add_argument("--no-fit", action="store_true", help="skip the time-to-accuracy table")
    parser.add_argument("--json", default=str(HERE / "last-run.json"))
    args = parser.parse_args(argv)
    configs = [c for c in (QUICK if args.quick else FULL) if not args.only or c in args.only]
    rounds = args.rounds or (1 if args.quick else 5)
    seconds = args.seconds or (0.05 if args.quick else 0.6)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        env = environment(args.threads)
        layers = layer_rows(quick=args.quick)
    blas = ", ".join(f"{b['internal_api']} {b['version']} ({b['architecture']})" for b in env["blas"]) or "unknown"
    forced = ", ".join(f"{k}={v}" for k, v in env["forced"].items()) or "none"
    print(f"BLAS: {blas}; {args.threads} threads of {env['cores']} cores; numpy {env['numpy']}, "
          f"torch {env['torch'] or 'not installed (pip install -e .[bench]): its columns are empty'}; "
          f"variables forcing a kernel or threads: {forced}")
    steps = step_table(configs, args.threads, rounds, seconds)
    print(f"\nTraining step, each contender in its own process, median of {rounds} rounds (range of rounds);"
          "\n÷x: chainrule's time over x's; GFLOP/s: the step's matmul FLOPs over chainrule's time; ÷peak: that "
          "over square GEMM throughput")
    print_steps(steps)
    fits = [] if args.quick or args.no_fit else fit_table(args.threads, max(1, rounds // 2 + 1))
    if fits:
        print("\nTime to accuracy: the same network, data, batch size, Adam and epochs, each in its own process "
              "(training only, imports excluded)")
        print_fits(fits)
    print("\nPer layer, float32, in this process, median")
    print(fmt([["layer", "size", "forward µs", "backward µs"],
               *[[r["layer"], r["size"], f"{r['forward_us']:.1f}", f"{r['backward_us']:.1f}"] for r in layers]]))
    Path(args.json).write_text(json.dumps({"environment": env, "steps": steps, "fits": fits, "layers": layers},
                                          indent=1))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
