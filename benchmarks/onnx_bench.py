"""What exporting buys: prediction throughput of ONNX Runtime against chainrule's TrainedModel.predict, on the
digits MLP and CNN examples (trained briefly here), each contender alone in its own process, one thread.

    python benchmarks/onnx_bench.py [--rows 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXAMPLES = {"digits MLP": "digits.toml", "digits CNN": "digits_cnn.toml"}


def train_and_export(folder: Path) -> dict[str, str]:
    sys.path.insert(0, str(ROOT))
    from chainrule import load_run, runs

    out = {}
    for name, config in EXAMPLES.items():
        run_dir = folder / config.removesuffix(".toml")
        run = runs.setup(ROOT / "examples" / config, [f"output.dir='{run_dir}'", "solver.epochs=2",
                                                      "solver.verbose=false", "output.plot=false"])
        runs.train(run)
        load_run(run_dir).to_onnx(run_dir / "model.onnx")
        out[name] = str(run_dir)
    return out


def solo(contender: str, run_dir: str, rows: int) -> float:
    """Rows a second, median of 5 passes over ``rows`` raw rows (batches of 1000, as predict makes them)."""
    from threadpoolctl import threadpool_limits

    sys.path.insert(0, str(ROOT))
    from chainrule import load_run

    model = load_run(run_dir)
    X = np.random.default_rng(0).uniform(0, 1, (rows, *model.input_shape)).astype(np.float32)
    with threadpool_limits(limits=1):
        if contender == "onnxruntime":
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = options.inter_op_num_threads = 1
            session = onnxruntime.InferenceSession(str(Path(run_dir) / "model.onnx"), options,
                                                   providers=["CPUExecutionProvider"])

            def predict(X: np.ndarray) -> None:
                for i in range(0, len(X), 1000):
                    session.run(["probabilities"], {"input": X[i:i + 1000]})
        else:
            def predict(X: np.ndarray) -> None:
                model.predict_proba(X)
        predict(X[:1000])
        times = []
        for _ in range(5):
            start = time.perf_counter()
            predict(X)
            times.append(time.perf_counter() - start)
    return rows / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--solo", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.solo:
        print(json.dumps(solo(args.solo[0], args.solo[1], args.rows)))
        return
    with tempfile.TemporaryDirectory() as folder:
        runs_made = train_and_export(Path(folder))
        results: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for name, run_dir in runs_made.items():
                for contender in ("chainrule", "onnxruntime"):
                    out = subprocess.run([sys.executable, __file__, "--solo", contender, run_dir, "--rows",
                                          str(args.rows)], capture_output=True, text=True, check=True)
                    results.setdefault((name, contender), []).append(float(out.stdout.strip().splitlines()[-1]))
    print(f"rows a second, median of {args.rounds} rounds (range), one thread, batches of 1000")
    print(f"{'model':>11}  {'chainrule predict_proba':>24}  {'ONNX Runtime':>24}  {'ratio':>5}")
    for name in EXAMPLES:
        ours, theirs = results[(name, "chainrule")], results[(name, "onnxruntime")]
        ratio = statistics.median(theirs) / statistics.median(ours)
        print(f"{name:>11}  {cell(ours):>24}  {cell(theirs):>24}  {ratio:5.2f}")


def cell(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


if __name__ == "__main__":
    main()
