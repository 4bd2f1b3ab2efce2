"""The benchmark suite runs end to end on tiny sizes, with or without the bench extra (no timing is asserted)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_runs_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--seconds", "0.05",
                             "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    configs = {(r["config"], r["dtype"]) for r in report["steps"]}
    assert ("small", "float32") in configs and ("maxout", "float64") in configs
    for row in report["steps"]:
        assert row["chainrule_us"] > 0 and row["numpy_us"] > 0 and row["peak_kib"] > 0
    assert {r["layer"] for r in report["layers"]} >= {"Affine", "ReLU", "Maxout", "Max"}
    assert "÷numpy" in result.stdout and "blas" in report["environment"]


def test_hand_written_step_matches_the_framework_step():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from steps import framework_step, numpy_step

    hidden = [("relu", 6), ("maxout", 5, 2), ("sigmoid", 4), ("tanh", 4)]
    framework, by_hand = framework_step(3, hidden, 3, np.float64), numpy_step(3, hidden, 3, np.float64)
    rng = np.random.default_rng(0)
    for _ in range(3):
        X, y = rng.standard_normal((7, 3)), rng.integers(0, 3, 7)
        assert framework(X, y) == pytest.approx(by_hand(X, y), rel=1e-12)
