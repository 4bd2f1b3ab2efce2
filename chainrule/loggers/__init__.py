"""Where training shows up besides the run folder: TensorBoard (``tensorboard``, event files written with
tensorboardX) and MLflow (``mlflow``, a tracking store). A logger is any object with ``log_step(solver,
loss)``, ``log_epoch(solver)`` and ``finish(solver, metrics)``, given to ``Solver(loggers=[...])``; a config
asks for them by name in ``[output] loggers``. Both are optional extras.

    from chainrule.loggers import TensorBoardLogger
    solver = Solver(model, data, loggers=[TensorBoardLogger("runs/mine/tensorboard")])
"""

from __future__ import annotations

import json
from typing import Any

from chainrule.loggers.mlflow import MLflowLogger
from chainrule.loggers.tensorboard import TensorBoardLogger

__all__ = ["TensorBoardLogger", "MLflowLogger", "LOGGERS", "flat_config", "epoch_values"]

LOGGERS = {"tensorboard": TensorBoardLogger, "mlflow": MLflowLogger}


def flat_config(cfg: dict[str, Any]) -> dict[str, str | int | float | bool]:
    """The config as ``section.key`` -> value: numbers, strings and booleans as they are, anything else (the
    layers, a table) as its JSON text."""
    flat: dict[str, str | int | float | bool] = {}
    for section, values in cfg.items():
        for key, value in (values.items() if isinstance(values, dict) else [("", values)]):
            name = f"{section}.{key}" if key else section
            flat[name] = value if isinstance(value, (str, int, float, bool)) else json.dumps(value, sort_keys=True)
    return flat


def epoch_values(solver: Any, epoch: int | None = None) -> dict[str, float]:
    """An epoch's values (1-based; default the last) by history.csv's column: the mean step loss, then the
    Solver's per-epoch lists (val_loss, train_acc, val_acc or the regression measures, lr), without its seconds
    and clip counts."""
    epoch = solver.epoch if epoch is None else epoch
    per = solver.steps_per_epoch
    steps = solver.loss_history[(epoch - 1) * per:epoch * per]
    values = {"loss": float(sum(steps) / len(steps)) if steps else float("nan")}
    values.update({k: float(v[epoch - 1]) for k, v in solver.epoch_lists().items()
                   if k not in ("seconds", "clipped")})
    return values
