"""How many BLAS threads a training step uses: the Solver's ``threads`` setting, "auto" or a count."""

from __future__ import annotations

from typing import Any

import numpy as np
from threadpoolctl import threadpool_info

from losses import is_weight

AUTO_MIN_FLOPS = 10e6  # below this per matrix product, a second BLAS thread costs more than it gives (README)


def largest_matmul_flops(model: Any, batch_size: int) -> float:
    """2 N D M for the largest weight (D, M) of the model at a batch of N: the biggest product of a step."""
    return max((2.0 * batch_size * w.shape[0] * float(np.prod(w.shape[1:])) for w in model.params.values()
                if is_weight(w)), default=0.0)


def blas_threads(threads: int | str, model: Any, batch_size: int) -> int:
    """The BLAS threads training uses: ``threads``, or for "auto" one thread when the largest matrix product of
    a step is under AUTO_MIN_FLOPS and otherwise every thread BLAS may use now (all the cores, or fewer where a
    sweep worker or the caller limited them). Never more than that limit."""
    limit = max((p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"), default=1)
    if threads != "auto":
        return min(int(threads), limit)
    return limit if largest_matmul_flops(model, batch_size) >= AUTO_MIN_FLOPS else 1
