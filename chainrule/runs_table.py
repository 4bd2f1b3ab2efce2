"""``chainrule runs [DIR]``: the run folders under DIR (sweeps' trials too) in a table: name, status, epochs, best
validation score, test score, training seconds, and the config keys whose values differ between them.

A folder is a run when it holds ``config.toml`` or ``checkpoint.json``. Its status: ``running`` while a process
holds its lock; ``finished`` when training ended (its epochs done, or stopped early); ``stopped`` when a signal
or a non-finite loss ended it, or it was killed after a checkpoint; ``damaged`` when its files cannot be read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from chainrule.config import ConfigError
from chainrule.files import RunLock
from chainrule.loggers import flat_config

COLUMNS = ("run", "status", "epochs", "best_val", "test", "seconds")
NOT_RUNS = {"tensorboard", "mlruns", "mlartifacts"}  # the loggers' folders: never a run, not looked inside
WIDEST = 40  # a longer value (a list of layers) is cut in the table; --json has it whole
SKIPPED = {"output.dir", "output.mlflow_parent_run", "model.import_dirs", "data.path"}


def run_folders(root: Path) -> list[Path]:
    """Every folder under ``root`` (itself included) holding a run's config or checkpoint, by path."""
    found = [root] if is_run(root) else []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in NOT_RUNS)
        found += [Path(dirpath) / d for d in dirnames if is_run(Path(dirpath) / d)]
    return found


def is_run(folder: Path) -> bool:
    return (folder / "config.toml").is_file() or (folder / "checkpoint.json").is_file()


def read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    value = json.loads(path.read_text())
    if not isinstance(value, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return value


def describe(folder: Path, root: Path) -> dict[str, Any]:
    """One row: the folder's name (relative to ``root``), status, numbers and flattened config."""
    name = str(folder.relative_to(root)) if folder != root else folder.name
    row: dict[str, Any] = {"run": name, "status": "damaged", "epochs": None, "best_val": None, "test": None,
                           "seconds": None, "config": {}}
    try:
        metrics, meta = read_json(folder / "metrics.json"), read_json(folder / "checkpoint.json")
        if meta is not None:
            row["config"] = flat_config(meta["config"])
        elif (folder / "config.toml").is_file():
            from chainrule.config import read_config
            row["config"] = flat_config(read_config(str(folder / "config.toml")))
    except (ValueError, KeyError, TypeError, OSError, ConfigError):
        return row
    source = metrics or meta or {}
    row["epochs"] = source.get("epochs_run", source.get("epoch"))
    row["best_val"] = next((v for k, v in source.items() if k.startswith("best_val_") and k != "best_val_loss"),
                           None)
    row["test"] = next((v for k, v in (metrics or {}).items() if k in ("test_acc", "test_r2")), None)
    row["seconds"] = (metrics or {}).get("train_seconds")
    stopped = (metrics or {}).get("stop_reason") or (meta or {}).get("stop_reason")
    early = isinstance(stopped, str) and stopped.startswith("early stop") or \
        isinstance(stopped, dict) and stopped.get("kind") == "early stop"
    if RunLock(folder).held():
        row["status"] = "running"
    elif metrics is not None and (not stopped or early):
        row["status"] = "finished"
    else:
        row["status"] = "stopped"
    return row


def differing_keys(rows: list[dict[str, Any]]) -> list[str]:
    """The config keys whose values are not the same in every row whose config could be read."""
    rows = [row for row in rows if row["config"]]
    keys = sorted({k for row in rows for k in row["config"]} - SKIPPED)
    return [k for k in keys if len({json.dumps(row["config"].get(k)) for row in rows}) > 1]


def table(root: Path, sort: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows under ``root``, sorted by ``sort`` (a column or a config key; missing values last), and the
    config keys that differ between them."""
    if not root.is_dir():
        raise ConfigError(f"runs: {str(root)!r} is not a folder")
    rows = [describe(folder, root) for folder in run_folders(root)]
    keys = differing_keys(rows)
    if sort is not None:
        if sort not in COLUMNS and not any(sort in row["config"] for row in rows):
            raise ConfigError(f"runs --sort: {sort!r} is neither a column ({', '.join(COLUMNS)}) nor a config key "
                              "of these runs")

        def key(row: dict[str, Any]) -> tuple[bool, Any]:
            value = row[sort] if sort in COLUMNS else row["config"].get(sort)
            return value is None, value if isinstance(value, (int, float)) else str(value)

        rows.sort(key=key)
    return rows, keys


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= WIDEST else text[:WIDEST - 3] + "..."


def format_table(rows: list[dict[str, Any]], keys: list[str]) -> str:
    header = [*COLUMNS, *keys]
    lines = [header] + [[cell(row[c]) for c in COLUMNS] + [cell(row["config"].get(k)) for k in keys] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines)
