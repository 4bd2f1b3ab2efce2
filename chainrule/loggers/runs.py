"""The loggers a config run asks for in ``[output] loggers``, made for its run folder: TensorBoard's events in
``RUN/tensorboard/``; the MLflow run's store and id in ``RUN/mlflow.json``, so a resume, ``evaluate`` and
``export`` reach the same MLflow run."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import chainrule
from chainrule.config import ConfigError
from chainrule.loggers import LOGGERS, MLflowLogger, TensorBoardLogger, flat_config
from layers.saving import atomic_write

MLFLOW_FILE = "mlflow.json"
EXTRAS = {"tensorboard": "tensorboardX", "mlflow": "mlflow"}


def check_loggers(names: list[Any]) -> None:
    """Each name known and its extra installed, or a ConfigError in one line naming it."""
    for name in names:
        if name not in LOGGERS:
            raise ConfigError(f"output.loggers: unknown logger {name!r}; known: {', '.join(LOGGERS)}")
        if importlib.util.find_spec(EXTRAS[name]) is None:
            raise ConfigError(f"output.loggers: {name!r} needs the {name} extra: pip install -e '.[{name}]'")


def tracking_uri(cfg: dict[str, Any], run_dir: Path) -> str:
    """``MLFLOW_TRACKING_URI``, else ``[output] mlflow_uri``, else a SQLite store next to the runs folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or cfg["output"]["mlflow_uri"] or \
        f"sqlite:///{(run_dir.resolve().parent.parent / 'mlflow.db')}"


def run_loggers(cfg: dict[str, Any], run_dir: Path, solver: Any, resumed: bool) -> list[Any]:
    """The config's loggers for this run (a resumed one continues its TensorBoard curves from its checkpoint's
    step and its MLflow run)."""
    names = cfg["output"]["loggers"]
    check_loggers(names)
    made: list[Any] = []
    if "tensorboard" in names:
        made.append(TensorBoardLogger(run_dir / "tensorboard", cfg["output"]["histograms"], flat_config(cfg),
                                      purge_step=len(solver.loss_history) + 1 if resumed else None))
    if "mlflow" in names:
        made.append(mlflow_logger(cfg, run_dir))
        if resumed:
            made[-1].catch_up(solver)
    return made


def watch_lines(cfg: dict[str, Any], run_dir: Path) -> list[str]:
    """How to watch this run in each of its loggers, a line each."""
    lines = []
    if "tensorboard" in cfg["output"]["loggers"]:
        lines.append(f"tensorboard: tensorboard --logdir {run_dir / 'tensorboard'}")
    saved = read_mlflow_file(run_dir) if "mlflow" in cfg["output"]["loggers"] else None
    if saved:
        lines.append(f"mlflow: mlflow ui --backend-store-uri {saved['tracking_uri']} (run {saved['run_id']})")
    return lines


def mlflow_logger(cfg: dict[str, Any], run_dir: Path) -> MLflowLogger:
    saved = read_mlflow_file(run_dir)
    if saved:
        return MLflowLogger(saved["tracking_uri"], run_id=saved["run_id"], buffered=True)
    uri = tracking_uri(cfg, run_dir)
    tags = {"chainrule.run_dir": str(run_dir.resolve()), "chainrule.version": chainrule.__version__}
    logger = MLflowLogger(uri, run_name=run_dir.name, params=flat_config(cfg), tags=tags, buffered=True,
                          parent_run_id=cfg["output"]["mlflow_parent_run"] or None)
    atomic_write(run_dir / MLFLOW_FILE, json.dumps({"tracking_uri": uri, "run_id": logger.run_id}).encode())
    return logger


def sweep_run(cfg: dict[str, Any], folder: Path) -> MLflowLogger | None:
    """The MLflow run of a sweep whose config asks for MLflow (its trials' runs become its children), made or,
    for a resumed sweep, reopened; None when the config does not ask for it."""
    if "mlflow" not in cfg["output"]["loggers"]:
        return None
    check_loggers(cfg["output"]["loggers"])
    return mlflow_logger(cfg, folder)


def read_mlflow_file(run_dir: Path) -> dict[str, str] | None:
    path = run_dir / MLFLOW_FILE
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
        return {"tracking_uri": str(saved["tracking_uri"]), "run_id": str(saved["run_id"])}
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{path}: not the MLflow run file chainrule writes ({{tracking_uri, run_id}})") from None


def add_artifacts(run_dir: Path, paths: list[Path]) -> None:
    """Files written after training (confusion.png by evaluate, model.onnx by export) added to the run's MLflow
    run, when it has one and mlflow is installed."""
    saved = read_mlflow_file(run_dir)
    if saved and importlib.util.find_spec("mlflow") is not None:
        MLflowLogger(saved["tracking_uri"], run_id=saved["run_id"]).log_artifacts(paths)
