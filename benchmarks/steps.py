"""One training step (forward, softmax loss, backward, SGD update) four ways, for the same network:
through chainrule's public API, hand-written numpy, the matrix multiplies alone, and PyTorch on the CPU.

A network is a list of hidden layer specs, ("relu" | "sigmoid" | "tanh", width) or ("maxout", width, pieces),
followed by a linear output layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from layers import Affine, Maxout, ReLU, Sequential, Sigmoid, Tanh
from optim import SGD
from solver import Solver

LR = 1e-3
Step = Callable[[np.ndarray, np.ndarray], Any]
CONFIGS = {  # name: (inputs, hidden layers, classes, batch)
    "small": (64, [("relu", 100)], 10, 32),
    "deep-narrow": (100, [("relu", 100)] * 10, 10, 64),
    "medium": (784, [("relu", 512), ("relu", 512)], 10, 128),
    "large": (3072, [("relu", 1024), ("relu", 1024)], 10, 256),
    "maxout": (784, [("maxout", 256, 2)], 10, 128),
    "sigmoid-tanh": (784, [("sigmoid", 512), ("tanh", 512)], 10, 128),
    # --quick: tiny sizes that check everything runs
    "tiny": (16, [("relu", 8)], 4, 8),
    "tiny-maxout": (16, [("maxout", 8, 2)], 4, 8),
    "tiny-sigmoid-tanh": (16, [("sigmoid", 8), ("tanh", 8)], 4, 8),
}
FULL = ["small", "deep-narrow", "medium", "large", "maxout", "sigmoid-tanh"]
QUICK = ["tiny", "tiny-maxout", "tiny-sigmoid-tanh"]


def matmul_flops(spec: tuple) -> float:
    """The matrix products of one step: x W forward, x.T dz and dz W.T backward (no dx for the first layer)."""
    d, hidden, classes, batch = spec
    flops = 0.0
    for i, layer in enumerate([*hidden, ("linear", classes)]):
        cols = layer[1] * (layer[2] if layer[0] == "maxout" else 1)
        flops += 2 * batch * d * cols * (2 if i == 0 else 3)
        d = layer[1]
    return flops


def init_weights(d_in: int, hidden: list[tuple], classes: int, dtype: Any, seed: int = 0) -> list[tuple]:
    """He-initialised (W, b) per layer; Maxout layers get W of shape (D, K*M)."""
    rng = np.random.default_rng(seed)
    weights, d = [], d_in
    for spec in [*hidden, ("linear", classes)]:
        cols = spec[1] * (spec[2] if spec[0] == "maxout" else 1)
        W = (rng.standard_normal((d, cols)) * np.sqrt(2.0 / d)).astype(dtype)
        weights.append((W, np.zeros(cols, dtype=dtype)))
        d = spec[1]
    return weights


def framework_step(d_in: int, hidden: list[tuple], classes: int, dtype: Any) -> Step:
    layers, weights = [], init_weights(d_in, hidden, classes, dtype)
    activations = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}
    d = d_in
    for spec, (W, b) in zip([*hidden, ("linear", classes)], weights, strict=True):
        if spec[0] == "maxout":
            layer: Any = Maxout(d, spec[1], spec[2], dtype=dtype)
        else:
            layer = Affine(d, spec[1], dtype=dtype)
        layer.params["W"][...] = W
        layer.params["b"][...] = b
        layers.append(layer)
        if spec[0] in activations:
            layers.append(activations[spec[0]]())
        d = spec[1]
    dummy = np.zeros((2, d_in), dtype=dtype)
    labels = np.zeros(2, dtype=np.int64)
    solver = Solver(Sequential(*layers), {"X_train": dummy, "y_train": labels, "X_val": dummy, "y_val": labels},
                    loss="softmax", optimizer=SGD(lr=LR), verbose=False)
    return solver.step


def numpy_step(d_in: int, hidden: list[tuple], classes: int, dtype: Any) -> Step:
    """The same math written by hand: the floor that the framework's abstractions must approach."""
    weights = init_weights(d_in, hidden, classes, dtype)
    kinds = [spec for spec in hidden] + [("linear", classes)]
    lr = dtype(LR)

    def step(X: np.ndarray, y: np.ndarray) -> float:
        h, caches = X, []
        for spec, (W, b) in zip(kinds, weights, strict=True):
            h_in = h
            z = h_in @ W
            z += b
            if spec[0] == "relu":
                extra = z > 0
                h = z * extra
            elif spec[0] == "sigmoid":
                with np.errstate(over="ignore"):
                    h = extra = 1 / (1 + np.exp(-z))
            elif spec[0] == "tanh":
                h = extra = np.tanh(z)
            elif spec[0] == "maxout":
                z3 = z.reshape(len(h_in), spec[2], spec[1])
                extra = z3.argmax(axis=1)[:, None, :]
                h = np.take_along_axis(z3, extra, axis=1)[:, 0, :]
            else:
                h, extra = z, None
            caches.append((h_in, extra))
        N = len(y)
        shifted = h - h.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        probs = exp / exp.sum(axis=1, keepdims=True)
        loss = -np.log(probs[np.arange(N), y]).mean()
        d = probs
        d[np.arange(N), y] -= 1
        d /= N
        for i in range(len(weights) - 1, -1, -1):
            spec, (W, b) = kinds[i], weights[i]
            h_in, extra = caches[i]
            if spec[0] == "relu":
                d *= extra
            elif spec[0] == "sigmoid":
                d *= extra * (1 - extra)
            elif spec[0] == "tanh":
                d *= 1 - extra * extra
            elif spec[0] == "maxout":
                dz = np.zeros((N, spec[2], spec[1]), dtype=d.dtype)
                np.put_along_axis(dz, extra, d[:, None, :], axis=1)
                d = dz.reshape(N, -1)
            dW = h_in.T @ d
            db = d.sum(axis=0)
            if i > 0:
                d = d @ W.T
            W -= lr * dW
            b -= lr * db
        return float(loss)

    return step


def matmul_step(d_in: int, hidden: list[tuple], classes: int, dtype: Any, batch: int) -> Step:
    """Only the matrix products of a step, into preallocated outputs: x W forward, x.T dz and dz W.T backward."""
    weights = [W for W, _ in init_weights(d_in, hidden, classes, dtype)]
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((batch, W.shape[0])).astype(dtype) for W in weights]
    dz = [rng.standard_normal((batch, W.shape[1])).astype(dtype) for W in weights]
    z = [np.empty_like(d) for d in dz]
    dW = [np.empty_like(W) for W in weights]
    dx = [np.empty_like(x) for x in inputs]

    def step(X: np.ndarray, y: np.ndarray) -> None:
        inputs[0] = X
        for i, W in enumerate(weights):
            np.matmul(inputs[i], W, out=z[i])
        for i in range(len(weights) - 1, -1, -1):
            np.matmul(inputs[i].T, dz[i], out=dW[i])
            if i > 0:
                np.matmul(dz[i], weights[i].T, out=dx[i])

    return step


def torch_step(d_in: int, hidden: list[tuple], classes: int, dtype: Any) -> Step | None:
    """PyTorch's CPU step of the same network, or None when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch_dtype = torch.float32 if dtype == np.float32 else torch.float64
    weights = init_weights(d_in, hidden, classes, dtype)
    params = [(torch.tensor(W, dtype=torch_dtype, requires_grad=True),
               torch.tensor(b, dtype=torch_dtype, requires_grad=True)) for W, b in weights]
    flat = [p for pair in params for p in pair]
    opt = torch.optim.SGD(flat, lr=LR)
    kinds = [*hidden, ("linear", classes)]
    act = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}

    def step(X: Any, y: Any) -> float:
        opt.zero_grad(set_to_none=True)
        h = X
        for spec, (W, b) in zip(kinds, params, strict=True):
            h = torch.addmm(b, h, W)
            if spec[0] == "maxout":
                h = h.view(len(h), spec[2], spec[1]).amax(dim=1)
            elif spec[0] in act:
                h = act[spec[0]](h)
        loss = torch.nn.functional.cross_entropy(h, y)
        loss.backward()
        opt.step()
        return loss.item()

    return step
