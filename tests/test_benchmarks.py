"""The benchmark suite runs end to end on tiny sizes, with or without the bench extra (no timing is asserted)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.subprocess_runs import ROOT


@pytest.mark.slow
def test_quick_benchmark_runs_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--seconds", "0.05",
                             "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    configs = {(r["config"], r["dtype"]) for r in report["steps"]}
    assert ("tiny", "float32") in configs and ("tiny-maxout", "float64") in configs
    for row in report["steps"]:
        for contender in ("chainrule", "numpy", "matmul"):
            t = row["times"][contender]
            assert 0 < t["low"] <= t["median"] <= t["high"]
        assert row["peak_gflops"] > 0 and row["mflop"] > 0 and row["peak_vs_numpy"] > 0
    assert {r["layer"] for r in report["layers"]} >= {"Affine", "ReLU", "Maxout", "Max"}
    assert "÷numpy" in result.stdout and "each contender in its own process" in result.stdout
    assert "blas" in report["environment"] and "forced" in report["environment"]


def test_matmul_flops_counts_forward_and_both_backward_products():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from steps import matmul_flops

    # 64-100-10 at a batch of 32: x W (both layers), x.T dz (both), dz W.T (the second only)
    assert matmul_flops((64, [("relu", 100)], 10, 32)) == 2 * 32 * (64 * 100 * 2 + 100 * 10 * 3)


def test_hand_written_step_matches_the_framework_step():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from steps import framework_step, numpy_step

    hidden = [("relu", 6), ("maxout", 5, 2), ("sigmoid", 4), ("tanh", 4)]
    framework, by_hand = framework_step(3, hidden, 3, np.float64), numpy_step(3, hidden, 3, np.float64)
    rng = np.random.default_rng(0)
    for _ in range(3):
        X, y = rng.standard_normal((7, 3)), rng.integers(0, 3, 7)
        assert framework(X, y) == pytest.approx(by_hand(X, y), rel=1e-12)
