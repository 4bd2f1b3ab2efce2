"""What each logger costs a run: `examples/digits.toml` (200 epochs of an MLP on scikit-learn's digits) trained
by `chainrule train` with no logger, TensorBoard, MLflow (a SQLite store) and both, each in its own process,
the contenders alternating over rounds; the table gives the median training wall time (metrics.json's
wall_seconds: every epoch with its logging and checkpoints, not the start-up) and the cost per epoch over
no logger.

    python benchmarks/logger_overhead.py              # 3 rounds
    python benchmarks/logger_overhead.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTENDERS = {"none": "[]", "tensorboard": '["tensorboard"]', "mlflow": '["mlflow"]',
              "both": '["tensorboard", "mlflow"]'}


def wall_seconds(loggers: str, folder: Path, i: int) -> tuple[float, int]:
    run = folder / f"run-{i}"
    subprocess.run([sys.executable, "-m", "chainrule", "train", str(ROOT / "examples" / "digits.toml"),
                    "--set", f"output.dir='{run}'", "--set", "solver.verbose=false",
                    "--set", f"output.loggers={loggers}",
                    "--set", f"output.mlflow_uri='sqlite:///{folder / 'mlflow.db'}'", "--set", "output.plot=false"],
                   check=True, capture_output=True, cwd=folder)
    metrics = json.loads((run / "metrics.json").read_text())
    return metrics["wall_seconds"], metrics["epochs_run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    epochs = 0
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for j, (name, loggers) in enumerate(CONTENDERS.items()):
                seconds, epochs = wall_seconds(loggers, Path(tmp), r * len(CONTENDERS) + j)
                times[name].append(seconds)
    base = statistics.median(times["none"])
    print(f"load average {os.getloadavg()[0]:.2f}; examples/digits.toml, {epochs} epochs, {args.rounds} rounds")
    print(f"{'loggers':>12}  {'wall s (range)':>20}  {'ms an epoch over none':>21}")
    for name, values in times.items():
        spread = f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"
        extra = (statistics.median(values) - base) / epochs * 1000
        print(f"{name:>12}  {spread:>20}  {extra:>21.1f}")


if __name__ == "__main__":
    main()
