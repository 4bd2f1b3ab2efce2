"""The Solver: minibatch training of any Layer with a loss, L2 regularization and an optimizer.

``python -m solver CONFIG`` trains from a TOML or JSON file; see chainrule.cli.
"""

from __future__ import annotations

if __name__ == "__main__":  # python -m solver: Ctrl-C while the imports below run is one line (chainrule.cli.launch)
    from chainrule.cli.launch import start

    start("solver")

import math
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from layers import Layer
from layers.kernels import threads as kernel_threads
from losses import LOSSES, Loss, Objective, Task
from optim import OPTIMIZERS, ExponentialDecay, Optimizer, Schedule, Stop, StopReason, blas_threads
from optim.batches import Augment, batches, check_augment, release_pages
from optim.resume import check_state


class OutputError(ValueError):
    """The model's outputs do not fit the targets (their shape, or a label beyond the model's scores)."""


class Solver:
    """Trains ``model`` on ``data`` = {X_train, y_train, X_val, y_val[, X_test, y_test]}.

    Each step: scores = model.forward(X); loss = data loss + reg * sum(W**2) over weight tensors;
    model.backward(dscores); grads += 2 reg W; optimizer.step. ``train()`` runs shuffled minibatch epochs from a
    seeded Generator, records ``loss_history`` (per step) and per epoch ``train_score_history``,
    ``val_score_history``, ``val_loss_history`` and ``lr_history``, keeps the parameters of the best epoch and
    restores them at the end; ``patience`` stops after that many epochs without improvement; a non-finite loss
    stops training and sets ``stop_reason``.

    What is measured is the loss's ``task`` (``losses.tasks``): accuracy for a classification loss
    (``train_acc_history``, ``val_acc_history`` and ``best_val_acc`` are the course's names), the best epoch
    the highest validation accuracy; R² for a regression loss such as ``"mse"`` (the RMSE in
    ``val_extra_history["rmse"]``), the best epoch the lowest validation loss.

    ``state_dict()``/``load_state_dict()``: everything but the model's arrays, so a Solver given another's state
    (over a model holding its parameters) continues exactly where it stopped. The lr lives in the optimizer: the
    schedule sets ``optimizer.lr`` before each step from ``optimizer.initial_lr`` (``Schedule.at_step``). The
    data is checked here, once (``Task.check_data``, and outputs against targets).

    ``augment(x, y, rng) -> (x, y)`` transforms each training batch (never validation, test or predictions),
    drawing from the Solver's Generator so that a resumed run draws the same; ``prefetch`` prepares the next
    batch in a background thread while the step runs (``optim.batches``). Each of ``loggers`` (TensorBoard and
    MLflow: ``chainrule.loggers``) gets ``log_step(solver, loss)`` after every step, ``log_epoch(solver)`` after
    every epoch and ``finish(solver, metrics)`` when ``train`` returns.
    """

    def __init__(
        self,
        model: Layer,
        data: dict[str, Any],
        *,
        loss: Loss | str = "softmax",
        optimizer: Optimizer | str = "sgd",
        reg: float = 0.0,
        batch_size: int = 100,
        epochs: int = 10,
        lr_decay: float = 1.0,
        schedule: Schedule | None = None,
        seed: int = 0,
        patience: int | None = None,
        num_train_samples: int = 1000,
        verbose: bool = True,
        threads: int | str = "auto",
        augment: Augment | None = None,
        prefetch: bool = False,
        loggers: list[Any] | tuple[Any, ...] = (),
    ) -> None:
        if not isinstance(model, Layer):
            raise TypeError(f"Solver: model must be a Layer, got {type(model).__name__}")
        self.model = model
        self.loss = LOSSES.lookup(loss)() if isinstance(loss, str) else loss
        if not isinstance(self.loss, Loss):
            raise TypeError(f"Solver: loss must be a Loss or a loss's name, got {type(self.loss).__name__}")
        self.task: Task = self.loss.task
        self.ignore_index: int | None = getattr(self.loss, "ignore_index", None)
        self.data = self.task.check_data(data, model.as_input)
        self.optimizer = OPTIMIZERS.lookup(optimizer)() if isinstance(optimizer, str) else optimizer
        check_settings(batch_size, epochs, num_train_samples, reg, patience, threads)
        self.objective = Objective(self.loss, reg)
        self.batch_size, self.epochs = batch_size, epochs
        self.schedule = schedule if schedule is not None else ExponentialDecay(lr_decay)
        self.seed, self.patience, self.num_train_samples, self.verbose = seed, patience, num_train_samples, verbose
        self.threads, self.augment, self.prefetch = threads, check_augment(augment), bool(prefetch)
        self.loggers = list(loggers)
        self.steps_per_epoch = max(1, math.ceil(len(self.data["X_train"]) / batch_size))
        self.rng = np.random.default_rng(seed)
        self.sample_rng = np.random.default_rng((seed, 2))  # measuring draws from its own stream, not training's
        self.stop_requested: tuple[Stop, str] | None = None
        self.on_batch_end: Callable[[Solver, float], None] | None = None
        self.epoch = self.bad_epochs = 0
        self.loss_history: list[float] = []
        self.train_score_history: list[float] = []
        self.val_score_history: list[float] = []
        self.val_loss_history: list[float] = []
        self.val_extra_history: dict[str, list[float]] = {name: [] for name in self.task.extra_names}
        self.lr_history: list[float] = []
        self.epoch_seconds: list[float] = []
        self.clip_history: list[int] = []  # steps of each epoch whose gradients the optimizer clipped
        self.clipped_before = 0
        self.best_val_score = -math.inf
        self.best_val_loss = math.inf
        self.best_epoch = 0  # the epoch whose parameters are kept as the best; 0 before the first
        self.snapshot_best()
        self.stop_reason: StopReason | None = None
        self.output_shape = self.check_outputs()  # checked once here; checkpoints and reports read it
        self.num_classes = self.output_shape[-1]

    train_acc_history = property(lambda self: self.train_score_history)  # the course's names, for accuracy
    val_acc_history = property(lambda self: self.val_score_history)
    best_val_acc = property(lambda self: self.best_val_score)

    def check_outputs(self) -> tuple[int, ...]:
        """One example's output shape, checked against the targets by the task (and every label against the
        number of scores): classes, or for a regression loss its outputs, are the last axis."""
        with self.model.mode(False):
            outputs = np.asarray(self.model.forward(self.data["X_train"][:1]))
        problem = self.task.check_outputs(outputs.shape, self.data["y_train"][:1].shape)
        if problem:
            raise OutputError(f"Solver: the model gives output of shape {outputs.shape} for one example of "
                             f"{self.task.target_word} {self.data['y_train'][:1].shape}; {problem}")
        for key in ("y_train", "y_val", "y_test"):
            if key in self.data:
                self.task.check_range(self.data[key], f"Solver data: {key}", outputs.shape[-1], self.ignore_index)
        if self.ignore_index is not None and np.all(self.data["y_train"] == self.ignore_index):
            raise ValueError(f"Solver data: every label of y_train is ignore_index ({self.ignore_index}): nothing "
                             "to learn from")
        return outputs.shape

    def step(self, X: NDArray[np.floating], y: NDArray[Any]) -> float:
        """One forward, loss plus L2 penalty, backward and update. Returns the total loss."""
        model = self.model
        if not model.training:
            model.train()
        params = model.params
        loss = self.objective.forward(model.forward(X), y, params)
        model.backward_params(self.objective.backward())  # nobody needs d loss / d X: that product is skipped
        grads = model.grads
        self.objective.add_penalty_grad(params, grads)
        self.optimizer.step(params, grads)
        return loss

    def outputs(self, X: NDArray[Any], batch_size: int = 1000) -> NDArray[np.floating]:
        """The model's outputs for X, in eval mode (then the mode it had) in batches."""
        parts = []
        with self.model.mode(False):
            for i in range(0, len(X), batch_size):
                parts.append(self.model.forward(X[i:i + batch_size]))
                release_pages(X)  # a memory-mapped X leaves the process's memory as it is read
        dtype = self.model.params_dtype() or np.float64
        return np.concatenate(parts) if parts else np.zeros((0, *self.output_shape[1:]), dtype)

    def predict(self, X: NDArray[Any], batch_size: int = 1000) -> NDArray[Any]:
        """The task's predictions for X: class indices of the highest score, or for a regression loss the
        predicted values shaped as the targets ((N,) or (N, K))."""
        return self.task.predict(self.outputs(X, batch_size), (len(X), *self.data["y_train"].shape[1:]))

    def check_accuracy(self, X: NDArray[Any], y: NDArray[Any], num_samples: int | None = None) -> float:
        """The task's score (accuracy, or R²), on a random subsample of ``num_samples`` when given."""
        if num_samples is not None and len(X) > num_samples:
            idx = self.sample_rng.choice(len(X), num_samples, replace=False)
            X, y = X[idx], y[idx]
        return self.task.score(self.predict(X), y, self.ignore_index) if len(y) else 0.0

    def measure(self, X: NDArray[Any], y: NDArray[Any], batch_size: int = 1000) -> tuple[float, dict[str, float]]:
        """Data loss plus the L2 penalty, and the task's measures by name (its score first), in one pass."""
        if not len(y):
            return 0.0, {name: 0.0 for name in (self.task.score_name, *self.task.extra_names)}
        outputs = self.outputs(X, batch_size)
        loss = self.loss.forward(outputs, y) + self.objective.penalty(self.model.params)
        predictions = self.task.predict(outputs, y.shape)
        return loss, self.task.measures(predictions, y, self.ignore_index)

    def train(self, on_epoch_end: Callable[[Solver], None] | None = None,
              on_stop: Callable[[Solver], None] | None = None,
              on_batch_end: Callable[[Solver, float], None] | None = None) -> dict[str, Any]:
        """Run the remaining epochs in train mode; returns the metrics dict.

        ``on_batch_end(self, loss)`` runs after each step, ``on_epoch_end(self)`` after each epoch,
        ``on_stop(self)`` once when training stops, with the last state still in the model (before the best
        parameters are restored). ``request_stop`` ends training after the current epoch. The model is left in
        the mode it was in.
        """
        threads = blas_threads(self.threads, self.model, self.batch_size)
        self.on_batch_end = on_batch_end
        with self.model.mode(True), threadpool_limits(limits=threads, user_api="blas"), kernel_threads(threads):
            return self.train_epochs(on_epoch_end, on_stop)

    def reopen(self, more_patience: bool = False, more_epochs: bool = False) -> None:
        """Let a stopped run go on: one stopped by a signal always; an early-stopped one when given
        ``more_patience`` (its count of epochs without improvement goes on) or ``more_epochs`` (a fresh count)."""
        kind = None if self.stop_reason is None else self.stop_reason.kind
        if kind is not None and (kind.by_signal or (kind is Stop.EARLY and (more_patience or more_epochs))):
            self.stop_reason, self.bad_epochs = None, self.bad_epochs if kind.by_signal or more_patience else 0

    def request_stop(self, kind: Stop, message: str) -> None:
        """Stop at the end of the current epoch (from a signal handler, say), for ``kind``, said in ``message``."""
        self.stop_requested = (kind, message)

    def train_epochs(self, on_epoch_end: Callable[[Solver], None] | None,
                     on_stop: Callable[[Solver], None] | None) -> dict[str, Any]:
        bar = tqdm(total=(self.epochs - self.epoch) * self.steps_per_epoch, unit="step", leave=False,
                   disable=not (self.verbose and sys.stderr.isatty()), dynamic_ncols=True)
        with bar, np.errstate(over="ignore", invalid="ignore"):  # a non-finite loss is reported instead
            while self.epoch < self.epochs and self.stop_reason is None:
                t0 = time.perf_counter()
                if not self.run_epoch(bar):
                    break
                self.end_epoch(time.perf_counter() - t0)
                for logger in self.loggers:
                    logger.log_epoch(self)
                if self.verbose:
                    bar.write(self.epoch_line(), file=sys.stderr)
                if on_epoch_end is not None:
                    on_epoch_end(self)
                if self.stop_requested and self.stop_reason is None:  # a signal, or on_epoch_end asked
                    kind, message = self.stop_requested
                    self.stop_reason = StopReason(kind, f"{message} after epoch {self.epoch}")
            if on_stop is not None:
                on_stop(self)
            self.restore_best()
            metrics = self.metrics()
            for logger in self.loggers:
                logger.finish(self, metrics)
            return metrics

    def run_epoch(self, bar: tqdm) -> bool:
        """One shuffled pass over the training set; False if the loss became NaN or inf."""
        self.clipped_before = self.optimizer.clipped
        X, y = self.data["X_train"], self.data["y_train"]
        order = self.rng.permutation(len(X))
        for it, (xb, yb) in enumerate(batches(X, y, order, self.batch_size, self.augment, self.rng, self.prefetch)):
            self.optimizer.lr = self.schedule.at_step(self.optimizer.initial_lr, self.epoch, self.optimizer.t)
            loss = self.step(xb, yb)
            self.loss_history.append(loss)
            if not math.isfinite(loss):
                self.stop_reason = StopReason(Stop.DIVERGED, (
                    f"loss became {loss} at epoch {self.epoch + 1}, iteration {it + 1}: "
                    f"training stopped; try a lower learning rate (lr is {self.optimizer.lr:g})"))
                return False
            for logger in self.loggers:
                logger.log_step(self, loss)
            if self.on_batch_end is not None:
                self.on_batch_end(self, loss)
            bar.update()
            if it % 10 == 0:
                bar.set_postfix(epoch=self.epoch + 1, loss=f"{loss:.4f}")
        return True

    def end_epoch(self, seconds: float) -> None:
        train_score = self.check_accuracy(self.data["X_train"], self.data["y_train"], self.num_train_samples)
        val_loss, measures = self.measure(self.data["X_val"], self.data["y_val"])
        val_score = measures[self.task.score_name]
        self.train_score_history.append(train_score)
        self.val_score_history.append(val_score)
        self.val_loss_history.append(val_loss)
        for name, values in self.val_extra_history.items():
            values.append(measures[name])
        self.lr_history.append(self.optimizer.lr)
        self.epoch_seconds.append(seconds)
        self.clip_history.append(self.optimizer.clipped - self.clipped_before)
        self.epoch += 1
        self.schedule.observe(val_loss)
        if self.task.improved(val_loss, val_score, self.best_val_loss, self.best_val_score):
            self.best_val_score, self.best_val_loss, self.best_epoch, self.bad_epochs = \
                val_score, val_loss, self.epoch, 0
            self.snapshot_best()
        else:
            self.bad_epochs += 1
            if self.patience is not None and self.bad_epochs >= self.patience:
                self.stop_reason = StopReason(
                    Stop.EARLY, f"early stop: no better {self.task.selected_by} for {self.patience} epochs")

    def epoch_line(self) -> str:
        loss = float(np.mean(self.loss_history[-self.steps_per_epoch:]))
        s = self.task.score_name
        extra = "".join(f"  val_{name} {values[-1]:.4g}" for name, values in self.val_extra_history.items())
        return (f"epoch {self.epoch}/{self.epochs}  loss {loss:.4f}  val_loss {self.val_loss_history[-1]:.4f}  "
                f"train_{s} {self.train_score_history[-1]:.4f}  val_{s} {self.val_score_history[-1]:.4f}"
                f"{extra}  lr {self.lr_history[-1]:.3g}")

    def epoch_lists(self) -> dict[str, list[Any]]:
        """The per-epoch history by column name (history.csv's columns after epoch and loss)."""
        s = self.task.score_name
        return {"val_loss": self.val_loss_history, f"train_{s}": self.train_score_history,
                f"val_{s}": self.val_score_history,
                **{f"val_{name}": values for name, values in self.val_extra_history.items()},
                "lr": self.lr_history, "seconds": self.epoch_seconds, "clipped": self.clip_history}

    def snapshot_best(self) -> None:
        """Copy the current parameters and buffers aside as the best so far."""
        self.best_params = {k: v.copy() for k, v in self.model.params.items()}
        self.best_buffers = {k: v.copy() for k, v in self.model.buffers.items()}

    def restore_best(self) -> None:
        """Copy the best parameters and buffers back into the model, in place."""
        for current, best in ((self.model.params, self.best_params), (self.model.buffers, self.best_buffers)):
            for key, value in best.items():
                current[key][...] = value

    def metrics(self) -> dict[str, Any]:
        """What the run ended with: ``best_val_<score>``; the task's measures (``train_acc`` and ``test_acc``;
        for a regression loss ``train_r2``, ``train_rmse``, ...) of the parameters the model holds now (the best
        epoch's, once training has restored them), on the whole training and test sets; ``epochs_run``;
        ``train_seconds``, the time of every epoch of the run, resumed ones included."""
        result: dict[str, Any] = {f"best_val_{self.task.score_name}":
                                  self.best_val_score if self.val_score_history else None}
        for split in ("train", "test") if "X_test" in self.data else ("train",):
            X, y = self.data[f"X_{split}"], self.data[f"y_{split}"]
            result.update({f"{split}_{name}": value for name, value in self.measure(X, y)[1].items()})
        result.update(epochs_run=self.epoch, train_seconds=round(sum(self.epoch_seconds), 3))
        if self.stop_reason is not None:
            result["stop_reason"] = self.stop_reason.message
        return result

    def state_dict(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        """Everything but the model's parameters and buffers needed to continue bit for bit: scalars
        (JSON-able: the epoch, the optimizer's scalars, the Generators' states, the best epoch and its scores,
        the stop reason, the history by column) and arrays (``best/``, ``best_buffer/``: the best epoch's
        parameters and buffers; ``optim/``: the optimizer's state)."""
        opt_scalars, opt_arrays = self.optimizer.state_dict()
        s = self.task.score_name
        scalars = {
            "epoch": self.epoch, "optimizer": opt_scalars,
            "rng": self.rng.bit_generator.state, "sample_rng": self.sample_rng.bit_generator.state,
            "generators": {k: g.bit_generator.state for k, g in self.model.generators().items()},
            "best_epoch": self.best_epoch, f"best_val_{s}": self.best_val_score if self.best_epoch else None,
            "best_val_loss": self.best_val_loss if self.best_epoch else None, "bad_epochs": self.bad_epochs,
            "stop_reason": None if self.stop_reason is None else self.stop_reason.as_json(),
            "schedule": self.schedule.state_dict(),
            "history": {"loss": list(self.loss_history), **{k: list(v) for k, v in self.epoch_lists().items()}},
        }
        arrays = {f"best/{k}": v for k, v in self.best_params.items()}
        arrays.update({f"best_buffer/{k}": v for k, v in self.best_buffers.items()})
        arrays.update({f"optim/{k}": v for k, v in opt_arrays.items()})
        return scalars, arrays

    def load_state_dict(self, scalars: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> None:
        """Continue from ``state_dict()``'s output: everything is checked first (a ValueError naming what does
        not fit this Solver and its model), then set; ``train()`` goes on from the stored epoch."""
        check_state(self, scalars, arrays)
        for key, g in self.model.generators().items():
            g.bit_generator.state = scalars["generators"][key]
        self.best_params = {k[5:]: v.copy() for k, v in arrays.items() if k.startswith("best/")}
        self.best_buffers = {k[12:]: v.copy() for k, v in arrays.items() if k.startswith("best_buffer/")}
        self.optimizer.load_state_dict(scalars["optimizer"], {k[6:]: v for k, v in arrays.items()
                                                             if k.startswith("optim/")})
        self.rng.bit_generator.state = scalars["rng"]
        self.sample_rng.bit_generator.state = scalars["sample_rng"]
        self.epoch, self.best_epoch, self.bad_epochs = scalars["epoch"], scalars["best_epoch"], scalars["bad_epochs"]
        best_score, best_loss = scalars[f"best_val_{self.task.score_name}"], scalars["best_val_loss"]
        self.best_val_score = -math.inf if best_score is None else best_score
        self.best_val_loss = math.inf if best_loss is None else best_loss
        self.stop_reason = StopReason.from_json(scalars["stop_reason"])
        self.schedule.load_state_dict(scalars["schedule"])
        history = scalars["history"]
        self.loss_history[:] = history["loss"]
        for column, values in self.epoch_lists().items():
            values[:] = history[column]


def check_settings(batch_size: Any, epochs: Any, num_train_samples: Any, reg: Any, patience: Any,
                   threads: Any) -> None:
    """The Solver's keyword arguments, each a ValueError naming it and the value that came."""
    counts = (("batch_size", batch_size, 1), ("epochs", epochs, 0), ("num_train_samples", num_train_samples, 1))
    for key, value, low in counts:
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"Solver: {key} must be an integer >= {low}, got {value!r}")
    if not (isinstance(reg, (int, float)) and not isinstance(reg, bool) and reg >= 0):
        raise ValueError(f"Solver: reg must be a number >= 0, got {reg!r}")
    if patience is not None and (not isinstance(patience, int) or patience < 1):
        raise ValueError(f"Solver: patience must be an integer >= 1 or None, got {patience!r}")
    if threads != "auto" and not (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1):
        raise ValueError(f"Solver: threads must be 'auto' or an integer >= 1, got {threads!r}")


if __name__ == "__main__":  # the command line belongs to the application, which may import every floor
    from chainrule.cli import solver_main

    sys.exit(solver_main())
