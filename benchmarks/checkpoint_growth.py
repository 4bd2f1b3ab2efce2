"""What a checkpoint costs as a run grows: size and write time at a given epoch.

    python benchmarks/checkpoint_growth.py [--epochs 20 1000 100000] [--writes 20]

The spiral example's solver is given the history of a run of E epochs (numbers drawn from a seeded
Generator: what a write costs depends on how much it writes, not on the values), then the checkpoint of one
more epoch is written ``--writes`` times into a temporary run folder: the rows of that epoch appended to
history.csv and steps.csv, then checkpoint.npz and checkpoint.json, each written atomically and flushed to
disk, as training does. The history is in history.csv and steps.csv, appended to: the checkpoint's size and
write time should not grow with the epoch.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chainrule import checkpoint as ckpt  # noqa: E402
from chainrule import history, runs  # noqa: E402


def with_history(solver, epochs: int, rng: np.random.Generator) -> None:
    """The solver as if it had run ``epochs`` epochs: its history lists filled."""
    solver.epoch = epochs
    solver.loss_history[:] = rng.random(epochs * solver.steps_per_epoch).tolist()
    for values in solver.epoch_lists().values():
        values[:] = rng.random(epochs).tolist()


def write_now(run_dir: Path, solver, cfg, pre) -> None:
    history.append(run_dir, solver, solver.epoch - 1)
    ckpt.save_checkpoint(run_dir, solver, cfg, pre)


def measure(write, run, epochs: int, writes: int) -> tuple[int, float]:
    """(checkpoint bytes, median ms per write) for a run at ``epochs``."""
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder)
        solver = run.solver
        with_history(solver, epochs, np.random.default_rng(epochs))
        history.rewrite(run_dir, solver)
        times = []
        for _ in range(writes):
            start = time.perf_counter()
            write(run_dir, solver, run.cfg, run.preprocessing)
            times.append(time.perf_counter() - start)
        size = sum((run_dir / name).stat().st_size for name in ("checkpoint.npz", "checkpoint.json"))
        return size, 1e3 * float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, nargs="+", default=[20, 1000, 10000, 100000])
    p.add_argument("--writes", type=int, default=20)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run = runs.setup(ROOT / "examples" / "spiral.toml", [f"output.dir='{folder}/r'", "solver.verbose=false"])
    print(f"spiral example, {run.solver.steps_per_epoch} steps an epoch; checkpoint.npz + checkpoint.json, "
          f"median of {args.writes} writes")
    print(f"{'epoch':>8}  {'kB':>8}  {'ms':>7}")
    for epochs in args.epochs:
        size, ms = measure(write_now, run, epochs, args.writes)
        print(f"{epochs:>8}  {size / 1e3:>8.1f}  {ms:>7.2f}")


if __name__ == "__main__":
    main()
