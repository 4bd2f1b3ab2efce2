"""The Solver: minibatch training of any Layer with a loss, L2 regularization and an optimizer.

``python -m solver CONFIG`` trains from a TOML or JSON file; see chainrule.cli.
"""

from __future__ import annotations

if __name__ == "__main__":  # python -m solver: Ctrl-C while the imports below run is one line (chainrule.cli.launch)
    from chainrule.cli.launch import start

    start("solver")

import contextlib
import enum
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_info, threadpool_limits
from tqdm.auto import tqdm

from layers import Layer
from losses import LOSSES, Loss, Objective, is_weight, r2_score, rmse
from optim import OPTIMIZERS, ExponentialDecay, Optimizer, Schedule

DATA_KEYS = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")


def model_dtype(model: Layer) -> np.dtype | None:
    """The floating dtype of the model's parameters, or None for a model without any."""
    dtypes = {p.dtype for p in model.params.values() if p.dtype.kind == "f"}
    return dtypes.pop() if len(dtypes) == 1 else None


def takes_indices(model: Layer) -> bool:
    """Whether the model reads integer indices (it holds a layer with ``integer_input``, an Embedding)."""
    return any(getattr(layer, "integer_input", False) for _, layer in model.named_layers())


def check_data(data: dict[str, Any], dtype: np.dtype | None = None, indices: bool = False,
               regression: bool = False) -> dict[str, NDArray[Any]]:
    """Validate the data dict: the four required arrays, optional test arrays, matching lengths. Inputs are
    converted once, here, to ``dtype`` (the model's: numpy's float64 data for a float32 model, or integer
    pixels), except integer inputs of a model that reads indices (``indices``: an Embedding); layers themselves
    stay strict about dtypes. Labels are integers, or for a ``regression`` loss real targets (N,) or (N, K),
    converted to ``dtype`` too."""
    unknown = sorted(set(data) - set(DATA_KEYS))
    if unknown:
        raise KeyError(f"Solver data: unknown keys {unknown}; allowed: {', '.join(DATA_KEYS)}")
    missing = [k for k in DATA_KEYS[:4] if k not in data]
    if ("X_test" in data) != ("y_test" in data):
        missing.append("y_test" if "X_test" in data else "X_test")
    if missing:
        raise KeyError(f"Solver data: missing {', '.join(missing)}")
    out = {k: np.asarray(v) for k, v in data.items()}
    for split in ("train", "val", "test"):
        if f"X_{split}" not in out:
            continue
        X, y = out[f"X_{split}"], out[f"y_{split}"]
        if X.dtype.kind not in "fiu":
            raise TypeError(f"Solver data: X_{split} must be real numbers, got {X.dtype}")
        target = dtype if dtype is not None else X.dtype if X.dtype.kind == "f" else np.dtype(np.float32)
        if X.dtype != target and not (indices and X.dtype.kind in "iu"):
            out[f"X_{split}"] = X = to_dtype(X, target, f"X_{split}")
        if regression:
            if y.dtype.kind not in "iuf" or y.ndim not in (1, 2):
                raise ValueError(f"Solver data: y_{split} must be real-valued targets for a regression loss, (N,) "
                                 f"or (N, K) for K outputs, got {y.dtype} of shape {y.shape}")
            out[f"y_{split}"] = y = to_dtype(y, target, f"y_{split}")
            if not np.isfinite(y).all():
                raise ValueError(f"Solver data: y_{split} has NaN or inf, first in row "
                                 f"{int(np.argmax(~np.isfinite(y.reshape(len(y), -1)).all(axis=1)))}")
        elif y.dtype.kind not in "iu" or y.ndim not in (1, 2):
            raise ValueError(f"Solver data: y_{split} must be integer labels, (N,) or (N, T) for a label at every "
                             f"step of a sequence, got {y.dtype} of shape {y.shape}")
        if len(X) != len(y):
            raise ValueError(f"Solver data: X_{split} has {len(X)} rows but y_{split} has {len(y)}")
    return out


def to_dtype(X: NDArray[Any], dtype: np.dtype, name: str) -> NDArray[Any]:
    """``X`` as ``dtype``; values beyond its range are a ValueError, not a silent inf."""
    with np.errstate(over="ignore"):
        converted = X.astype(dtype)
    if X.dtype.kind == "f" and not np.array_equal(np.isfinite(converted), np.isfinite(X)):
        raise ValueError(f"Solver data: {name} has values beyond {dtype} (largest {np.finfo(dtype).max:.3g}); "
                         f"scale the data or use a {X.dtype} model (model.astype(np.{X.dtype}))")
    return converted


def check_labels(data: dict[str, NDArray[Any]], classes: int, ignore: int | None = None) -> None:
    """Every label in [0, C), C being the model's number of scores, or the loss's ``ignore_index``."""
    for key in ("y_train", "y_val", "y_test"):
        y = data.get(key)
        if y is not None and ignore is not None:
            y = y[y != ignore]
        if y is not None and y.size and (y.min() < 0 or y.max() >= classes):
            raise ValueError(f"Solver data: {key} has labels in [{y.min()}, {y.max()}], "
                             f"but the model gives {classes} scores (labels 0..{classes - 1})")


class Stop(enum.Enum):
    """Why training ended before its last epoch, with the exit status a command reports for it."""

    EARLY = "early stop"
    MEDIAN = "median stop"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    TERMINATED = "terminated"

    @property
    def exit_code(self) -> int:
        return {Stop.DIVERGED: 1, Stop.INTERRUPTED: 130, Stop.TERMINATED: 143}.get(self, 0)

    @property
    def by_signal(self) -> bool:
        return self in (Stop.INTERRUPTED, Stop.TERMINATED)


@dataclass(frozen=True)
class StopReason:
    """A stop's kind and its message in words ("early stop: no better validation accuracy for 5 epochs")."""

    kind: Stop
    message: str

    def __str__(self) -> str:
        return self.message

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind.value, "message": self.message}

    @classmethod
    def from_json(cls, value: Any) -> StopReason | None:
        """The saved form back: a dict from ``as_json``, or the message alone as checkpoints of format 4 kept it."""
        if value is None:
            return None
        if isinstance(value, dict):
            return cls(Stop(value["kind"]), str(value["message"]))
        kind = next((k for k in Stop if str(value).startswith(k.value)), Stop.DIVERGED)  # format 4 kept words only
        return cls(kind, str(value))


AUTO_MIN_FLOPS = 10e6  # below this per matrix product, a second BLAS thread costs more than it gives (README)


def largest_matmul_flops(model: Layer, batch_size: int) -> float:
    """2 N D M for the largest weight (D, M) of the model at a batch of N: the biggest product of a step."""
    return max((2.0 * batch_size * w.shape[0] * float(np.prod(w.shape[1:])) for w in model.params.values()
                if is_weight(w)), default=0.0)


@contextmanager
def in_mode(model: Layer, training: bool) -> Iterator[Layer]:
    """Run the block with ``model`` in train (True) or eval (False) mode, then put back the mode it had."""
    was_training = model.training
    model.train(training)
    try:
        yield model
    finally:
        model.train(was_training)


def eval_mode(model: Layer) -> contextlib.AbstractContextManager[Layer]:
    """``in_mode(model, False)``: for measuring, predicting and shape inference."""
    return in_mode(model, False)


class Solver:
    """Trains ``model`` on ``data`` = {X_train, y_train, X_val, y_val[, X_test, y_test]}.

    Each step: scores = model.forward(X); loss = data loss + reg * sum(W**2) over
    weight tensors; model.backward(dscores); grads += 2 reg W; optimizer.step.
    ``train()`` runs shuffled minibatch epochs from a seeded Generator, records
    ``loss_history`` (per step), ``train_score_history``, ``val_score_history`` and
    ``val_loss_history`` (per epoch), keeps the parameters of the best epoch and
    restores them at the end. ``patience`` stops after that many epochs without
    improvement. A non-finite loss stops training and sets ``stop_reason``.

    The score is the loss's: accuracy for a classification loss (``score_name`` "acc"; the best epoch has the
    highest validation accuracy; ``train_acc_history``, ``val_acc_history`` and ``best_val_acc`` are the
    course's names for the same numbers), R² for a regression loss such as ``"mse"`` (``score_name`` "r2"; the
    best epoch has the lowest validation loss; ``val_rmse_history`` too).

    The data is checked here, once: the arrays, their lengths, and every label against the
    model's number of scores. A dtype other than the model's is an error from its first layer.
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
    ) -> None:
        if not isinstance(model, Layer):
            raise TypeError(f"Solver: model must be a Layer, got {type(model).__name__}")
        self.model = model
        self.loss = LOSSES.lookup(loss)() if isinstance(loss, str) else loss
        if not isinstance(self.loss, Loss):
            raise TypeError(f"Solver: loss must be a Loss or a loss's name, got {type(self.loss).__name__}")
        self.regression = self.loss.task == "regression"
        self.score_name = "r2" if self.regression else "acc"
        self.data = check_data(data, model_dtype(model), takes_indices(model), self.regression)
        self.optimizer = OPTIMIZERS.lookup(optimizer)() if isinstance(optimizer, str) else optimizer
        counts = (("batch_size", batch_size, 1), ("epochs", epochs, 0), ("num_train_samples", num_train_samples, 1))
        for key, value, low in counts:
            if not isinstance(value, int) or value < low:
                raise ValueError(f"Solver: {key} must be an integer >= {low}, got {value!r}")
        if not (isinstance(reg, (int, float)) and not isinstance(reg, bool) and reg >= 0):
            raise ValueError(f"Solver: reg must be a number >= 0, got {reg!r}")
        if patience is not None and (not isinstance(patience, int) or patience < 1):
            raise ValueError(f"Solver: patience must be an integer >= 1 or None, got {patience!r}")
        self.objective = Objective(self.loss, reg)
        self.batch_size, self.epochs = batch_size, epochs
        self.schedule = schedule if schedule is not None else ExponentialDecay(lr_decay)
        if threads != "auto" and not (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1):
            raise ValueError(f"Solver: threads must be 'auto' or an integer >= 1, got {threads!r}")
        self.seed, self.patience, self.num_train_samples, self.verbose = seed, patience, num_train_samples, verbose
        self.threads = threads
        self.base_lr = self.optimizer.lr
        self.steps_per_epoch = max(1, math.ceil(len(self.data["X_train"]) / batch_size))
        self.rng = np.random.default_rng(seed)
        self.sample_rng = np.random.default_rng((seed, 2))  # measuring draws from its own stream, not training's
        self.stop_requested: tuple[Stop, str] | None = None
        self.epoch = 0
        self.loss_history: list[float] = []
        self.train_score_history: list[float] = []
        self.val_score_history: list[float] = []
        self.val_loss_history: list[float] = []
        self.val_rmse_history: list[float] = []  # regression only
        self.lr_history: list[float] = []
        self.epoch_seconds: list[float] = []
        self.clip_history: list[int] = []  # steps of each epoch whose gradients the optimizer clipped
        self.clipped_before = 0
        self.best_val_score = -1.0  # below any accuracy; a regression run compares losses instead
        self.best_val_loss = math.inf
        self.snapshot_best()
        self.bad_epochs = 0
        self.stop_reason: StopReason | None = None
        self.ignore_index: int | None = getattr(self.loss, "ignore_index", None)
        self.num_classes = self.classes()  # checked once here; checkpoints and reports read it
        if not self.regression:
            check_labels(self.data, self.num_classes, self.ignore_index)

    @property
    def train_acc_history(self) -> list[float]:
        return self.train_score_history

    @property
    def val_acc_history(self) -> list[float]:
        return self.val_score_history

    @property
    def best_val_acc(self) -> float:
        return self.best_val_score

    def classes(self) -> int:
        """The number of scores the model gives for one example (at each step, for labels per step): its
        classes, or for a regression loss its outputs."""
        with eval_mode(self.model):
            scores = np.asarray(self.model.forward(self.data["X_train"][:1]))
        labels = self.data["y_train"][:1]
        if self.regression:
            if scores.ndim != 2 or labels.shape not in (scores.shape, scores.shape[:1]) or (
                    labels.ndim == 1 and scores.shape[1] != 1):
                raise ValueError(f"Solver: the model gives output of shape {scores.shape} for one example of "
                                 f"targets {labels.shape}; the loss needs outputs (N, K) for targets (N, K), or "
                                 "(N, 1) for targets (N,)")
            return int(scores.shape[1])
        if scores.ndim != labels.ndim + 1 or scores.shape[:-1] != labels.shape:
            expected = "(N, C)" if labels.ndim == 1 else "(N, T, C) with T the labels' steps"
            raise ValueError(f"Solver: the model gives output of shape {scores.shape} for one example of labels "
                             f"{labels.shape}; the loss needs scores of shape {expected}")
        return int(scores.shape[-1])

    def step(self, X: NDArray[np.floating], y: NDArray[np.integer]) -> float:
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

    def predict(self, X: NDArray[np.floating], batch_size: int = 1000) -> NDArray[Any]:
        """Class indices of the highest score, or for a regression loss the predicted values (shaped as the
        targets: (N,) or (N, K)), computed in eval mode in batches; the model's mode is restored."""
        with eval_mode(self.model):
            outputs = [self.model.forward(X[i:i + batch_size]) for i in range(0, len(X), batch_size)]
        if self.regression:
            shape = (len(X), *self.data["y_train"].shape[1:])
            return np.concatenate(outputs).reshape(shape) if outputs else np.zeros(shape, self.data["y_train"].dtype)
        preds = [np.argmax(out, axis=-1) for out in outputs]
        return np.concatenate(preds) if preds else np.zeros(0, dtype=np.intp)

    def check_accuracy(self, X: NDArray[np.floating], y: NDArray[Any], num_samples: int | None = None) -> float:
        """Fraction of correct predictions (R² for a regression loss), on a random subsample of ``num_samples``
        when given."""
        if num_samples is not None and len(X) > num_samples:
            idx = self.sample_rng.choice(len(X), num_samples, replace=False)
            X, y = X[idx], y[idx]
        if self.regression:
            return r2_score(self.predict(X), y)
        counted = self.counted(y)
        hits = self.predict(X) == y
        return float(np.mean(hits) if counted is None else np.sum(hits & counted) / max(int(counted.sum()), 1)) \
            if len(y) else 0.0

    def counted(self, y: NDArray[np.integer]) -> NDArray[np.bool_] | None:
        """Which labels count (not the loss's ``ignore_index``), or None when all do."""
        if self.ignore_index is None or y.size == 0 or y.min() > self.ignore_index or y.max() < self.ignore_index:
            return None
        return np.asarray(y != self.ignore_index)

    def train(self, on_epoch_end: Callable[[Solver], None] | None = None,
              on_stop: Callable[[Solver], None] | None = None) -> dict[str, Any]:
        """Run the remaining epochs in train mode; returns the metrics dict.

        ``on_epoch_end(self)`` runs after each epoch, ``on_stop(self)`` once when training stops, with the
        last state still in the model (before the best parameters are restored). ``request_stop`` ends
        training after the current epoch. The model is left in the mode it was in.
        """
        with in_mode(self.model, True), threadpool_limits(limits=self.blas_threads(), user_api="blas"):
            return self.train_epochs(on_epoch_end, on_stop)

    def blas_threads(self) -> int:
        """The BLAS threads training uses: ``threads``, or for "auto" one thread when the largest matrix
        product of a step is under AUTO_MIN_FLOPS and otherwise every thread BLAS may use now (all the cores,
        or fewer where a sweep worker or the caller limited them). Never more than that limit."""
        limit = max((p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"), default=1)
        if self.threads != "auto":
            return min(int(self.threads), limit)
        return limit if largest_matmul_flops(self.model, self.batch_size) >= AUTO_MIN_FLOPS else 1

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
            return self.metrics()

    def run_epoch(self, bar: tqdm) -> bool:
        """One shuffled pass over the training set; False if the loss became NaN or inf."""
        self.clipped_before = self.optimizer.clipped
        X, y = self.data["X_train"], self.data["y_train"]
        self.optimizer.lr = self.schedule(self.base_lr, self.epoch)
        order = self.rng.permutation(len(X))
        for it in range(self.steps_per_epoch):
            idx = order[it * self.batch_size:(it + 1) * self.batch_size]
            loss = self.step(X[idx], y[idx])
            self.loss_history.append(loss)
            if not math.isfinite(loss):
                self.stop_reason = StopReason(Stop.DIVERGED, (
                    f"loss became {loss} at epoch {self.epoch + 1}, iteration {it + 1}: "
                    f"training stopped; try a lower learning rate (lr is {self.optimizer.lr:g})"))
                return False
            bar.update()
            if it % 10 == 0:
                bar.set_postfix(epoch=self.epoch + 1, loss=f"{loss:.4f}")
        return True

    def loss_and_accuracy(self, X: NDArray[np.floating], y: NDArray[Any],
                          batch_size: int = 1000) -> tuple[float, float]:
        """Data loss plus the L2 penalty, and accuracy (R² for a regression loss), in eval mode in batches (one
        forward pass)."""
        if self.regression:
            return self.regression_measures(X, y, batch_size)[:2]
        total, correct, count = 0.0, 0, 0
        with eval_mode(self.model):
            for i in range(0, len(X), batch_size):
                scores, labels = self.model.forward(X[i:i + batch_size]), y[i:i + batch_size]
                counted = self.counted(labels)
                rows = labels.size if counted is None else int(counted.sum())
                total += self.loss.forward(scores, labels) * rows
                hits = np.argmax(scores, axis=-1) == labels
                correct += int(np.sum(hits if counted is None else hits & counted))
                count += rows
        if not count:
            return 0.0, 0.0
        return total / count + self.objective.penalty(self.model.params), correct / count

    def regression_measures(self, X: NDArray[np.floating], y: NDArray[np.floating],
                            batch_size: int = 1000) -> tuple[float, float, float]:
        """Data loss plus the L2 penalty, R² and RMSE of the predictions for X against targets y (one pass)."""
        predictions = self.predict(X, batch_size)
        loss = self.loss.forward(predictions.reshape(len(X), -1), y.reshape(len(y), -1)) if len(y) else 0.0
        return loss + self.objective.penalty(self.model.params), r2_score(predictions, y), rmse(predictions, y)

    def end_epoch(self, seconds: float) -> None:
        train_score = self.check_accuracy(self.data["X_train"], self.data["y_train"], self.num_train_samples)
        if self.regression:
            val_loss, val_score, val_rmse = self.regression_measures(self.data["X_val"], self.data["y_val"])
            self.val_rmse_history.append(val_rmse)
        else:
            val_loss, val_score = self.loss_and_accuracy(self.data["X_val"], self.data["y_val"])
        self.train_score_history.append(train_score)
        self.val_score_history.append(val_score)
        self.val_loss_history.append(val_loss)
        self.lr_history.append(self.optimizer.lr)
        self.epoch_seconds.append(seconds)
        self.clip_history.append(self.optimizer.clipped - self.clipped_before)
        self.epoch += 1
        if val_loss < self.best_val_loss if self.regression else val_score > self.best_val_score:
            self.best_val_score, self.best_val_loss, self.bad_epochs = val_score, val_loss, 0
            self.snapshot_best()
        else:
            self.bad_epochs += 1
            if self.patience is not None and self.bad_epochs >= self.patience:
                measure = "loss" if self.regression else "accuracy"
                self.stop_reason = StopReason(
                    Stop.EARLY, f"early stop: no better validation {measure} for {self.patience} epochs")

    def epoch_line(self) -> str:
        loss = float(np.mean(self.loss_history[-self.steps_per_epoch:]))
        s = self.score_name
        rmse_part = f"  val_rmse {self.val_rmse_history[-1]:.4g}" if self.regression else ""
        return (f"epoch {self.epoch}/{self.epochs}  loss {loss:.4f}  val_loss {self.val_loss_history[-1]:.4f}  "
                f"train_{s} {self.train_score_history[-1]:.4f}  val_{s} {self.val_score_history[-1]:.4f}"
                f"{rmse_part}  lr {self.lr_history[-1]:.3g}")

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
        """What the run ended with: ``best_val_acc``; ``train_acc`` and ``test_acc`` of the parameters the model
        holds now (the best epoch's, once training has restored them), on the whole training and test sets;
        ``epochs_run``; ``train_seconds``, the time of every epoch of the run, resumed ones included. For a
        regression loss ``best_val_r2``, ``train_r2`` and ``test_r2`` instead, with ``train_rmse`` and
        ``test_rmse``."""
        s = self.score_name
        result: dict[str, Any] = {f"best_val_{s}": self.best_val_score if self.val_score_history else None}
        splits = ["train", "test"] if "X_test" in self.data else ["train"]
        for split in splits:
            X, y = self.data[f"X_{split}"], self.data[f"y_{split}"]
            if self.regression:
                predictions = self.predict(X)
                result.update({f"{split}_r2": r2_score(predictions, y), f"{split}_rmse": rmse(predictions, y)})
            else:
                result[f"{split}_acc"] = self.check_accuracy(X, y)
        result.update(epochs_run=self.epoch, train_seconds=round(sum(self.epoch_seconds), 3))
        if self.stop_reason is not None:
            result["stop_reason"] = self.stop_reason.message
        return result


if __name__ == "__main__":  # the command line belongs to the application, which may import every floor
    from chainrule.cli import solver_main

    sys.exit(solver_main())
