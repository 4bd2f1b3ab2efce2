"""MLflow: a run in a tracking store (by default a local SQLite database, which ``mlflow ui
--backend-store-uri sqlite:///mlflow.db`` shows; MLflow 3 refuses new file stores).

The run gets the flattened config as params, tags (the run folder, chainrule's version), a metric per epoch
per history.csv column with ``step`` = the epoch, the final metrics, and artifacts the application adds
(config.toml, curves.png, confusion.png, model.onnx). ``run_id`` reopens an existing run (a resumed training
appends to it); ``parent_run_id`` makes this run a child (a sweep's trial under the sweep's run). With
``buffered``, epochs are sent on ``flush`` only: a run folder flushes when it checkpoints, so a killed run
never sent an epoch its resume does again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

MAX_PARAM = 6000  # MLflow's longest param value


def client_for(tracking_uri: str) -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ImportError("the MLflow logger needs the mlflow extra: pip install -e '.[mlflow]'") from None
    return MlflowClient(tracking_uri=tracking_uri)


def artifact_location(tracking_uri: str) -> str | None:
    """For a SQLite store, ``mlartifacts`` beside the database (MLflow would use ./mlruns of whatever folder
    the first run started in); for a server, its own default (None)."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return (Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()


class MLflowLogger:
    """Logs a training to an MLflow run at ``tracking_uri`` (``experiment``: its name, made when missing)."""

    def __init__(self, tracking_uri: str, experiment: str = "chainrule", run_name: str | None = None,
                 params: dict[str, Any] | None = None, tags: dict[str, str] | None = None,
                 run_id: str | None = None, parent_run_id: str | None = None, buffered: bool = False) -> None:
        self.client, self.buffered = client_for(tracking_uri), buffered
        self.pending: list[Any] = []
        if run_id:
            self.run_id = self.client.get_run(run_id).info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
            return
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(
            experiment, artifact_location=artifact_location(tracking_uri))
        all_tags = dict(tags or {}, **({"mlflow.parentRunId": parent_run_id} if parent_run_id else {}))
        self.run_id = self.client.create_run(experiment_id, run_name=run_name, tags=all_tags).info.run_id
        if params:
            self.log_params(params)

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:MAX_PARAM]) for k, v in params.items()]
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params a batch
            self.client.log_batch(self.run_id, params=items[start:start + 100])

    def catch_up(self, solver: Any) -> None:
        """Send the epochs a resumed Solver has that the run lacks (a run killed between its checkpoint and
        sending that epoch): then every epoch is in MLflow once."""
        from chainrule.loggers import epoch_values

        sent = {m.step for m in self.client.get_metric_history(self.run_id, "loss")}
        for epoch in range(1, solver.epoch + 1):
            if epoch not in sent:
                self.log_metrics(epoch_values(solver, epoch), epoch)
        self.flush()

    def log_step(self, solver: Any, loss: float) -> None:
        """Nothing: MLflow gets a point per epoch (the step losses stay in steps.csv and TensorBoard)."""

    def log_epoch(self, solver: Any) -> None:
        from chainrule.loggers import epoch_values

        self.log_metrics(epoch_values(solver), solver.epoch)
        if not self.buffered:
            self.flush()

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.pending += [Metric(k, float(v), now, step) for k, v in values.items()]

    def flush(self) -> None:
        for start in range(0, len(self.pending), 1000):  # MLflow takes at most 1000 metrics a batch
            self.client.log_batch(self.run_id, metrics=self.pending[start:start + 1000])
        self.pending.clear()

    def finish(self, solver: Any, metrics: dict[str, Any]) -> None:
        """The final metrics (``final/test_acc``, ...) at the last epoch; the run marked finished, or killed
        when training stopped on a signal or a non-finite loss."""
        numbers = {f"final/{k}": float(v) for k, v in metrics.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None}
        self.log_metrics(numbers, solver.epoch)
        reason = getattr(solver, "stop_reason", None)
        killed = reason is not None and (reason.kind.by_signal or reason.kind.exit_code == 1)
        self.close("KILLED" if killed else "FINISHED")

    def close(self, status: str = "FINISHED") -> None:
        self.flush()
        self.client.set_terminated(self.run_id, status=status)

    def log_artifacts(self, paths: list[Path]) -> None:
        for path in paths:
            if Path(path).is_file():
                self.client.log_artifact(self.run_id, str(path))
