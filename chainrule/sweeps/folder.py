"""A sweep's folder: one run folder per trial, sweep.csv (rewritten atomically as trials finish), the
validation histories the median rule needs, best.toml and sweep.png."""

from __future__ import annotations

import csv
import enum
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from chainrule.config import SCHEMA
from chainrule.files import atomic_write
from chainrule.report import pyplot, save_figure
from solver import Stop, StopReason

from .plan import Plan, Sampler, trial_config

MEDIAN_AFTER = 3  # finished trials needed before the median stopping rule applies


class TrialStatus(str, enum.Enum):
    """How a trial ended (its value is what sweep.csv says); ``finished`` ones are not run again on resume."""

    OK = "ok"  # trained to its end, or stopped early by patience or the median rule
    DIVERGED = "diverged"  # its loss became NaN or inf
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM: resumed with the sweep
    FAILED = "failed"  # raised, or its worker died, on every attempt

    @classmethod
    def after(cls, stop: StopReason | None) -> TrialStatus:
        if stop is None or stop.kind in (Stop.EARLY, Stop.MEDIAN):
            return cls.OK
        return cls.INTERRUPTED if stop.kind.by_signal else cls.DIVERGED

    @property
    def finished(self) -> bool:
        return self is not TrialStatus.INTERRUPTED


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
        return row is not None and row["status"].finished

    def medians(self) -> list[float]:
        done = [r["val_score_history"] for r in self.rows.values()
                if r["status"] is TrialStatus.OK and r.get("val_score_history")]
        if not self.plan.settings["median_stop"] or len(done) < MEDIAN_AFTER:
            return []
        longest = max(len(h) for h in done)
        return [float(np.median([h[k] for h in done if len(h) > k])) for k in range(longest)]

    def record(self, i: int, result: dict[str, Any]) -> None:
        self.rows[i] = {"trial": i, **self.sampler.values(i), **result, "attempts": self.attempts.get(i, 1)}
        if self.finished(i):
            self.sampler.tell(i, result.get("metric") if result["status"] is TrialStatus.OK else None)
        write_csv(self)


def write_csv(sweep: Sweep) -> None:
    paths = [d.path for d in sweep.plan.dists]
    fields = ["trial", *paths, sweep.plan.metric, "epochs", "seconds", "status", "attempts", "error"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for i in sorted(sweep.rows):
        row = sweep.rows[i]
        writer.writerow({**row, sweep.plan.metric: row.get("metric"), "status": row["status"].value,
                         "error": row.get("error", "")})
    atomic_write(sweep.folder / "sweep.csv", out.getvalue().encode())
    hist = {i: r.get("val_score_history", []) for i, r in sweep.rows.items()}
    atomic_write(sweep.folder / "histories.json", json.dumps(hist).encode())


def read_rows(folder: Path, plan: Plan) -> dict[int, dict[str, Any]]:
    """The rows of an earlier sweep.csv, with the validation histories the median rule needs."""
    path = folder / "sweep.csv"
    if not path.is_file():
        return {}
    hist = json.loads((folder / "histories.json").read_text()) if (folder / "histories.json").is_file() else {}
    rows = {}
    with open(path, newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                i = int(row["trial"])
                value = row.get(plan.metric) or None
                rows[i] = {**row, "trial": i, "metric": float(value) if value else None,
                           "status": TrialStatus(row["status"]), "attempts": int(row["attempts"]),
                           "val_score_history": hist.get(str(i), [])}
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"--resume: {str(path)!r} line {line} is damaged ({type(e).__name__}: {e}); "
                                 "restore it or start a new sweep") from None
    return rows


def best_trial(sweep: Sweep) -> int | None:
    """The finished trial of the highest metric, a tie going to the lowest trial number (never to the order in
    which trials finished): the one best.toml, the summary and sweep.png name."""
    scored = [(r["metric"], -i) for i, r in sweep.rows.items()
              if r["status"] is TrialStatus.OK and r["metric"] is not None]
    return -max(scored)[1] if scored else None


def write_summary(sweep: Sweep) -> None:
    best = best_trial(sweep)
    if best is not None:
        cfg = trial_config(sweep.plan, sweep.sampler.values(best))
        cfg["solver"]["verbose"], cfg["output"]["plot"] = True, True
        cfg["output"]["dir"] = str(sweep.folder.with_name(sweep.folder.name.removesuffix("-sweep") + "-best"))
        atomic_write(sweep.folder / "best.toml", tomli_w.dumps(as_written(cfg, sweep.plan.raw)).encode())
    write_picture(sweep)


def as_written(cfg: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """A resolved config as a person would write it: the keys the sweep's config set, and those that differ from
    their defaults (sampled values, absolute paths); a default the config never mentioned (a spiral's ``noise``
    in a digits sweep) is left out, and [sweep] too."""
    out: dict[str, Any] = {}
    for section, values in cfg.items():
        if section == "sweep":
            continue
        schema, given = SCHEMA.get(section, {}), raw.get(section, {})
        kept = {k: v for k, v in values.items() if k in given or k not in schema or v != schema[k][1]}
        if kept or section in raw:
            out[section] = kept
    return out


def write_picture(sweep: Sweep) -> bool:
    """sweep.png: for two continuous parameters the scatter of one against the other (log axes where the
    distribution is log) coloured by the metric; otherwise the metric against each parameter."""
    plt = pyplot()
    rows = [r for r in sweep.rows.values() if r["status"] is TrialStatus.OK and r["metric"] is not None]
    if plt is None or not rows:
        return False
    dists, metric = sweep.plan.dists, [r["metric"] for r in rows]
    if len(dists) == 2 and all(d.continuous for d in dists):
        fig, ax = plt.subplots(figsize=(6, 5))
        points = ax.scatter([float(r[dists[0].path]) for r in rows], [float(r[dists[1].path]) for r in rows],
                            c=metric, cmap="viridis", s=40)
        fig.colorbar(points, label=sweep.plan.metric)
        top = sweep.rows[best_trial(sweep)]  # type: ignore[index]  # rows is not empty: there is a best
        ax.scatter([float(top[dists[0].path])], [float(top[dists[1].path])], marker="*", s=260, c="red",
                   edgecolors="black", label=f"best: trial {top['trial']} ({top['metric']:.4f})", zorder=3)
        ax.legend(loc="best")
        ax.set(xlabel=dists[0].path, ylabel=dists[1].path, title=f"{len(rows)} trials")
        for d, set_scale in zip(dists, (ax.set_xscale, ax.set_yscale), strict=True):
            if d.kind == "loguniform" or d.log:
                set_scale("log")
    else:
        fig, axes = plt.subplots(1, len(dists), figsize=(4.5 * len(dists), 4), squeeze=False)
        for d, ax in zip(dists, axes[0], strict=True):
            xs = [r[d.path] if d.continuous else str(r[d.path]) for r in rows]
            ax.scatter([float(x) for x in xs] if d.continuous else xs, metric)
            at = next(i for i, r in enumerate(rows) if r["trial"] == best_trial(sweep))
            ax.scatter([float(xs[at])] if d.continuous else [xs[at]], [metric[at]], marker="*", s=260,
                       c="red", edgecolors="black", label=f"best: trial {rows[at]['trial']}", zorder=3)
            ax.legend(loc="best")
            ax.set(xlabel=d.path, ylabel=sweep.plan.metric)
            if d.kind == "loguniform" or d.log:
                ax.set_xscale("log")
    fig.tight_layout()
    save_figure(fig, sweep.folder / "sweep.png")
    plt.close(fig)
    return True
