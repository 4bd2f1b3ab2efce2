"""The minibatches of a training epoch: rows gathered in the shuffled order (from memory-mapped arrays too),
each batch passed through the user's ``augment(x, y, rng) -> (x, y)``, and, when asked, the next batch prepared
in a background thread while the current step runs.

The augmentation draws from the Generator it is given (the Solver's own, whose state checkpoints keep), in batch
order, in whichever thread prepares the batch: a resumed run draws the same values.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import NDArray

Augment = Callable[[NDArray[Any], NDArray[Any], np.random.Generator], tuple[NDArray[Any], NDArray[Any]]]


def check_augment(augment: Any) -> Augment | None:
    """``augment`` itself when it is None or callable; else a TypeError naming it."""
    if augment is not None and not callable(augment):
        raise TypeError(f"Solver: augment must be a function (x, y, rng) -> (x, y), got {type(augment).__name__}")
    return augment


def augmented(augment: Augment, x: NDArray[Any], y: NDArray[Any], rng: np.random.Generator
              ) -> tuple[NDArray[Any], NDArray[Any]]:
    """``augment``'s batch, checked: a pair of arrays with x's dtype and as many rows as came in."""
    out = augment(x, y, rng)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(f"Solver: augment must return a pair (x, y), got {type(out).__name__}")
    xa, ya = np.asarray(out[0]), np.asarray(out[1])
    if xa.dtype != x.dtype or len(xa) != len(x) or len(ya) != len(x):
        raise ValueError(f"Solver: augment turned a batch of {len(x)} rows of {x.dtype} into {len(xa)} rows of "
                         f"{xa.dtype} (and {len(ya)} targets); it must keep the rows and the dtype")
    return xa, ya


def release_pages(X: Any) -> None:
    """Drop the pages of a read-only memory-mapped ``X`` (a numpy memmap, or a view of one) from this process's
    resident memory: they stay in the system's page cache, and the next read maps them again, so a pass over
    data larger than memory does not hold the whole file in the process. Nothing for an array in memory, or
    for a writeable mapping (whose private changes a copy-on-write map would lose)."""
    if getattr(getattr(X, "flags", None), "writeable", True) or not hasattr(mmap, "MADV_DONTNEED"):
        return
    while X is not None and getattr(X, "_mmap", None) is None:
        X = getattr(X, "base", None)
    if X is not None:
        X._mmap.madvise(mmap.MADV_DONTNEED)


def batches(X: NDArray[Any], y: NDArray[Any], order: NDArray[np.intp], batch_size: int,
            augment: Augment | None = None, rng: np.random.Generator | None = None,
            prefetch: bool = False) -> Iterator[tuple[NDArray[Any], NDArray[Any]]]:
    """(x, y) for each slice of ``order`` of ``batch_size`` rows, augmented when ``augment`` is given."""

    def batch(i: int) -> tuple[NDArray[Any], NDArray[Any]]:
        idx = order[i * batch_size:(i + 1) * batch_size]
        x, t = X[idx], y[idx]
        release_pages(X)
        return augmented(augment, x, t, rng) if augment is not None and rng is not None else (x, t)

    count = -(-len(order) // batch_size)
    if not prefetch or count < 2:
        yield from (batch(i) for i in range(count))
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="chainrule-batches") as pool:
        upcoming = pool.submit(batch, 0)
        for i in range(count):
            current = upcoming.result()
            if i + 1 < count:
                upcoming = pool.submit(batch, i + 1)
            yield current
