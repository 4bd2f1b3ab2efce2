"""The kinds of problem a loss solves, as types: classification and regression.

A loss carries its task (``SoftmaxCrossEntropy.task`` is a ``Classification``); the Solver, the run folder,
``evaluate``, ``predict``, export, sweeps and the scikit-learn estimators ask it for everything that differs
between kinds of problem and never branch on a name. A third kind is one new subclass.

What a task owns:

- ``predict(outputs)``: the network's outputs (N, C) or (N, T, C) as predictions;
- ``measures(predictions, y)``: the score first (``score_name``: ``"acc"`` or ``"r2"``), then any others
  (``extra_names``: RMSE for regression), by name;
- ``improved(...)``: whether an epoch's validation loss and score beat the best so far;
- ``check_data``, ``check_targets`` and ``check_outputs``: what the data, targets and outputs must look like;
- ``outputs_for(targets)``: the outputs a model needs for these targets (classes, or target columns);
- ``report``, ``format_report`` and ``pictures``: what ``evaluate`` computes, prints and draws;
- ``heads(scores)`` and ``prediction_table``: what export and ``predict`` write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import softmax

from .measures import classification_summary, r2_score, rmse

Array = NDArray[Any]
DATA_KEYS = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")  # what a training data dict holds


class Task:
    """A kind of problem; see the module docstring. Subclasses set the class attributes and the methods."""

    name = ""
    score_name = ""  # the score's key: train_<score_name>, val_<score_name>, best_val_<score_name>
    score_label = ""  # the score in words, for pictures and messages
    extra_names: tuple[str, ...] = ()  # measures besides the score, kept per epoch as val_<name>
    selected_by = ""  # what picks the best epoch, in words: "validation accuracy"
    target_word = ""  # "labels" or "targets"
    output_noun, outputs_noun = "", ""  # what a model's outputs are ("scores") and what they stand for ("classes")
    pictures: tuple[str, ...] = ()  # what evaluate draws, by picture name
    head_names: tuple[str, ...] = ()  # the outputs export writes

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The run's metrics where higher is better, each a name a sweep may optimise."""
        s = self.score_name
        return (f"best_val_{s}", f"test_{s}", f"train_{s}")

    def check_data(self, data: dict[str, Any], as_input: Callable[[Any, str], Array]) -> dict[str, Array]:
        """A training data dict, checked: the four required arrays, optional test arrays, matching lengths.
        Inputs become what the model takes (``as_input(X, name)``, ``Layer.as_input``), targets the task's
        (``check_targets``)."""
        unknown = sorted(set(data) - set(DATA_KEYS))
        if unknown:
            raise KeyError(f"Solver data: unknown keys {unknown}; allowed: {', '.join(DATA_KEYS)}")
        missing = [k for k in DATA_KEYS[:4] if k not in data]
        if ("X_test" in data) != ("y_test" in data):
            missing.append("y_test" if "X_test" in data else "X_test")
        if missing:
            raise KeyError(f"Solver data: missing {', '.join(missing)}")
        out: dict[str, Array] = {}
        for split in ("train", "val", "test"):
            if f"X_{split}" in data:
                X = out[f"X_{split}"] = as_input(data[f"X_{split}"], f"Solver data: X_{split}")
                dtype = X.dtype if X.dtype.kind == "f" else np.dtype(np.float32)
                y = out[f"y_{split}"] = self.check_targets(np.asarray(data[f"y_{split}"]), f"Solver data: y_{split}",
                                                           dtype)
                if len(X) != len(y):
                    raise ValueError(f"Solver data: X_{split} has {len(X)} rows but y_{split} has {len(y)}")
        for key in ("X_val", "X_test", "y_val", "y_test"):  # every split as the training set: checked before
            first = out[f"{key[0]}_train"]  # the first epoch, not found after the last
            if key in out and out[key].shape[1:] != first.shape[1:]:
                raise ValueError(f"Solver data: {key} has examples of shape {out[key].shape[1:]} but "
                                 f"{key[0]}_train's are {first.shape[1:]}")
        return out

    def score(self, predictions: Array, y: Array, ignore: int | None = None) -> float:
        """The score alone: ``measures(...)[score_name]``."""
        return self.measures(predictions, y, ignore)[self.score_name]

    def predict(self, outputs: Array, target_shape: tuple[int, ...] | None = None) -> Array:
        raise NotImplementedError

    def measures(self, predictions: Array, y: Array, ignore: int | None = None) -> dict[str, float]:
        raise NotImplementedError

    def improved(self, loss: float, score: float, best_loss: float, best_score: float) -> bool:
        raise NotImplementedError

    def check_targets(self, y: Array, name: str, dtype: np.dtype) -> Array:
        raise NotImplementedError

    def check_outputs(self, shape: tuple[int, ...], target_shape: tuple[int, ...]) -> str | None:
        raise NotImplementedError

    def outputs_for(self, targets: list[Array]) -> int:
        raise NotImplementedError

    def check_range(self, y: Array, name: str, outputs: int, ignore: int | None = None) -> None:
        """Targets against the model's number of outputs (labels in [0, C)); nothing to check by default."""

    def targets_from_text(self, values: list[str], where: str, names: bool | list[str] = False) -> Array:
        """Targets read from text (a CSV's column); ``names`` allows a training set's class names (True) or
        reads them as a run's (a list)."""
        raise NotImplementedError

    def class_names(self, values: list[str]) -> list[str] | None:
        """The class names a training set's labels are (a classification's, when they are not numbers)."""
        return None

    def report(self, y: Array, predictions: Array, outputs: int, source: str,
               ignore: int | None = None) -> dict[str, Any]:
        """What ``evaluate`` reports for targets ``y`` and ``predictions``; ``source`` names y in errors."""
        raise NotImplementedError

    def format_report(self, result: dict[str, Any]) -> str:
        raise NotImplementedError

    def heads(self, scores: Array) -> dict[str, Array]:
        raise NotImplementedError

    def prediction_table(self, outputs: Array, names: list[str] | None = None) -> tuple[list[str], list[list[Any]]]:
        """A header and rows for predictions.csv; ``names``: the run's class names, when its labels had them."""
        raise NotImplementedError


class Classification(Task):
    """A score per class, integer labels (N,) or (N, T), measured by accuracy; the best epoch has the highest
    validation accuracy. Rows labelled ``ignore`` (a loss's ``ignore_index``) count for nothing."""

    name = "classification"
    score_name, score_label = "acc", "accuracy"
    selected_by, target_word = "validation accuracy", "labels"
    output_noun, outputs_noun = "scores", "classes"
    pictures = ("confusion", "filters", "saliency")
    head_names = ("scores", "probabilities")

    def predict(self, outputs: Array, target_shape: tuple[int, ...] | None = None) -> Array:
        """The class of the highest score: (N,), or (N, T) for a label per step."""
        return np.argmax(outputs, axis=-1)

    def measures(self, predictions: Array, y: Array, ignore: int | None = None) -> dict[str, float]:
        hits = predictions == y
        counted = None if ignore is None else y != ignore
        total = hits.size if counted is None else int(counted.sum())
        correct = int(hits.sum() if counted is None else (hits & counted).sum())
        return {"acc": correct / total if total else 0.0}

    def improved(self, loss: float, score: float, best_loss: float, best_score: float) -> bool:
        return score > best_score

    def check_targets(self, y: Array, name: str, dtype: np.dtype) -> Array:
        if y.dtype.kind not in "iu" or y.ndim not in (1, 2):
            hint = "; for real-valued targets use a regression loss (loss.type = \"mse\")" if y.dtype.kind == "f" \
                else ""
            raise ValueError(f"{name} must be integer labels, (N,) or (N, T) for a label at every step of a "
                             f"sequence, got {y.dtype} of shape {y.shape}{hint}")
        return y

    def check_outputs(self, shape: tuple[int, ...], target_shape: tuple[int, ...]) -> str | None:
        if len(shape) == len(target_shape) + 1 and shape[:-1] == target_shape:
            return None
        expected = "(N, C)" if len(target_shape) == 1 else "(N, T, C) with T the labels' steps"
        return f"the loss needs scores of shape {expected} for labels of shape {target_shape}"

    def outputs_for(self, targets: list[Array]) -> int:
        """The classes: the largest label (leaving out negative ones: an ``ignore_index``) plus 1."""
        return max((int(y[y >= 0].max(initial=0)) for y in targets), default=0) + 1

    def check_range(self, y: Array, name: str, outputs: int, ignore: int | None = None) -> None:
        counted = y if ignore is None else y[y != ignore]
        if counted.size and (counted.min() < 0 or counted.max() >= outputs):
            raise ValueError(f"{name} has labels in [{counted.min()}, {counted.max()}], but the model gives "
                             f"{outputs} scores (labels 0..{outputs - 1})")

    def class_names(self, values: list[str]) -> list[str] | None:
        """A training set's labels as names, sorted (their class numbers are their places), or None when they
        are all integers (class numbers)."""
        try:
            [int(v) for v in values]
        except ValueError:
            return sorted(set(values))
        return None

    def targets_from_text(self, values: list[str], where: str, names: bool | list[str] = False) -> Array:
        """Class numbers: integers, or floats with nothing after the point ("2.0"), as int64; anything else is a
        ValueError naming ``where`` and the first offending values. With ``names=True`` (a training set's
        labels), labels that are not all integers are names, numbered 0..k-1 in sorted order (``class_names``
        gives them); with a list of names (a run's classes), each label is the number of its name there."""
        if isinstance(names, list) and names:
            index = {name: i for i, name in enumerate(names)}
            unknown = sorted({v for v in values if v not in index})
            if unknown:
                raise ValueError(f"{where}: labels {', '.join(map(repr, unknown[:5]))} are not among the run's "
                                 f"classes ({', '.join(map(repr, names[:10]))})")
            return np.array([index[v] for v in values], dtype=np.int64)
        if names is True:
            found = self.class_names(values)
            if found is None:
                return np.array([int(v) for v in values], dtype=np.int64)
            return np.searchsorted(np.array(found), np.array(values)).astype(np.int64)

        def number(text: str) -> int | None:
            try:
                return int(text)
            except ValueError:
                try:
                    value = float(text)
                except ValueError:
                    return None
                return int(value) if value.is_integer() else None

        return np.array(parse_each(values, number, where, "labels that are not class numbers",
                                   "expected the run's classes as integers 0..C-1"), dtype=np.int64)

    def report(self, y: Array, predictions: Array, outputs: int, source: str,
               ignore: int | None = None) -> dict[str, Any]:
        """Accuracy, per-class precision, recall, F1 and support, macro averages, and the confusion matrix
        (rows are true classes, columns predicted). A class never predicted has precision 0, as scikit-learn's
        ``zero_division=0`` gives. A label per step counts each step as an example, ``ignore`` left out."""
        if y.shape != predictions.shape:
            raise ValueError(f"evaluate: {source}: expected labels of shape {predictions.shape} (one per "
                             f"prediction), got an array of shape {y.shape}")
        if y.ndim == 2 and y.dtype.kind in "iu" and ignore is not None:
            counted = y.ravel() != ignore
            y, predictions = y.ravel()[counted], predictions.ravel()[counted]
        if y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() >= outputs)):
            outside = sorted(set(np.unique(y[(y < 0) | (y >= outputs)]).tolist()))[:5] if y.dtype.kind in "iu" \
                else []
            raise ValueError(f"evaluate: {source} must hold the run's classes, integers 0..{outputs - 1}"
                             + (f"; found {', '.join(map(str, outside))}" if outside else f", not {y.dtype}"))
        return classification_summary(y.ravel(), predictions.ravel(), outputs)

    def format_report(self, result: dict[str, Any]) -> str:
        lines = [f"accuracy {result['accuracy']:.4f} on {result['examples']} examples  "
                 f"(macro F1 {result['macro_f1']:.4f})", "", "class  precision  recall  f1      support"]
        lines += [f"{r.get('name', r['class'])!s:<5}  {r['precision']:<9.4f}  {r['recall']:<6.4f}  "
                  f"{r['f1']:<6.4f}  {r['support']}" for r in result["per_class"]]
        confusion = np.array(result["confusion"])
        width = max(len(str(confusion.max())), 3)
        lines += ["", "confusion (rows: true class, columns: predicted)",
                  " " * 6 + " ".join(f"{c:>{width}}" for c in range(len(confusion)))]
        lines += [f"{i:<5} " + " ".join(f"{v:>{width}}" for v in row) for i, row in enumerate(confusion)]
        return "\n".join(lines)

    def heads(self, scores: Array) -> dict[str, Array]:
        """The scores and their softmax, the class probabilities."""
        return {"scores": scores, "probabilities": softmax(scores, axis=-1)}

    def prediction_table(self, outputs: Array, names: list[str] | None = None) -> tuple[list[str], list[list[Any]]]:
        """index, predicted label (its name, when the run's classes have names) and one probability column per
        class (``p_NAME`` or ``p0``, ``p1``, ...); for scores per step (N, T, C), a row per example and step:
        index, step, label and the probabilities."""
        proba = softmax(outputs, axis=-1)
        columns = [f"p_{n}" for n in names] if names else [f"p{c}" for c in range(proba.shape[-1])]
        labels = np.argmax(proba, axis=-1)
        if names:
            labels = np.array(names, dtype=object)[labels]
        if proba.ndim == 3:
            return ["index", "step", "label", *columns], [
                [i, t, label_text(labels[i, t]), *(f"{p:.6g}" for p in proba[i, t])]
                for i in range(proba.shape[0]) for t in range(proba.shape[1])]
        return ["index", "label", *columns], [[i, label_text(label), *(f"{p:.6g}" for p in row)]
                                              for i, (label, row) in enumerate(zip(labels, proba, strict=True))]


def label_text(label: Any) -> Any:
    """A predicted label as predictions.csv writes it: a class number, or the class's name."""
    return label if isinstance(label, str) else int(label)


class Regression(Task):
    """Predicted values (N, K), real targets (N, K) or (N,) for one output, measured by R² (and RMSE); the best
    epoch has the lowest validation loss."""

    name = "regression"
    score_name, score_label, extra_names = "r2", "R²", ("rmse",)
    selected_by, target_word = "validation loss", "targets"
    output_noun, outputs_noun = "values", "target columns"
    head_names = ("predictions",)

    def predict(self, outputs: Array, target_shape: tuple[int, ...] | None = None) -> Array:
        """The outputs as values: shaped as targets of ``target_shape`` when given ((N,) for targets (N,)), else
        (N,) for one output and (N, K) for several."""
        if target_shape is not None:
            return outputs.reshape(len(outputs), *target_shape[1:])
        return outputs[:, 0] if outputs.ndim == 2 and outputs.shape[1] == 1 else outputs

    def measures(self, predictions: Array, y: Array, ignore: int | None = None) -> dict[str, float]:
        return {"r2": r2_score(predictions, y), "rmse": rmse(predictions, y)}

    def improved(self, loss: float, score: float, best_loss: float, best_score: float) -> bool:
        return loss < best_loss

    def check_targets(self, y: Array, name: str, dtype: np.dtype) -> Array:
        if y.dtype.kind not in "iuf" or y.ndim not in (1, 2):
            raise ValueError(f"{name} must be real-valued targets for a regression loss, (N,) or (N, K) for K "
                             f"outputs, got {y.dtype} of shape {y.shape}")
        with np.errstate(over="ignore"):
            converted = y.astype(dtype, copy=False)
        finite = np.isfinite(converted.reshape(len(y), -1)).all(axis=1)
        if not finite.all():
            beyond = bool(np.isfinite(y.reshape(len(y), -1)[int(np.argmin(finite))]).all())
            what = f"values beyond {dtype} (largest {np.finfo(dtype).max:.3g})" if beyond else "NaN or inf"
            raise ValueError(f"{name} has {what}, first in row {int(np.argmin(finite))}")
        limit = float(np.sqrt(np.finfo(dtype).max)) / 10  # a squared error must stay finite
        largest = float(np.abs(converted).max(initial=0))
        if largest > limit:
            raise ValueError(f"{name} has values up to {largest:.3g}, whose squared errors overflow {dtype} "
                             f"(targets must stay under {limit:.2g}); scale the targets")
        return converted

    def check_outputs(self, shape: tuple[int, ...], target_shape: tuple[int, ...]) -> str | None:
        if len(shape) == 2 and (target_shape == shape or (len(target_shape) == 1 and shape[1] == 1)):
            return None
        return "the loss needs outputs (N, K) for targets (N, K), or (N, 1) for targets (N,)"

    def outputs_for(self, targets: list[Array]) -> int:
        """The target columns: 1 for targets (N,)."""
        return int(targets[0].shape[1]) if targets[0].ndim == 2 else 1

    def targets_from_text(self, values: list[str], where: str, names: bool | list[str] = False) -> Array:
        """Real numbers as float64; text that is not a finite number is a ValueError naming ``where``."""
        def number(text: str) -> float | None:
            try:
                value = float(text)
            except ValueError:
                return None
            return value if np.isfinite(value) else None

        return np.array(parse_each(values, number, where, "targets that are not finite numbers",
                                   "a regression loss needs a real number in every row"), dtype=np.float64)

    def report(self, y: Array, predictions: Array, outputs: int, source: str,
               ignore: int | None = None) -> dict[str, Any]:
        """R² (averaged over the outputs, as scikit-learn's ``r2_score``), RMSE and MAE."""
        if y.dtype.kind not in "iuf":
            raise ValueError(f"evaluate: {source} must be real numbers, not {y.dtype}")
        if predictions.ndim == 1 and y.shape == (len(predictions), 1):  # one target as a column
            y = y[:, 0]
        if y.shape != predictions.shape:
            raise ValueError(f"evaluate: {source}: expected targets of shape {predictions.shape} (one per "
                             f"prediction), got an array of shape {y.shape}")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise ValueError(f"evaluate: {source} have NaN or inf")
        errors = np.asarray(predictions, dtype=np.float64) - y
        return {"r2": r2_score(predictions, y), "rmse": rmse(predictions, y),
                "mae": float(np.mean(np.abs(errors))) if y.size else 0.0, "examples": int(len(y))}

    def format_report(self, result: dict[str, Any]) -> str:
        return (f"r2 {result['r2']:.4f}  rmse {result['rmse']:.4g}  mae {result['mae']:.4g} "
                f"on {result['examples']} examples")

    def heads(self, scores: Array) -> dict[str, Array]:
        return {"predictions": scores}

    def prediction_table(self, outputs: Array, names: list[str] | None = None) -> tuple[list[str], list[list[Any]]]:
        """index and ``value`` (one output) or ``value0``.. (several), each the shortest text that reads back
        to the same number of the values' dtype (float32's 218.49127, not 218.49127197265625)."""
        values = self.predict(outputs)
        columns = values.reshape(len(values), -1)
        names = ["value"] if values.ndim == 1 else [f"value{k}" for k in range(columns.shape[1])]
        return ["index", *names], [[i, *(str(v) for v in row)] for i, row in enumerate(columns)]


def parse_each(texts: list[str], parse: Any, where: str, problem: str, expected: str) -> list[Any]:
    """``parse`` applied to every text; texts it returns None for are a ValueError naming ``where``, the
    ``problem`` with the first five such texts, and what was ``expected``."""
    values = [parse(text) for text in texts]
    bad = [text for text, value in zip(texts, values, strict=True) if value is None]
    if bad:
        shown = ", ".join(repr(text) for text in list(dict.fromkeys(bad))[:5])
        raise ValueError(f"{where} has {problem} ({shown}); {expected}")
    return values
