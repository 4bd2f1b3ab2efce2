"""L2 regularization as the lecture writes it: reg * sum_k sum(W_k ** 2) over weight tensors.

Weight tensors are the parameters with ndim >= 2; biases are not regularized.
The gradient of the penalty is 2 * reg * W.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Params = dict[str, NDArray[np.floating]]


def l2_penalty(params: Params, reg: float) -> float:
    """reg * sum of squares of every weight tensor (ndim >= 2)."""
    if reg == 0:
        return 0.0
    return reg * sum(float(np.vdot(w, w)) for w in params.values() if w.ndim >= 2)


def add_l2_grad(params: Params, grads: Params, reg: float) -> None:
    """grads[k] += 2 * reg * params[k] in place, for every weight tensor (ndim >= 2)."""
    if reg == 0:
        return
    for key, w in params.items():
        if w.ndim >= 2:
            g = grads[key]
            g += g.dtype.type(2 * reg) * w
