"""PyTorch's outputs and gradients, stored, so that comparisons with PyTorch run where torch is not installed
(CI installs none).

``torch_reference(name, compute)`` returns ``compute(torch)``'s arrays where torch is installed, checked against
``tests/references/NAME.npz`` when that file exists; without torch, the stored arrays. To write (or rewrite)
the files, run the tests that use them with torch installed and ``CHAINRULE_STORE_REFERENCES=1``:

    CHAINRULE_STORE_REFERENCES=1 python -m pytest tests/layers/test_attention.py tests/optim/test_adamw.py

A test's inputs come from seeded Generators, so the stored arrays are PyTorch's answer to the same question.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REFERENCES = Path(__file__).resolve().parent / "references"


def torch_reference(name: str, compute: Callable[[Any], dict[str, Any]]) -> dict[str, np.ndarray]:
    """PyTorch's arrays for ``name``: computed (and stored, or checked against the stored ones) with torch,
    read from the stored file without it; a test without either skips."""
    path = REFERENCES / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_')}.npz"
    try:
        import torch
    except ImportError:
        if not path.exists():
            pytest.skip(f"torch is not installed and {path.name} is not stored")
        with np.load(path, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}
    arrays = {key: np.asarray(value) for key, value in compute(torch).items()}
    if os.environ.get("CHAINRULE_STORE_REFERENCES"):
        REFERENCES.mkdir(exist_ok=True)
        np.savez_compressed(path, **arrays)
    elif path.exists():  # the stored answer is still PyTorch's
        with np.load(path, allow_pickle=False) as stored:
            assert sorted(stored.files) == sorted(arrays), f"{path.name}: stored keys differ; store it again"
            for key, value in arrays.items():
                np.testing.assert_allclose(stored[key], value, rtol=1e-9, atol=1e-12, err_msg=f"{path.name}: {key}")
    return arrays
