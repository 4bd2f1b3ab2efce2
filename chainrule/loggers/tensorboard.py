"""TensorBoard: event files under a folder, written with tensorboardX (neither TensorFlow nor PyTorch needed).

Every scalar's x-axis is the optimizer step: ``train/loss`` after each step; after each epoch ``epoch/loss`` (the
epoch's mean), ``epoch/val_loss``, the task's scores (``epoch/train_acc``, ``epoch/val_acc``, or R² and
RMSE), ``epoch/lr``, ``epoch/epoch`` and, with gradient clipping, ``epoch/grad_norm`` (the mean of the epoch's
unclipped norms). With ``histograms``, each parameter and its gradient every epoch. At the end, the
hyperparameters with the final metrics for the HParams view (the ``hparams`` subfolder).

A resumed run opens the folder with ``purge_step`` just after its checkpoint's step: TensorBoard then drops what
a killed run wrote after that step, so no step is shown twice.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any


def summary_writer() -> Any:
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ImportError("the TensorBoard logger needs the tensorboard extra: pip install -e '.[tensorboard]'"
                          ) from None
    return SummaryWriter


class TensorBoardLogger:
    """Writes a run's curves to ``log_dir`` for ``tensorboard --logdir``; ``hparams`` (a flat dict) go to the
    HParams view with the final metrics. ``purge_step``: the first step a resumed run writes again."""

    def __init__(self, log_dir: str | Path, histograms: bool = False, hparams: dict[str, Any] | None = None,
                 purge_step: int | None = None, flush_secs: int = 5) -> None:
        self.log_dir, self.histograms, self.hparams = Path(log_dir), histograms, dict(hparams or {})
        self.writer = summary_writer()(logdir=str(self.log_dir), purge_step=purge_step or None,
                                       flush_secs=flush_secs, max_queue=1000)
        self.norms: list[float] = []

    def log_step(self, solver: Any, loss: float) -> None:
        step = len(solver.loss_history)
        self.writer.add_scalar("train/loss", loss, step)
        norm = getattr(solver.optimizer, "grad_norm", None)
        if norm is not None:
            self.norms.append(norm)

    def log_epoch(self, solver: Any) -> None:
        from chainrule.loggers import epoch_values

        step = len(solver.loss_history)
        values = {**epoch_values(solver), "epoch": solver.epoch}
        if self.norms:
            values["grad_norm"] = sum(self.norms) / len(self.norms)
            self.norms.clear()
        for name, value in values.items():
            self.writer.add_scalar(f"epoch/{name}", value, step)
        if self.histograms:
            grads = solver.model.grads
            for name, value in solver.model.params.items():
                self.writer.add_histogram(f"weights/{name}", value, step)
                if name in grads:
                    self.writer.add_histogram(f"grads/{name}", grads[name], step)

    def flush(self) -> None:
        self.writer.flush()

    def finish(self, solver: Any, metrics: dict[str, Any]) -> None:
        """The hyperparameters and the final numeric metrics, then close the files."""
        final = {f"final/{k}": float(v) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if self.hparams:
            shutil.rmtree(self.log_dir / "hparams", ignore_errors=True)  # one session: the run's latest end
            self.writer.add_hparams(self.hparams, final, name="hparams")
        self.writer.close()
