"""A training run and its folder: a fresh or resumed run set up from a config, trained with a checkpoint and
history.csv after every epoch, and closed with metrics.json and curves.png."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from chainrule import checkpoint as ckpt
from chainrule.build import build_objects, load_data
from chainrule.config import RESUMABLE, ConfigError, apply_sets, read_config, resolve
from solver import Solver


def run_dir_for(cfg: dict[str, Any], config_path: Path) -> Path:
    """The output folder; an existing non-empty one is never overwritten: a numbered sibling is used instead."""
    base = Path(cfg["output"]["dir"] or Path("runs") / config_path.stem)
    path, n = base, 1
    while path.exists() and any(path.iterdir()):
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def differing(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Key paths whose values differ between two resolved configs, except those a resume may change."""
    flat_a = {f"{s}.{k}": v for s, d in a.items() for k, v in d.items()}
    flat_b = {f"{s}.{k}": v for s, d in b.items() for k, v in d.items()}
    return sorted(k for k in (flat_a.keys() | flat_b.keys()) - RESUMABLE if flat_a.get(k) != flat_b.get(k))


def setup(args: argparse.Namespace) -> tuple[dict[str, Any], Solver, Path, dict | None]:
    config_path = Path(args.config)
    cfg = resolve(apply_sets(read_config(args.config), args.set))
    checkpoint = None
    if args.resume:
        run_dir = Path(args.resume)
        meta, arrays = ckpt.read_checkpoint(run_dir)
        diff = differing(cfg, meta["config"])
        if diff:
            raise ConfigError(f"--resume: the config differs from the run's in {', '.join(diff)}")
        checkpoint = {"meta": meta, "arrays": arrays}
    _, solver = build_objects(cfg, load_data(cfg, config_path), config_path.parent)
    if checkpoint is not None:
        ckpt.restore(solver, checkpoint["meta"], checkpoint["arrays"])
    else:
        run_dir = run_dir_for(cfg, config_path)
    return cfg, solver, run_dir, checkpoint


def summary(metrics: dict[str, Any], run_dir: Path) -> str:
    parts = [f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items() if k != "stop_reason"]
    return "  ".join(parts + [f"run {run_dir}"])


def run(args: argparse.Namespace) -> int:
    cfg, solver, run_dir, _ = setup(args)
    return train_run(cfg, solver, run_dir)


def train_run(cfg: dict[str, Any], solver: Solver, run_dir: Path) -> int:
    """Train with a checkpoint and history.csv after every epoch; write metrics.json and curves.png; exit status."""
    ckpt.atomic_write(run_dir / "config.toml", tomli_w.dumps(cfg).encode())
    if solver.verbose:
        print(f"run directory: {run_dir}", file=sys.stderr)

    def on_epoch_end(s: Solver) -> None:
        ckpt.save_checkpoint(run_dir, s, cfg)
        write_history(run_dir, s)

    start = time.perf_counter()
    metrics = solver.train(on_epoch_end)
    metrics["seconds"] = round(sum(solver.epoch_seconds), 3)
    metrics["wall_seconds"] = round(time.perf_counter() - start, 3)
    ckpt.save_checkpoint(run_dir, solver, cfg)
    write_history(run_dir, solver)
    write_json(run_dir / "metrics.json", metrics)
    if cfg["output"]["plot"]:
        write_curves(run_dir, solver)
    if solver.stop_reason and not solver.stop_reason.startswith("early stop"):
        print(f"solver: {solver.stop_reason}; the best parameters so far are saved in {run_dir}", file=sys.stderr)
    print(summary(metrics, run_dir))
    return 1 if "stop_reason" in metrics and not metrics["stop_reason"].startswith("early stop") else 0


def history_rows(solver: Solver) -> list[dict[str, Any]]:
    steps = solver.steps_per_epoch
    rows = []
    for e in range(solver.epoch):
        losses = solver.loss_history[e * steps:(e + 1) * steps]
        rows.append({"epoch": e + 1, "loss": float(np.mean(losses)),
                     "train_acc": solver.train_acc_history[e], "val_acc": solver.val_acc_history[e],
                     "lr": solver.lr_history[e], "seconds": round(solver.epoch_seconds[e], 4)})
    return rows


def write_history(run_dir: Path, solver: Solver) -> None:
    """history.csv: one row per epoch (epoch, mean step loss, train_acc, val_acc, lr, seconds)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["epoch", "loss", "train_acc", "val_acc", "lr", "seconds"])
    writer.writeheader()
    writer.writerows(history_rows(solver))
    ckpt.atomic_write(run_dir / "history.csv", out.getvalue().encode())


def write_json(path: Path, obj: Any) -> None:
    ckpt.atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode())


def write_curves(run_dir: Path, solver: Solver) -> bool:
    """curves.png (loss per step, accuracies per epoch) when matplotlib is installed; returns whether it was written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(solver.loss_history, lw=0.8)
    ax1.set(xlabel="step", ylabel="loss", title="training loss")
    epochs = range(1, solver.epoch + 1)
    ax2.plot(epochs, solver.train_acc_history, label="train")
    ax2.plot(epochs, solver.val_acc_history, label="val")
    ax2.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    ax2.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    ckpt.atomic_write(run_dir / "curves.png", buffer.getvalue())
    return True
