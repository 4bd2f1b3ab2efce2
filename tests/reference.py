"""Independent reference implementations: scalar Python loops with the math module.

Each returns (out, dx[, param grads]) for float64 inputs, written from the
formulas alone, sharing no code with the layers under test.
"""

from __future__ import annotations

import math

import numpy as np


def elementwise(f, df, x, dout):
    out = np.array([f(v) for v in x.ravel()]).reshape(x.shape)
    dx = np.array([df(v) * g for v, g in zip(x.ravel(), dout.ravel(), strict=True)]).reshape(x.shape)
    return out, dx


def sigmoid(v):
    return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))


REFERENCE = {
    "ReLU": lambda: (lambda v: v if v > 0 else 0.0, lambda v: 1.0 if v > 0 else 0.0),
    "LeakyReLU": lambda a=0.1: (lambda v: v if v > 0 else a * v, lambda v: 1.0 if v > 0 else a),
    "ELU": lambda a=1.5: (lambda v: v if v > 0 else a * (math.exp(v) - 1), lambda v: 1.0 if v > 0 else a * math.exp(v)),
    "Sigmoid": lambda: (sigmoid, lambda v: sigmoid(v) * (1 - sigmoid(v))),
    "Tanh": lambda: (math.tanh, lambda v: 1 - math.tanh(v) ** 2),
}


def affine(x, W, b, dout):
    N, D = x.shape[0], W.shape[0]
    xf = x.reshape(N, D)
    M = W.shape[1]
    out = np.zeros((N, M))
    dx = np.zeros((N, D))
    dW = np.zeros((D, M))
    db = np.zeros(M)
    for n in range(N):
        for m in range(M):
            out[n, m] = b[m] + sum(xf[n, d] * W[d, m] for d in range(D))
            db[m] += dout[n, m]
            for d in range(D):
                dx[n, d] += dout[n, m] * W[d, m]
                dW[d, m] += dout[n, m] * xf[n, d]
    return out, dx.reshape(x.shape), dW, db


def maxout(x, W, b, pieces, dout):
    N, D = x.shape[0], W.shape[0]
    xf = x.reshape(N, D)
    M = W.shape[1] // pieces
    out = np.zeros((N, M))
    dx = np.zeros((N, D))
    dW = np.zeros_like(W)
    db = np.zeros_like(b)
    for n in range(N):
        for m in range(M):
            values = [b[k * M + m] + sum(xf[n, d] * W[d, k * M + m] for d in range(D)) for k in range(pieces)]
            k = max(range(pieces), key=lambda j: (values[j], -j))
            out[n, m] = values[k]
            db[k * M + m] += dout[n, m]
            for d in range(D):
                dx[n, d] += dout[n, m] * W[d, k * M + m]
                dW[d, k * M + m] += dout[n, m] * xf[n, d]
    return out, dx.reshape(x.shape), dW, db
