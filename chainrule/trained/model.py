"""A trained model: the network of a finished run with its config and preprocessing, ready to predict.

``load_run(run_dir, which="best")`` rebuilds it from a run folder; ``save(path)`` writes it as one npz file
that ``TrainedModel.load(path)`` (or any npz reader) opens without pickle:

- ``__meta__``: a JSON string: ``format`` (1), ``config`` (the run's resolved config), ``input_shape`` (one
  example's shape), ``classes`` (the number of scores);
- ``param/<name>``, ``buffer/<name>``: the network's parameters and buffers by qualified name ("0.W");
- ``pre/mean``, ``pre/std``: standardization statistics, applied to raw inputs (absent when not used).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chainrule import checkpoint as ckpt
from chainrule.build import build_model, loss_of, model_rng
from chainrule.files import atomic_write
from chainrule.usercode import import_config_modules
from layers import Layer

FORMAT = 1


class TrainedModel:
    """``network`` (in eval mode) with the ``config`` it was trained from and its ``preprocessing``.

    X : array of shape (N, *input_shape), any real dtype: raw inputs, preprocessed as in training. Rows of
    prod(input_shape) values (a csv's) are reshaped to the input shape.
    """

    def __init__(self, network: Layer, config: dict[str, Any], preprocessing: dict[str, NDArray],
                 input_shape: tuple[int, ...]) -> None:
        self.network, self.config = network.eval(), config
        self.preprocessing, self.input_shape = preprocessing, tuple(input_shape)
        self.dtype = np.dtype(config["model"]["dtype"])
        self.indices = network.takes_indices()  # a character model reads integer indices, not numbers
        self.loss = loss_of(config)
        self.task = self.loss.task  # what the outputs are and how they are measured
        names = preprocessing.get("class_names")  # a CSV's label names, as scikit-learn's classes_
        self.class_names: list[str] | None = None if names is None else [str(n) for n in names]

    def __repr__(self) -> str:
        return f"TrainedModel(input_shape={self.input_shape}, network={self.network!r})"

    def transform(self, X: Any, source: str = "X") -> NDArray[np.floating]:
        """Raw inputs as the network saw them in training: standardized (when the run was) and cast. NaN, inf
        and values beyond the model's dtype are a ValueError naming ``source`` and the first such row."""
        X = np.asarray(X)
        if self.indices:
            if X.dtype.kind not in "iu" or X.ndim != len(self.input_shape) + 1:
                raise ValueError(f"{source}: expected integer indices of shape (N, T), got {X.dtype} of "
                                 f"shape {X.shape}")
            return X
        if X.dtype.kind not in "iuf":
            raise TypeError(f"{source}: expected real-valued inputs, got dtype {X.dtype}")
        if X.ndim == 2 and X.shape[1:] != self.input_shape and X.shape[1] == int(np.prod(self.input_shape)):
            X = X.reshape(len(X), *self.input_shape)  # rows of a csv: each example's values in order
        if X.shape[1:] != self.input_shape:
            what = f"{X.shape[1]} values a row" if X.ndim == 2 else f"examples of shape {X.shape[1:]}"
            raise ValueError(f"{source}: {what}, but the model expects examples of shape {self.input_shape}"
                             f" ({int(np.prod(self.input_shape))} values a row)")
        if X.dtype.kind == "f" and X.size:
            limit = np.finfo(self.dtype).max
            with np.errstate(invalid="ignore"):
                bad = ~(np.abs(X.reshape(len(X), -1)) <= limit).all(axis=1)
            if bad.any():
                raise ValueError(f"{source}: row {int(np.argmax(bad))} has NaN, inf or a value beyond the model's "
                                 f"{self.dtype} (largest {limit:.3g}); no prediction is made for such rows")
        if "mean" in self.preprocessing:
            X = (X - self.preprocessing["mean"]) / self.preprocessing["std"]
        return X.astype(self.dtype)

    def scores(self, X: Any, batch_size: int = 1000, source: str = "X") -> NDArray[np.floating]:
        """The network's outputs: class scores (N, C), or a regression model's values (N, K), computed in eval
        mode in batches; ``source`` names X in errors."""
        X = self.transform(X, source)
        with self.network.mode(False):
            parts = [self.network.forward(X[i:i + batch_size]) for i in range(0, len(X), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.classes), dtype=self.dtype)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The scores' shape for one example: (1, C), or (1, T, C) for a label per step."""
        sample = np.zeros((1, *self.input_shape), np.int64 if self.indices else self.dtype)
        with self.network.mode(False):
            return tuple(self.network.forward(sample).shape)

    @property
    def classes(self) -> int:
        return int(self.output_shape[-1])

    def predict(self, X: Any, source: str = "X") -> NDArray[Any]:
        """The class of the highest score for each row; for a regression model the predicted values, (N,) for
        one output or (N, K)."""
        return self.task.predict(self.scores(X, source=source))  # (N,), or (N, T) for a label per step

    def predict_proba(self, X: Any, source: str = "X") -> NDArray[np.floating]:
        """Class probabilities: the softmax of the scores, shape (N, C). A model whose task has no classes (a
        regression) refuses, pointing to ``predict``."""
        if "probabilities" not in self.task.head_names:
            raise ValueError(f"predict_proba: this model was trained with a {self.task.name} loss "
                             f"({self.config['loss']['type']!r}); it predicts {self.task.output_noun}, not "
                             "classes: use predict")
        return self.task.heads(self.scores(X, source=source))["probabilities"]

    def evaluate(self, X: Any, y: Any, source: str = "X") -> dict[str, Any]:
        """The task's report (``Task.report``): accuracy, per-class precision, recall, F1 and support, and the
        confusion matrix (rows: true class); for a regression model R², RMSE and MAE. ``source`` names where X
        and y came from in errors."""
        ignore = getattr(self.loss, "ignore_index", None)
        return self.task.report(np.asarray(y), self.predict(X, source), self.classes,
                                f"the {self.task.target_word} of {source}", ignore)

    def to_onnx(self, path: str | Path, opset: int = 17) -> Path:
        """Write the model as ONNX (standardization included; outputs ``scores`` and ``probabilities``); see
        ``chainrule.trained.export``. Needs the extra ``onnx``."""
        from chainrule.trained.export import write_onnx

        return write_onnx(self, path, opset)

    def save(self, path: str | Path) -> None:
        """One npz file (the layout in the module docstring), written atomically."""
        meta = {"format": FORMAT, "config": self.config, "input_shape": list(self.input_shape),
                "classes": self.classes, "input_dtype": "int64" if self.indices else str(self.dtype)}
        arrays = {f"param/{k}": v for k, v in self.network.params.items()}
        arrays.update({f"buffer/{k}": v for k, v in self.network.buffers.items()})
        arrays.update({f"pre/{k}": v for k, v in self.preprocessing.items()})
        buffer = io.BytesIO()
        np.savez(buffer, __meta__=np.array(json.dumps(meta)), **arrays)
        atomic_write(Path(path), buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> TrainedModel:
        """A model written by ``save``."""
        meta, arrays = ckpt.read_npz(Path(path))
        if "epoch" in meta and "optimizer" in meta:  # a run's checkpoint, not a saved model
            raise ValueError(f"{str(path)!r} is a run's checkpoint, not a model file: load the run with "
                             f"chainrule.load_run({str(Path(path).parent)!r})")
        if meta.get("format") != FORMAT:
            raise ValueError(f"{str(path)!r}: model format {meta.get('format')}, expected {FORMAT}")
        return from_arrays(meta, arrays, "param/", "buffer/", str(path))


def from_arrays(meta: dict[str, Any], arrays: dict[str, NDArray], param_prefix: str, buffer_prefix: str,
                source: str) -> TrainedModel:
    """Rebuild the network of the run or model described by ``meta`` (its config, input shape and dtype, and
    classes) and fill in its parameters and buffers from ``arrays``."""
    config, input_shape = meta["config"], meta["input_shape"]
    import_config_modules(config)
    sample = np.zeros((1, *input_shape), dtype=meta.get("input_dtype", config["model"]["dtype"]))
    network = build_model(config["model"], sample, model_rng(config), meta.get("classes"))
    ckpt.load_arrays("parameters", network.params, arrays, param_prefix, source)
    ckpt.load_arrays("buffers", network.buffers, arrays, buffer_prefix, source)
    return TrainedModel(network, config, ckpt.with_prefix(arrays, "pre/"), tuple(input_shape))


def load_run(run_dir: str | Path, which: str = "best") -> TrainedModel:
    """The trained model of a run folder: the best epoch's parameters and buffers (``which="best"``) or the
    last ones (``"last"``), with the run's config and preprocessing."""
    if which not in ("best", "last"):
        raise ValueError(f"load_run: which must be 'best' or 'last', got {which!r}")
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{str(run_dir)!r} is not a folder: expected a run folder (one that training "
                                "wrote, with checkpoint.npz)")
    if not (run_dir / "checkpoint.npz").exists():
        what = "a run that has not finished its first epoch" if (run_dir / "config.toml").exists() else "not a run"
        raise FileNotFoundError(f"{str(run_dir)!r} is {what}: it has no checkpoint.npz")
    meta, arrays = ckpt.read_checkpoint(run_dir)
    prefixes = {"best": ("best/", "best_buffer/"), "last": ("param/", "buffer/")}[which]
    return from_arrays(meta, arrays, *prefixes, str(run_dir / "checkpoint.npz"))
