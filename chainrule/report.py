"""What a run shows: the model summary, curves.png, metrics.json and the closing line (history.csv: ``history``)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.files import atomic_write
from solver import Solver


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode())


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save_figure(fig: Any, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    atomic_write(path, buffer.getvalue())


def write_curves(run_dir: Path, solver: Solver) -> bool:
    """curves.png: training loss per step with validation loss per epoch (log axis when it spans two decades
    or more), accuracies per epoch with the best epoch marked, and the learning rate. False without matplotlib."""
    plt = pyplot()
    if plt is None or not solver.epoch:
        return False
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 4))
    steps = solver.steps_per_epoch
    epochs = np.arange(1, solver.epoch + 1)
    ax1.plot(np.arange(1, len(solver.loss_history) + 1) / steps, solver.loss_history, lw=0.6, label="train (step)")
    ax1.plot(epochs, solver.val_loss_history, "o-", ms=3, label="val (epoch)")
    losses = np.array([v for v in [*solver.loss_history, *solver.val_loss_history] if np.isfinite(v) and v > 0])
    if losses.size and losses.max() / losses.min() >= 100:
        ax1.set_yscale("log")
    ax1.set(xlabel="epoch", ylabel="loss", title="loss")
    ax1.legend()
    best = solver.best_epoch  # as the Solver chose it, by its task
    ax2.plot(epochs, solver.train_score_history, label="train")
    ax2.plot(epochs, solver.val_score_history, label="val")
    ax2.axvline(best, color="gray", ls="--", lw=0.8, label=f"best epoch {best}")
    measure = solver.task.score_label
    ax2.set(xlabel="epoch", ylabel=measure, title=measure)
    ax2.legend()
    ax3.plot(epochs, solver.lr_history)
    ax3.set(xlabel="epoch", ylabel="learning rate", title="learning rate")
    fig.tight_layout()
    save_figure(fig, run_dir / "curves.png")
    plt.close(fig)
    return True


def summary_line(metrics: dict[str, Any], run_dir: Path) -> str:
    def show(v: Any) -> str:
        return "-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)

    parts = [f"{k} {show(v)}" for k, v in metrics.items() if k != "stop_reason"]
    return "  ".join(parts + [f"run {run_dir}"])
