"""The gradient checker: every registered layer passes, broken layers fail, Jacobians agree."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from layers import REGISTRY, Affine, Layer, Maxout, ReLU, Sigmoid
from layers.gradcheck import assert_gradients, check_jacobian, gradcheck, numerical_jacobian, rel_error

ROOT = Path(__file__).resolve().parents[1]
BUILTINS = sorted(name for name, cls in REGISTRY.items() if cls.__module__.startswith("layers."))


def test_every_builtin_layer_is_covered():
    # The registry drives the parametrised check below; this pins that it is not empty and complete.
    assert {"Add", "Mul", "Max", "Affine", "ReLU", "Sigmoid", "Tanh", "ELU", "LeakyReLU", "Maxout",
            "Sequential"} <= set(BUILTINS)


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("batch", [1, 4])
def test_registered_layer_passes_gradcheck(name, batch):
    layer, inputs = REGISTRY[name].example(np.random.default_rng(batch), batch=batch)
    report = gradcheck(layer, *inputs)
    assert report.passed, str(report)
    assert max(c.max_rel_error for c in report.checks) < 1e-7
    expected = {f"d{n}" for n in getattr(layer, "input_names", ())} or ({"dx"} if len(inputs) == 1 else {"dx", "dy"})
    assert {c.name for c in report.checks} == expected | set(layer.params)


def test_gradcheck_leaves_caller_layer_and_inputs_untouched():
    layer = Affine(3, 2, rng=0)
    W = layer.params["W"].copy()
    x = np.ones((2, 3), np.float32)
    gradcheck(layer, x)
    assert layer.params["W"].dtype == np.float32
    np.testing.assert_array_equal(layer.params["W"], W)
    np.testing.assert_array_equal(x, 1.0)


class Doubled(Layer, register=False):
    """out = 2x but backward claims 3: a wrong input gradient."""

    def forward(self, x):
        self.n = x.shape
        return 2 * x

    def backward(self, dout):
        return 3 * dout


def test_wrong_gradient_fails_with_worst_entry_values():
    report = gradcheck(Doubled(), np.ones((2, 2)), dout=np.ones((2, 2)))
    assert not report.passed
    check = report.checks[0]
    assert check.analytic == 3.0
    assert check.numerical == pytest.approx(2.0, rel=1e-9)
    assert check.max_rel_error == pytest.approx(1 / 3, rel=1e-9)
    with pytest.raises(AssertionError, match=r"gradient check failed for Doubled \(dx\)"):
        assert_gradients(Doubled(), np.ones((2, 2)))


def test_rel_error_is_relative_above_the_floor_and_absolute_below():
    a, n = np.array([0.0, 1.0, 2e-6, 1e-9]), np.array([0.0, 0.5, 1e-6, 1e-9 + 1e-13])
    np.testing.assert_allclose(rel_error(a, n), [0.0, 0.5, 1e-2, 1e-9], rtol=1e-6)


def test_kink_crossing_is_detected_not_failed():
    # x = 1e-6 sits within the step h = 1e-5 of ReLU's kink: the step crosses it.
    report = gradcheck(ReLU(), np.array([[1e-6, 1.0, -1.0]]), dout=np.ones((1, 3)))
    assert report.passed
    assert report.checks[0].kinks == 1


def test_maxout_tie_crossing_is_detected():
    layer = Maxout(1, 1, pieces=2, dtype=np.float64)
    layer.params["W"][:] = [[1.0, -1.0]]
    report = gradcheck(layer, np.array([[1e-7]]), dout=np.ones((1, 1)))  # pieces tie at x = 0
    assert report.passed
    assert [c.kinks for c in report.checks] == [1, 0, 2]  # dx, W (smooth in W), b (both pieces)


def test_jacobian_of_elementwise_layer_is_diagonal(rng):
    x = rng.standard_normal((2, 3))
    J = check_jacobian(Sigmoid(), x)
    s = 1 / (1 + np.exp(-x.ravel()))
    np.testing.assert_allclose(J, np.diag(s * (1 - s)), atol=1e-9)


def test_jacobian_of_affine_is_W_transposed_per_sample(rng):
    layer = Affine(3, 2, rng=rng, dtype=np.float64)
    J = check_jacobian(layer, rng.standard_normal((1, 3)))
    np.testing.assert_allclose(J, layer.params["W"].T, atol=1e-9)


def test_check_jacobian_catches_wrong_backward():
    with pytest.raises(AssertionError, match=r"backward\(e_0\) differs from row 0 of the Jacobian"):
        check_jacobian(Doubled(), np.ones(3))


def test_numerical_jacobian_of_gate_wrt_second_input():
    from layers import Mul

    J = numerical_jacobian(Mul(), np.array([2.0, 3.0]), np.array([5.0, 7.0]), wrt=1)
    np.testing.assert_allclose(J, np.diag([2.0, 3.0]), atol=1e-9)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "layers.gradcheck", *args], capture_output=True, text=True,
                          cwd=ROOT / "tests" / "userlayers")


def test_cli_passes_builtins():
    result = run_cli()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(BUILTINS)} layers" in result.stdout and "all passed" in result.stdout
    assert "(1, 2, 3)" in result.stdout  # a batch of 1, multi-dimensional


def test_cli_fails_naming_broken_user_layers():
    result = run_cli("broken_layers")
    assert result.returncode == 1
    last = result.stdout.strip().splitlines()[-1]
    assert last.endswith("FAILED: WrongInputGradScale, WrongParamGradScale")
    lines = result.stdout.splitlines()

    def row(layer, tensor):
        return next(line for line in lines if re.match(rf"{layer}\s+\(4, 3\)\s+{tensor}\s", line))

    assert row("GoodScale", "dx").endswith("pass") and row("GoodScale", "w").endswith("pass")
    assert row("WrongInputGradScale", "dx").endswith("FAIL")
    assert row("WrongParamGradScale", "dx").endswith("pass")
    assert row("WrongParamGradScale", "w").endswith("FAIL")


def test_cli_unknown_module_is_one_line_and_status_2():
    result = run_cli("no_such_module_xyz")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "layers.gradcheck: cannot import module: ModuleNotFoundError: No module named 'no_such_module_xyz'"]
