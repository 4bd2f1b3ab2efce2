"""Normalization: BatchNorm (running statistics, modes), LayerNorm and GroupNorm."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Array, Layer, as_float_array, check_dout
from .init import float_dtype


def check_input(layer: Layer, x: Any, features: int, spatial: bool = False) -> Array:
    """``x`` as a floating (N, features) array (or (N, features, *spatial) when ``spatial``) of the parameters'
    dtype, or an error naming the layer."""
    x = as_float_array(layer, x)
    if (x.ndim < 2 if spatial else x.ndim != 2) or x.shape[1] != features:
        wanted = f"(N, {features}) or (N, {features}, *spatial)" if spatial else f"(N, {features})"
        raise ValueError(f"{layer!r}: expected x of shape {wanted}, got {x.shape}")
    if x.dtype != layer.params["gamma"].dtype:
        raise TypeError(f"{layer!r}: x has dtype {x.dtype} but the parameters are {layer.params['gamma'].dtype}; "
                        f"build the layer with dtype={x.dtype} or call .astype(np.{x.dtype})")
    return x


def affine_params(features: int, dtype: Any, owner: str) -> tuple[dict[str, Array], dict[str, Array]]:
    """gamma = 1 and beta = 0 of shape (features,), with zero gradients."""
    dt = float_dtype(dtype, owner)
    params = {"gamma": np.ones(features, dtype=dt), "beta": np.zeros(features, dtype=dt)}
    return params, {k: np.zeros_like(v) for k, v in params.items()}


def normalized_backward(dout: Array, xhat: Array, inv_std: Array, gamma: Array, axis: Any) -> Array:
    """dx of y = gamma * xhat + beta, xhat = (x - mean) * inv_std over ``axis`` (an axis or a tuple of them;
    the compact form):

    dx = inv_std / n * (n * g - sum(g) - xhat * sum(g * xhat)),  g = dout * gamma, sums over ``axis``.
    """
    g = dout * gamma
    n = g.dtype.type(np.prod([g.shape[a] for a in np.atleast_1d(axis)]))
    sum_g = g.sum(axis=axis, keepdims=True)
    sum_gx = (g * xhat).sum(axis=axis, keepdims=True)
    return (inv_std / n) * (n * g - sum_g - xhat * sum_gx)


def moments(x: Array, axis: Any, eps: float) -> tuple[Array, Array, Array]:
    """Mean, variance and 1 / sqrt(variance + eps) over ``axis``, kept, in x's dtype. float32 squares overflow
    past about 1.8e19: where the variance does and the mean does not, the statistics come from float64 (whose
    1 / sqrt is representable though the variance is not), so large valid inputs normalize, not turn to 0."""
    with np.errstate(over="ignore"):  # an overflowing square is handled below
        mean, var = x.mean(axis=axis, keepdims=True), x.var(axis=axis, keepdims=True)
    if np.isfinite(var).all() or not np.isfinite(mean).all():
        return mean, var, 1 / np.sqrt(var + x.dtype.type(eps))
    wide = x.astype(np.float64)
    inv_std = 1 / np.sqrt(wide.var(axis=axis, keepdims=True) + eps)
    return wide.mean(axis=axis, keepdims=True).astype(x.dtype), var, inv_std.astype(x.dtype)


def channel_axes(x: Array) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The axes a per-channel statistic reduces over (all but axis 1), and the shape a (C,) vector takes
    to broadcast along axis 1."""
    return (0, *range(2, x.ndim)), (1, x.shape[1], *(1,) * (x.ndim - 2))


def normalization_example(cls: Any, rng: np.random.Generator, rows: int) -> tuple[Layer, tuple[Array, ...]]:
    """A float64 instance over 4 features with gamma and beta moved off 1 and 0, and x of shape (rows, 4)."""
    layer = cls(4, dtype=np.float64)
    layer.params["gamma"][:] = 1 + 0.1 * rng.standard_normal(4)
    layer.params["beta"][:] = 0.1 * rng.standard_normal(4)
    return layer, (rng.standard_normal((rows, 4)),)


class BatchNorm(Layer, leaf=True):
    """Batch normalization per feature or channel: out = gamma * (x - mean) / sqrt(var + eps) + beta.

    x is (N, D), or (N, C, *spatial) with statistics per channel over the batch and every position (the
    course's spatial batch norm; PyTorch's BatchNorm1d and BatchNorm2d).

    Training mode uses the batch's mean and (biased) variance and updates the buffers
    ``running_mean`` and ``running_var`` (unbiased variance) with ``momentum``:
    running = (1 - momentum) * running + momentum * batch statistic, as PyTorch does. Eval mode uses
    the running statistics. Parameters ``gamma`` (ones) and ``beta`` (zeros), shape (D,), of ``dtype``.
    Local gradient in training (compact form, g = dout * gamma, sums over the batch):
    dx = inv_std / N * (N g - sum(g) - xhat * sum(g xhat)); dgamma = sum(dout xhat); dbeta = sum(dout).
    Caches xhat (N, D) and inv_std (D,) and whether the batch statistics were used.
    """

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5, *, dtype: Any = np.float32) -> None:
        super().__init__()
        if not (isinstance(num_features, int) and num_features >= 1):
            raise ValueError(f"BatchNorm: num_features must be a positive integer, got {num_features!r}")
        if not (isinstance(momentum, (int, float)) and 0 <= momentum <= 1):
            raise ValueError(f"BatchNorm: momentum must be a number in [0, 1], got {momentum!r}")
        if not (isinstance(eps, (int, float)) and eps > 0):
            raise ValueError(f"BatchNorm: eps must be a positive number, got {eps!r}")
        self.num_features, self.momentum, self.eps = num_features, float(momentum), float(eps)
        self.params, self.grads = affine_params(num_features, dtype, "BatchNorm")
        dt = self.params["gamma"].dtype
        self.buffers = {"running_mean": np.zeros(num_features, dtype=dt),
                        "running_var": np.ones(num_features, dtype=dt)}
        self.cache: tuple[Array, Array, bool] | None = None

    def __repr__(self) -> str:
        return f"BatchNorm(num_features={self.num_features})"

    def forward(self, x: Array) -> Array:
        x = check_input(self, x, self.num_features, spatial=True)
        eps = x.dtype.type(self.eps)
        axes, shape = channel_axes(x)
        if self.training:
            count = x.size // self.num_features
            if count < 2:
                raise ValueError(f"{self!r}: a batch of {x.shape[0]} in training mode has no variance; "
                                 "use batches of 2 or more, or call eval()")
            mean, var, inv_std = moments(x, axes, eps)
            self.update_running(mean.reshape(-1), var.reshape(-1), count)
        else:
            mean, var = self.buffers["running_mean"].reshape(shape), self.running_var().reshape(shape)
            inv_std = 1 / np.sqrt(var + eps)
        xhat = (x - mean) * inv_std
        self.cache = (xhat, inv_std, self.training)
        return self.params["gamma"].reshape(shape) * xhat + self.params["beta"].reshape(shape)

    def running_var(self) -> Array:
        """``running_var``, or a ValueError where it overflowed: training normalizes batches whose variance is past
        the dtype's range (``moments``), but the running variance cannot hold it, and eval would give beta alone."""
        var = self.buffers["running_var"]
        if not np.isfinite(var).all():
            features = np.flatnonzero(~np.isfinite(var)).tolist()
            raise ValueError(f"{self!r}: running_var of feature(s) {features[:5]} is {var[features[0]]}: the "
                             f"training batches' variance overflowed {var.dtype}, so eval mode cannot normalize; "
                             "scale the inputs down or build the layer with dtype=np.float64")
        return var

    def update_running(self, mean: Array, var: Array, n: int) -> None:
        m = mean.dtype.type(self.momentum)
        rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
        rm *= 1 - m
        rm += m * mean
        rv *= 1 - m
        rv += m * var * var.dtype.type(n / (n - 1))

    def backward(self, dout: Array) -> Array:
        xhat, inv_std, batch_stats = self.cached(self.cache)
        check_dout(self, dout, xhat.shape)
        axes, shape = channel_axes(xhat)
        gamma = self.params["gamma"].reshape(shape)
        self.grads["gamma"] = (dout * xhat).sum(axis=axes)
        self.grads["beta"] = dout.sum(axis=axes)
        if not batch_stats:  # eval: the statistics are constants
            return dout * (gamma * inv_std)
        return normalized_backward(dout, xhat, inv_std, gamma, axis=axes)

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        layer, _ = normalization_example(cls, rng, 2)
        return layer, (rng.standard_normal((batch, 4, 3, 2)),)  # per channel over the batch and 6 positions


class LayerNorm(Layer, leaf=True):
    """Normalization over the last axis of x (N, ..., D), each position on its own, as PyTorch's
    ``LayerNorm(D)``: out = gamma * (x - mean) / sqrt(var + eps) + beta, mean and var over the D features.

    The same in training and eval. Parameters ``gamma`` (ones) and ``beta`` (zeros), shape (D,).
    Local gradient (g = dout * gamma, sums over the features):
    dx = inv_std / D * (D g - sum(g) - xhat * sum(g xhat)); dgamma = sum over the other axes of dout xhat.
    Caches xhat (x's shape) and inv_std (x's shape with a last axis of 1).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, *, dtype: Any = np.float32) -> None:
        super().__init__()
        if not (isinstance(num_features, int) and num_features >= 1):
            raise ValueError(f"LayerNorm: num_features must be a positive integer, got {num_features!r}")
        if not (isinstance(eps, (int, float)) and eps > 0):
            raise ValueError(f"LayerNorm: eps must be a positive number, got {eps!r}")
        self.num_features, self.eps = num_features, float(eps)
        self.params, self.grads = affine_params(num_features, dtype, "LayerNorm")
        self.cache: tuple[Array, Array] | None = None

    def __repr__(self) -> str:
        return f"LayerNorm(num_features={self.num_features})"

    def forward(self, x: Array) -> Array:
        x = as_float_array(self, x)
        if x.ndim < 2 or x.shape[-1] != self.num_features:
            raise ValueError(f"{self!r}: expected x of shape (N, {self.num_features}) or (N, ..., "
                             f"{self.num_features}), got {x.shape}")
        check_input(self, x.reshape(-1, x.shape[-1]), self.num_features)  # the dtype
        mean, _, inv_std = moments(x, -1, self.eps)
        xhat = (x - mean) * inv_std
        self.cache = (xhat, inv_std)
        return self.params["gamma"] * xhat + self.params["beta"]

    def backward(self, dout: Array) -> Array:
        xhat, inv_std = self.cached(self.cache)
        check_dout(self, dout, xhat.shape)
        others = tuple(range(xhat.ndim - 1))
        self.grads["gamma"] = (dout * xhat).sum(axis=others)
        self.grads["beta"] = dout.sum(axis=others)
        return normalized_backward(dout, xhat, inv_std, self.params["gamma"], axis=-1)

    @classmethod
    def infer(cls, x: Array) -> dict[str, Any]:
        return {"num_features": int(x.shape[-1])}

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3, variant: int = 0) -> tuple[Layer, tuple[Array, ...]]:
        """Variant 0: rows (batch, 4); 1: sequences (batch, 3, 4)."""
        layer, (x,) = normalization_example(cls, rng, batch)
        return layer, (x if variant == 0 else rng.standard_normal((batch, 3, 4)),)

    variants = 2


class GroupNorm(Layer, leaf=True):
    """Group normalization of x (N, C, *spatial): the C channels form ``num_groups`` groups of C / G, and
    each example's group is normalized over its channels and positions; then out = gamma * xhat + beta per
    channel. The same in training and eval (PyTorch's GroupNorm). Parameters ``gamma`` (ones) and ``beta``
    (zeros), shape (C,). Local gradient: LayerNorm's compact form within each group, with g = dout * gamma.
    Caches xhat (x's shape) and inv_std (N, G, 1).
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, *, dtype: Any = np.float32) -> None:
        super().__init__()
        for key, value in (("num_groups", num_groups), ("num_channels", num_channels)):
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"GroupNorm: {key} must be a positive integer, got {value!r}")
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_groups={num_groups} must divide num_channels={num_channels}")
        if not (isinstance(eps, (int, float)) and eps > 0):
            raise ValueError(f"GroupNorm: eps must be a positive number, got {eps!r}")
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, float(eps)
        self.params, self.grads = affine_params(num_channels, dtype, "GroupNorm")
        self.cache: tuple[Array, Array] | None = None

    def __repr__(self) -> str:
        return f"GroupNorm(num_groups={self.num_groups}, num_channels={self.num_channels})"

    def forward(self, x: Array) -> Array:
        x = check_input(self, x, self.num_channels, spatial=True)
        grouped = x.reshape(x.shape[0], self.num_groups, int(np.prod(x.shape[1:])) // self.num_groups)
        mean, _, inv_std = moments(grouped, 2, self.eps)
        xhat = ((grouped - mean) * inv_std).reshape(x.shape)
        self.cache = (xhat, inv_std)
        _, shape = channel_axes(x)
        return self.params["gamma"].reshape(shape) * xhat + self.params["beta"].reshape(shape)

    def backward(self, dout: Array) -> Array:
        xhat, inv_std = self.cached(self.cache)
        check_dout(self, dout, xhat.shape)
        axes, shape = channel_axes(xhat)
        self.grads["gamma"] = (dout * xhat).sum(axis=axes)
        self.grads["beta"] = dout.sum(axis=axes)
        grouped = xhat.reshape(xhat.shape[0], self.num_groups, int(np.prod(xhat.shape[1:])) // self.num_groups)
        g = (dout * self.params["gamma"].reshape(shape)).reshape(grouped.shape)
        return normalized_backward(g, grouped, inv_std, g.dtype.type(1), axis=2).reshape(dout.shape)

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        layer = cls(2, 4, dtype=np.float64)
        layer.params["gamma"][:] = 1 + 0.1 * rng.standard_normal(4)
        layer.params["beta"][:] = 0.1 * rng.standard_normal(4)
        return layer, (rng.standard_normal((batch, 4, 3, 2)),)
