"""A sweep's folder: one run folder per trial, sweep.csv (rewritten atomically as trials finish), the
validation histories the median rule needs, best.toml and sweep.png."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from chainrule.checkpoint import atomic_write
from chainrule.report import pyplot, save_figure
from chainrule.sweep_plan import Plan, Sampler, trial_config

MEDIAN_AFTER = 3  # finished trials needed before the median stopping rule applies


@dataclass
class Sweep:
    """A sweep's folder, rows and execution state."""

    plan: Plan
    folder: Path
    sampler: Sampler
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    attempts: dict[int, int] = field(default_factory=dict)

    def trial_dir(self, i: int) -> Path:
        return self.folder / f"trial-{i:04d}"

    def finished(self, i: int) -> bool:
        row = self.rows.get(i)
        return row is not None and (row["status"] in ("ok", "diverged") or row["status"].startswith("failed"))

    def medians(self) -> list[float]:
        done = [r["val_acc_history"] for r in self.rows.values() if r["status"] == "ok" and r.get("val_acc_history")]
        if not self.plan.settings["median_stop"] or len(done) < MEDIAN_AFTER:
            return []
        longest = max(len(h) for h in done)
        return [float(np.median([h[k] for h in done if len(h) > k])) for k in range(longest)]

    def record(self, i: int, result: dict[str, Any]) -> None:
        self.rows[i] = {"trial": i, **self.sampler.values(i), **result, "attempts": self.attempts.get(i, 1)}
        if self.finished(i):
            self.sampler.tell(i, result.get("metric") if result["status"] == "ok" else None)
        write_csv(self)


def write_csv(sweep: Sweep) -> None:
    paths = [d.path for d in sweep.plan.dists]
    fields = ["trial", *paths, sweep.plan.metric, "epochs", "seconds", "status", "attempts", "error"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for i in sorted(sweep.rows):
        row = sweep.rows[i]
        writer.writerow({**row, sweep.plan.metric: row.get("metric"), "error": row.get("error", "")})
    atomic_write(sweep.folder / "sweep.csv", out.getvalue().encode())
    hist = {i: r.get("val_acc_history", []) for i, r in sweep.rows.items()}
    atomic_write(sweep.folder / "histories.json", json.dumps(hist).encode())


def read_rows(folder: Path, plan: Plan) -> dict[int, dict[str, Any]]:
    """The rows of an earlier sweep.csv, with the validation histories the median rule needs."""
    path = folder / "sweep.csv"
    if not path.is_file():
        return {}
    hist = json.loads((folder / "histories.json").read_text()) if (folder / "histories.json").is_file() else {}
    rows = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            i = int(row["trial"])
            value = row.get(plan.metric) or None
            rows[i] = {**row, "trial": i, "metric": float(value) if value else None,
                       "attempts": int(row["attempts"]), "val_acc_history": hist.get(str(i), [])}
    return rows


def best_trial(sweep: Sweep) -> int | None:
    scored = [(r["metric"], -i) for i, r in sweep.rows.items() if r["status"] == "ok" and r["metric"] is not None]
    return -max(scored)[1] if scored else None


def write_summary(sweep: Sweep) -> None:
    best = best_trial(sweep)
    if best is not None:
        cfg = trial_config(sweep.plan, sweep.sampler.values(best))
        cfg["solver"]["verbose"], cfg["output"]["plot"], cfg["output"]["dir"] = True, True, ""
        atomic_write(sweep.folder / "best.toml", tomli_w.dumps(cfg).encode())
    write_picture(sweep)


def write_picture(sweep: Sweep) -> bool:
    """sweep.png: for two continuous parameters the scatter of one against the other (log axes where the
    distribution is log) coloured by the metric; otherwise the metric against each parameter."""
    plt = pyplot()
    rows = [r for r in sweep.rows.values() if r["status"] == "ok" and r["metric"] is not None]
    if plt is None or not rows:
        return False
    dists, metric = sweep.plan.dists, [r["metric"] for r in rows]
    if len(dists) == 2 and all(d.continuous for d in dists):
        fig, ax = plt.subplots(figsize=(6, 5))
        points = ax.scatter([float(r[dists[0].path]) for r in rows], [float(r[dists[1].path]) for r in rows],
                            c=metric, cmap="viridis", s=40)
        fig.colorbar(points, label=sweep.plan.metric)
        ax.set(xlabel=dists[0].path, ylabel=dists[1].path, title=f"{len(rows)} trials")
        for d, set_scale in zip(dists, (ax.set_xscale, ax.set_yscale), strict=True):
            if d.kind == "loguniform" or d.log:
                set_scale("log")
    else:
        fig, axes = plt.subplots(1, len(dists), figsize=(4.5 * len(dists), 4), squeeze=False)
        for d, ax in zip(dists, axes[0], strict=True):
            xs = [r[d.path] if d.continuous else str(r[d.path]) for r in rows]
            ax.scatter([float(x) for x in xs] if d.continuous else xs, metric)
            ax.set(xlabel=d.path, ylabel=sweep.plan.metric)
            if d.kind == "loguniform" or d.log:
                ax.set_xscale("log")
    fig.tight_layout()
    save_figure(fig, sweep.folder / "sweep.png")
    plt.close(fig)
    return True
