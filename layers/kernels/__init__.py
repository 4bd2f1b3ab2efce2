"""Compiled kernels: the passes numpy makes slowly (windows to columns and back, pooling's compare-and-select, a
recurrent step's gates), written once more as numba functions beside their numpy twins.

The numpy code in the layers is the reference: it is what the docstrings explain and what the tests compare each
kernel with (float32 within 1e-6 relative, float64 within 1e-12). A kernel is used when numba is installed (the
``fast`` extra: ``pip install chainrule[fast]``) and the environment variable ``CHAINRULE_KERNELS`` is not
``numpy``; ``CHAINRULE_KERNELS=numpy`` forces the numpy path for the whole process, ``CHAINRULE_KERNELS=numba``
makes a missing numba an error. Kernels are compiled at their first call for each dtype and cached on disk by
numba (``__pycache__`` beside this package, or numba's cache folder where that is read-only).

Kernels run in parallel over the batch on numba's threads; the Solver gives them the threads it gives BLAS
(``threads``), and the two never run at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

CHOICES = ("numba", "numpy")
#: Kernels run from this many values up: below it, waking numba's sleeping threads (30-60 µs a call) costs more
#: than numpy's passes save (the MNIST-1D CNN's training step, inputs of 25,000-50,000 values: 1.46-1.75 ms with
#: kernels from 2**14 values, 1.34 from 2**16, 1.28-1.41 ms on numpy alone; the CIFAR-shaped net's inputs are all
#: larger), and a small model never pays numba's import (about 0.25 s a process) nor its memory.
MIN_PARALLEL = 1 << 16
SMALLEST = {"windows": MIN_PARALLEL, "pooling": MIN_PARALLEL, "activations": MIN_PARALLEL, "recurrent": MIN_PARALLEL}
_modules: dict[str, ModuleType | None] = {}


def choice() -> str:
    """The path ``CHAINRULE_KERNELS`` asks for: "numba" (the default) or "numpy"; anything else is an error."""
    value = os.environ.get("CHAINRULE_KERNELS", "").strip().lower() or "numba"
    if value not in CHOICES:
        raise ValueError(f"CHAINRULE_KERNELS must be 'numba' or 'numpy', got {os.environ['CHAINRULE_KERNELS']!r}")
    return value


def available() -> bool:
    """Whether numba can be imported (the ``fast`` extra); the first call imports it and starts its threads."""
    if "numba" not in _modules:
        _modules["numba"] = start_numba()
    return _modules["numba"] is not None


def start_numba() -> ModuleType | None:
    """numba with its thread pool started, or None where it is not installed. Its OpenMP threads are started told
    to sleep between kernels: spinning, they take the cores BLAS needs next (the CIFAR-shaped training step of
    benchmarks/conv_bench.py took 71 ms with them spinning, 31 ms asleep). The environment says so only while
    they start, so another OpenMP runtime loaded later (PyTorch's) keeps its own policy."""
    before = os.environ.get("OMP_WAIT_POLICY")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import numba
        from numba.np.ufunc.parallel import _launch_threads

        _launch_threads()
    except ImportError:
        return None
    finally:
        if before is None:
            del os.environ["OMP_WAIT_POLICY"]
    return numba


def compiled(family: str, values: int | None = None) -> Any:
    """The kernel module of ``family`` ("windows", "pooling", "recurrent", "activations"), or None where the numpy
    path is to run: numba missing, ``CHAINRULE_KERNELS=numpy``, or an input of fewer ``values`` than the family's
    kernels pay from (``SMALLEST``)."""
    if (values is not None and values < SMALLEST.get(family, 0)) or choice() == "numpy":
        return None
    if not available():
        if os.environ.get("CHAINRULE_KERNELS", "").strip().lower() == "numba":
            raise ImportError("CHAINRULE_KERNELS=numba but numba is not installed: pip install 'chainrule[fast]' "
                              "(or unset CHAINRULE_KERNELS to use numpy)")
        return None
    module = _modules.get(family)
    if module is None:
        import importlib

        module = _modules[family] = importlib.import_module(f"{__name__}.{family}")
    return module


@contextmanager
def threads(count: int) -> Iterator[None]:
    """Run the kernels called inside on at most ``count`` threads (numba's setting for this thread, restored)."""
    if choice() == "numpy" or not available():
        yield
        return
    numba = _modules["numba"]
    assert numba is not None  # available() said so
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(count), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(before)
