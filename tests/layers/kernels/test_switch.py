"""CHAINRULE_KERNELS picks the path for the whole process; without numba everything runs on numpy."""

from __future__ import annotations

import os

import numpy as np
import pytest

import layers.kernels as kernels
from layers import Conv2D


def test_numpy_forces_the_numpy_path(monkeypatch):
    monkeypatch.setenv("CHAINRULE_KERNELS", "numpy")
    assert kernels.compiled("windows") is None


@pytest.mark.parametrize("value", ["numbaa", "fast", "1"])
def test_an_unknown_choice_is_an_error_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("CHAINRULE_KERNELS", value)
    with pytest.raises(ValueError, match=f"CHAINRULE_KERNELS must be 'numba' or 'numpy', got '{value}'"):
        kernels.compiled("windows")


def test_inputs_smaller_than_a_family_pays_from_run_on_numpy(monkeypatch):
    monkeypatch.delenv("CHAINRULE_KERNELS", raising=False)
    monkeypatch.setattr(kernels, "available", lambda: True)
    monkeypatch.setattr(kernels, "_modules", {**kernels._modules, "windows": "the windows kernels",
                                              "recurrent": "the recurrent kernels"})
    assert kernels.compiled("windows", kernels.MIN_PARALLEL - 1) is None
    assert kernels.compiled("windows", kernels.MIN_PARALLEL) == "the windows kernels"
    assert kernels.compiled("recurrent", kernels.MIN_PARALLEL - 1) is None
    assert kernels.compiled("recurrent", kernels.MIN_PARALLEL) == "the recurrent kernels"


def test_without_numba_layers_run_on_numpy(monkeypatch):
    monkeypatch.delenv("CHAINRULE_KERNELS", raising=False)
    monkeypatch.setattr(kernels, "available", lambda: False)
    assert kernels.compiled("windows") is None
    layer = Conv2D(2, 3, 3, padding=1, rng=0)
    out = layer.forward(np.ones((2, 2, 5, 5), np.float32))
    assert out.shape == (2, 3, 5, 5) and layer.backward(np.ones_like(out)).shape == (2, 2, 5, 5)


def test_asking_for_numba_without_it_says_how_to_install_it(monkeypatch):
    monkeypatch.setenv("CHAINRULE_KERNELS", "numba")
    monkeypatch.setattr(kernels, "available", lambda: False)
    with pytest.raises(ImportError, match=r"CHAINRULE_KERNELS=numba but numba is not installed: pip install"):
        kernels.compiled("windows")


def test_threads_caps_numba_and_restores_it(monkeypatch):
    numba = pytest.importorskip("numba")
    monkeypatch.delenv("CHAINRULE_KERNELS", raising=False)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    with kernels.threads(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    with kernels.threads(10_000):
        assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS


def test_starting_numba_leaves_the_environment_as_it_was(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert kernels.start_numba() is not None
    assert "OMP_WAIT_POLICY" not in os.environ  # PyTorch, loaded later, keeps its own policy
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    kernels.start_numba()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
