"""scikit-learn estimators over chainrule networks: ``NetClassifier`` (fit, predict, predict_proba,
decision_function, score, partial_fit, warm_start) and ``NetRegressor`` (fit, predict, score, partial_fit,
warm_start), usable in a Pipeline, GridSearchCV, cross_val_score, ``clone`` and pickle. Needs scikit-learn
(``pip install -e '.[datasets]'``).

The constructor stores its arguments as given (scikit-learn's rule); ``fit`` validates and converts the data as
scikit-learn does (any array-like, any numeric dtype, a DataFrame's column names kept in ``feature_names_in_``),
encodes the labels (any labels, strings included, in ``classes_``) or standardizes the targets, builds the
network and trains it with the Solver, holding out ``validation_fraction`` of the rows for the best-epoch and
early-stopping rules.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from chainrule.build import build_model
from layers import Layer
from losses import LOSSES, Classification, Loss, Regression, Task
from optim import OPTIMIZERS
from solver import Solver

ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "logistic": "Sigmoid", "elu": "ELU", "leaky_relu": "LeakyReLU"}


class NetEstimator(BaseEstimator):
    """What the two estimators share: the hyperparameters, the network, training with the Solver and the
    network's outputs. Not an estimator of its own."""

    model_: Layer
    history_: dict[str, list[float]]

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", layers: Any = None,
                 loss: str = "softmax", optimizer: str = "adam", lr: float = 3e-3, reg: float = 1e-3,
                 epochs: int = 40, batch_size: int = 64, validation_fraction: float = 0.1,
                 patience: int | None = None, random_state: int | None = None, dtype: str = "float32",
                 verbose: bool = False, warm_start: bool = False) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.layers = layers
        self.loss = loss
        self.optimizer = optimizer
        self.lr = lr
        self.reg = reg
        self.epochs = epochs
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.dtype = dtype
        self.verbose = verbose
        self.warm_start = warm_start

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags

    def build(self, features: int, outputs: int) -> Layer:
        """The network: from ``layers`` (a config's layer tables) or ``hidden_layer_sizes`` and ``activation``."""
        name = type(self).__name__
        if self.layers is not None:
            specs = [dict(spec) for spec in self.layers]
        else:
            if self.activation not in ACTIVATIONS:
                raise ValueError(f"{name}: activation must be one of {', '.join(ACTIVATIONS)}, got "
                                 f"{self.activation!r}")
            sizes: Any = [self.hidden_layer_sizes] if np.isscalar(self.hidden_layer_sizes) else self.hidden_layer_sizes
            specs = []
            for size in sizes:
                specs += [{"type": "Affine", "out_features": int(size)}, {"type": ACTIVATIONS[self.activation]}]
            specs.append({"type": "Affine"})
        cfg = {"layers": specs, "dtype": np.dtype(self.dtype).name, "init": "he"}
        rng = np.random.default_rng((self.seed(), 1))
        return build_model(cfg, np.zeros((1, features)), rng, outputs)

    def seed(self) -> int:
        if self.random_state is None:
            return 0
        if isinstance(self.random_state, (int, np.integer)):
            return int(self.random_state)
        raise ValueError(f"{type(self).__name__}: random_state must be an integer or None, got "
                         f"{self.random_state!r}")

    #: The kind of loss the estimator trains with: a Loss's ``task``.
    task: Task = Classification()

    def check_names(self) -> None:
        """Every hyperparameter (``check_params``); ``loss`` and ``optimizer`` name registered classes, the loss
        of the estimator's ``task``; else a ValueError (scikit-learn's error for a bad hyperparameter) with the
        names that would do."""
        check_params(self)
        name = type(self).__name__
        try:
            loss: Any = LOSSES.lookup(self.loss) if isinstance(self.loss, str) else type(self.loss)
            OPTIMIZERS.lookup(self.optimizer)
        except KeyError as e:
            raise ValueError(f"{name}: {e.args[0]}") from None
        if loss.task != self.task:
            names = sorted(repr((*getattr(cls, "aliases", ()), key)[0]) for key, cls in LOSSES.items()
                           if issubclass(cls, Loss) and cls.task == self.task)
            raise ValueError(f"{name}: loss {self.loss!r} is a {loss.task.name} loss; expected a "
                             f"{self.task.name} loss: {', '.join(names)}")

    def start(self, features: int, outputs: int) -> None:
        """A new network and an empty history (the loss and the score per epoch): a first fit, or a fit without
        ``warm_start``. A network whose last layer does not give ``outputs`` values is a ValueError."""
        score = self.task.score_name
        model = self.build(features, outputs)
        with model.mode(False):
            given = np.shape(model.forward(np.zeros((1, features), dtype=np.dtype(self.dtype))))
        if given != (1, outputs):
            raise ValueError(f"{type(self).__name__}: layers give {given[1:]} outputs per row, but the data has "
                             f"{outputs} {self.task.outputs_noun}; leave the last layer's out_features out (it is "
                             "filled in)")
        self.model_, self.network_, self.features_ = model, network_spec(self), features
        self.history_ = {"loss": [], f"val_{score}": [], f"train_{score}": []}

    def scaled(self, X: NDArray) -> NDArray:
        """The inputs as the network reads them: as they come (the regressor standardizes them)."""
        return X

    def continues(self, features: int, same_targets: bool) -> bool:
        """Whether ``fit`` goes on from the trained network (``warm_start``); a warm start on other features,
        targets or another network is a ValueError, as scikit-learn's estimators raise."""
        if not (self.warm_start and hasattr(self, "model_")):
            return False
        name = type(self).__name__
        if features != self.features_ or not same_targets:
            raise ValueError(f"{name}: warm_start continues the trained network, which takes "
                             f"{self.features_} features and the first fit's "
                             f"{self.task.outputs_noun}; fit a new estimator (or set warm_start=False) for others")
        if network_spec(self) != self.network_:
            raise ValueError(f"{name}: warm_start continues the trained network; hidden_layer_sizes, activation, "
                             "layers and dtype must stay as they were (or set warm_start=False)")
        return True

    def train(self, X: NDArray, y: NDArray, epochs: int, hold_out: bool = True) -> None:
        """Train ``self.model_`` for ``epochs`` with the Solver, holding out ``validation_fraction``."""
        optimizer = OPTIMIZERS.lookup(self.optimizer)(lr=self.lr)
        rng = np.random.default_rng((self.seed(), 2))
        n_val = int(round(len(X) * self.validation_fraction)) if hold_out else 0
        if n_val and len(X) - n_val >= 1:
            order = rng.permutation(len(X))
            val, fit_rows = order[:n_val], order[n_val:]
        else:
            val = fit_rows = np.arange(len(X))
        data = {"X_train": X[fit_rows], "y_train": y[fit_rows], "X_val": X[val], "y_val": y[val]}
        solver = Solver(self.model_, data, loss=self.loss, optimizer=optimizer, reg=self.reg,
                        batch_size=max(1, min(self.batch_size, len(fit_rows))), epochs=epochs,
                        seed=self.seed() + len(self.history_["loss"]), patience=self.patience if hold_out else None,
                        verbose=self.verbose, threads=1)
        solver.train()
        if solver.stop_reason is not None and solver.stop_reason.kind.exit_code == 1:  # a non-finite loss
            warnings.warn(f"{type(self).__name__}: {solver.stop_reason.message}", ConvergenceWarning, stacklevel=3)
        steps = solver.steps_per_epoch
        self.history_["loss"] += [float(np.mean(solver.loss_history[e * steps:(e + 1) * steps]))
                                  for e in range(solver.epoch)]
        self.history_[f"val_{self.task.score_name}"] += solver.val_score_history
        self.history_[f"train_{self.task.score_name}"] += solver.train_score_history
        self.n_iter_ = len(self.history_["loss"])

    def outputs(self, X: Any) -> NDArray:
        """The network's outputs in float64, through a float64 copy of it: float32 products round differently
        with the number of rows, and a row's prediction must not depend on the rows beside it."""
        check_is_fitted(self, "model_")
        X = self.scaled(validate_data(self, X, dtype=np.float64, reset=False))
        network: Layer = copy.deepcopy(self.model_).astype(np.float64)
        with network.mode(False):
            return np.asarray(network.forward(X))


class NetClassifier(ClassifierMixin, NetEstimator):
    """A classifier trained by chainrule's Solver.

    The network is ``hidden_layer_sizes`` Affine layers with ``activation`` between them (as MLPClassifier's),
    or ``layers``, a list of layer tables as a config's ``model.layers`` (the last layer's ``out_features`` is
    filled in with the number of classes when left out). ``loss`` ("softmax" or "svm"), ``optimizer`` ("adam",
    "sgd", "rmsprop", "adagrad") with ``lr``, L2 ``reg`` on the weights, ``epochs``, ``batch_size`` (at most the
    training rows), ``validation_fraction`` held out (0: the training rows measure the epochs), ``patience``
    (epochs without a better validation accuracy before stopping; None: never), ``random_state`` (the seed of
    the weights, the split and the batches; None means 0: chainrule never uses global random state), ``dtype``
    of the network, ``verbose``, and ``warm_start`` (a second ``fit`` continues from the trained network).
    """

    # -- training ----------------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any) -> NetClassifier:
        """Train on X (n_samples, n_features) and labels y; returns self."""
        self.check_names()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], ensure_min_samples=2)
        check_classification_targets(y)
        classes, encoded = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"NetClassifier: y has {len(classes)} class; a classifier needs at least 2 classes")
        previous: NDArray | None = getattr(self, "classes_", None)
        continuing = self.continues(X.shape[1], previous is not None and bool(np.array_equal(classes, previous)))
        self.classes_ = classes
        if not continuing:
            self.start(X.shape[1], len(classes))
        self.train(X, encoded, self.epochs)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> NetClassifier:
        """One epoch on X, y; the first call needs ``classes``, every class there will ever be."""
        self.check_names()
        first = not hasattr(self, "model_")
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], reset=first)
        check_classification_targets(y)
        if first:
            if classes is None:
                raise ValueError("NetClassifier.partial_fit: the first call needs classes=, every class there "
                                 "will ever be")
            self.classes_ = np.unique(classes)
            self.start(X.shape[1], len(self.classes_))
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"NetClassifier.partial_fit: classes={np.unique(classes).tolist()} is not the same as "
                             f"on the first call ({self.classes_.tolist()})")
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(f"NetClassifier.partial_fit: labels {unknown[:5].tolist()} are not in classes_ "
                             f"{self.classes_.tolist()}")
        self.train(X, np.searchsorted(self.classes_, y), 1, hold_out=False)
        return self

    # -- prediction --------------------------------------------------------------------------------------

    def decision_function(self, X: Any) -> NDArray:
        """The network's scores (n_samples, n_classes); for two classes, the second's minus the first's."""
        scores = self.scores(X)
        return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores

    def predict_proba(self, X: Any) -> NDArray:
        """Class probabilities, the softmax of the scores, (n_samples, n_classes), columns in ``classes_`` order."""
        return softmax(self.scores(X).astype(np.float64), axis=1)

    def predict(self, X: Any) -> NDArray:
        """The class of the highest score, from ``classes_``."""
        best = np.argmax(self.scores(X), axis=1)
        return self.classes_[best]

    def scores(self, X: Any) -> NDArray:
        """The network's class scores in float64 (n_samples, n_classes)."""
        return self.outputs(X)


class NetRegressor(RegressorMixin, NetEstimator):
    """A regressor trained by chainrule's Solver: the arguments of ``NetClassifier``, with ``loss`` "mse" (the
    default) or "huber" and an ``r2`` score instead of accuracy (``history_`` has ``val_r2`` and ``train_r2``).

    Inputs and targets y (n_samples,) or (n_samples, n_outputs) of any real dtype are standardized with the
    first fit's means and standard deviations (``x_mean_``, ``x_scale_``, ``y_mean_``, ``y_scale_``), so that
    ``lr`` and ``reg`` mean the same whatever the features' and targets' units, and ``predict`` undoes it:
    predictions come in y's units and shape. The defaults are for small tabular data: ``reg=0.1`` on the
    standardized problem, a fifth held out, training until 20 epochs bring no better validation loss (at most
    200), and the best epoch kept (on diabetes they give R² 0.43 where ``Ridge()`` gives 0.38:
    benchmarks/sklearn_bench.py).
    """

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", layers: Any = None,
                 loss: str = "mse", optimizer: str = "adam", lr: float = 3e-3, reg: float = 0.1,
                 epochs: int = 200, batch_size: int = 64, validation_fraction: float = 0.2,
                 patience: int | None = 20, random_state: int | None = None, dtype: str = "float32",
                 verbose: bool = False, warm_start: bool = False) -> None:
        super().__init__(hidden_layer_sizes=hidden_layer_sizes, activation=activation, layers=layers, loss=loss,
                         optimizer=optimizer, lr=lr, reg=reg, epochs=epochs, batch_size=batch_size,
                         validation_fraction=validation_fraction, patience=patience, random_state=random_state,
                         dtype=dtype, verbose=verbose, warm_start=warm_start)

    task: Task = Regression()
    y_mean_: NDArray
    y_scale_: NDArray

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # y (n, k) trains k outputs
        return tags

    def fit(self, X: Any, y: Any) -> NetRegressor:
        """Train on X (n_samples, n_features) and real targets y (n_samples,) or (n_samples, n_outputs)."""
        self.check_names()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], multi_output=True, y_numeric=True,
                             ensure_min_samples=2)
        y = np.asarray(y, dtype=np.float64)
        continuing = self.continues(X.shape[1], hasattr(self, "y_mean_") and y.shape[1:] == self.y_mean_.shape)
        if not continuing:
            self.start_with_targets(X, y)
        self.train(self.scaled(X), (y - self.y_mean_) / self.y_scale_, self.epochs)
        return self

    def partial_fit(self, X: Any, y: Any) -> NetRegressor:
        """One epoch on X, y; the first call's targets set the standardization."""
        self.check_names()
        first = not hasattr(self, "model_")
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], multi_output=True, y_numeric=True,
                             reset=first)
        y = np.asarray(y, dtype=np.float64)
        if first:
            self.start_with_targets(X, y)
        elif y.shape[1:] != self.y_mean_.shape:
            raise ValueError(f"NetRegressor.partial_fit: targets of shape {y.shape[1:]} per row, but the first call's "
                             f"were {self.y_mean_.shape}")
        self.train(self.scaled(X), (y - self.y_mean_) / self.y_scale_, 1, hold_out=False)
        return self

    def start_with_targets(self, X: NDArray, y: NDArray) -> None:
        """``start``, with the standardization of these inputs and targets and an output per target column."""
        self.x_mean_, self.x_scale_ = target_scaling(np.asarray(X, dtype=np.float64))
        self.y_mean_, self.y_scale_ = target_scaling(y)
        self.start(X.shape[1], 1 if y.ndim == 1 else y.shape[1])

    def scaled(self, X: NDArray) -> NDArray:
        """X standardized with the first fit's statistics, in X's dtype."""
        return ((X - self.x_mean_) / self.x_scale_).astype(X.dtype, copy=False)

    def predict(self, X: Any) -> NDArray:
        """Predicted targets in y's units: (n_samples,), or (n_samples, n_outputs) when y had several columns."""
        outputs = self.outputs(X) * self.y_scale_.reshape(1, -1) + self.y_mean_.reshape(1, -1)
        return outputs[:, 0] if self.y_mean_.ndim == 0 else outputs


def network_spec(estimator: NetEstimator) -> str:
    """What makes the network: a warm start must not change it."""
    return repr((estimator.hidden_layer_sizes, estimator.activation, estimator.layers, estimator.dtype))


def check_params(estimator: NetEstimator) -> None:
    """Each hyperparameter of the kind and range it must have, or a ValueError naming it and what came."""
    name = type(estimator).__name__

    def whole(value: Any, low: int) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and bool(value >= low)

    def number(value: Any) -> bool:
        return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and np.isfinite(value)

    sizes, layers = estimator.hidden_layer_sizes, estimator.layers
    sizes = [sizes] if np.isscalar(sizes) else sizes
    rules = [
        ("hidden_layer_sizes", isinstance(sizes, (list, tuple)) and all(whole(s, 1) for s in sizes),
         "an integer >= 1 or a sequence of them"),
        ("layers", layers is None or (isinstance(layers, (list, tuple)) and len(layers) > 0
                                      and all(isinstance(s, dict) and "type" in s for s in layers)),
         "None or a non-empty list of layer tables such as {'type': 'Affine', 'out_features': 10}"),
        ("lr", number(estimator.lr) and estimator.lr > 0, "a finite number > 0"),
        ("reg", number(estimator.reg) and estimator.reg >= 0, "a finite number >= 0"),
        ("epochs", whole(estimator.epochs, 1), "an integer >= 1"),
        ("batch_size", whole(estimator.batch_size, 1), "an integer >= 1"),
        ("validation_fraction", number(estimator.validation_fraction) and 0 <= estimator.validation_fraction < 1,
         "a number in [0, 1)"),
        ("patience", estimator.patience is None or whole(estimator.patience, 1), "None or an integer >= 1"),
        ("random_state", estimator.random_state is None or whole(estimator.random_state, 0),
         "None or an integer >= 0"),
        ("dtype", str(estimator.dtype) in ("float32", "float64") or any(estimator.dtype is t for t in (np.float32,
                                                                                                       np.float64)),
         "'float32' or 'float64'"),
    ]
    for key, ok, expected in rules:
        if not ok:
            raise ValueError(f"{name}: {key} must be {expected}, got {getattr(estimator, key)!r}")


def target_scaling(y: NDArray) -> tuple[NDArray, NDArray]:
    """The targets' mean and standard deviation per column (1 where a column is constant), as float64 arrays of
    y's shape per row (0-d for y of shape (n,))."""
    mean = y.mean(axis=0)
    top = np.abs(y - mean).max(axis=0, initial=0)  # scaled first: targets near 1e300 would overflow when squared
    top = np.where(top > 0, top, 1.0)
    scale = top * ((y - mean) / top).std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return np.asarray(mean), np.asarray(scale)
