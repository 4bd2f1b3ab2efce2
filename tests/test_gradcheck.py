"""The gradient checker: every registered layer passes, broken layers fail, Jacobians agree."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from layers import REGISTRY, Affine, Layer, Maxout, ReLU, Sigmoid
from layers.gradcheck import assert_gradients, check_jacobian, gradcheck, numerical_jacobian
from layers.gradcheck.finite_diff import rounding_allowance
from losses import LOSSES
from losses.gradcheck import check_loss

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
    assert all(c.abs_error <= c.allowed for c in report.checks)
    expected = {f"d{n}" for n in getattr(layer, "input_names", ())} or ({"dx"} if len(inputs) == 1 else {"dx", "dy"})
    if np.asarray(inputs[0]).dtype.kind != "f":  # indices (Embedding) have no gradient
        expected = set()
    assert {c.name for c in report.checks} == expected | set(layer.params)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_registered_loss_passes_gradcheck(name):
    loss, (scores, y) = LOSSES[name].example(np.random.default_rng(0), batch=5)
    report = check_loss(loss, scores, y)
    assert report.passed, str(report)
    assert [c.name for c in report.checks] == ["dscores"]


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


def test_wrong_gradient_fails_with_worst_entry_values_and_reason():
    report = gradcheck(Doubled(), np.ones((2, 2)), dout=np.ones((2, 2)))
    assert not report.passed
    check = report.checks[0]
    assert check.analytic == 3.0
    assert check.numerical == pytest.approx(2.0, rel=1e-9)
    assert check.abs_error == pytest.approx(1.0, rel=1e-9)
    assert check.max_rel_error == pytest.approx(1 / 3, rel=1e-9)
    assert check.reason == "analytic is 1.5x numerical"
    with pytest.raises(AssertionError, match=r"gradient check failed for Doubled \(dx\)"):
        assert_gradients(Doubled(), np.ones((2, 2)))


def test_budget_is_rtol_plus_truncation_plus_rounding():
    # out = x**3 at x = 2, dout = 1: |g_h - g_2h| = 3 h^2 f'''/6 = 3e-10 (f''' = 6),
    # rounding = 64 eps max|out| sum|dout| / h with max|out| = 8.
    from tests.gradzoo.correct import Cube

    check = gradcheck(Cube(), np.array([[2.0]]), dout=np.ones((1, 1))).checks[0]
    rounding = 64 * np.finfo(float).eps * 8 / 1e-5
    assert check.allowed == pytest.approx(1e-5 * 12 + 3e-10 + rounding, rel=1e-2)
    assert check.numerical == pytest.approx(12.0, abs=1e-9)


def test_rounding_allowance_formula():
    out, dout = np.array([1.0, -4.0]), np.array([0.5, -0.5])
    assert rounding_allowance(out, dout, 1e-5) == pytest.approx(64 * np.finfo(float).eps * 4 * 1.0 / 1e-5)


def test_dout_is_independent_of_an_input_drawn_with_the_same_seed():
    # With dout == x, a row-normalizing layer's dx = (dout - u (dout . u)) / |x| is exactly 0: a vacuous check.
    from tests.gradzoo.correct import RowNormalize

    x = np.random.default_rng(0).standard_normal((3, 4))
    report = gradcheck(RowNormalize(), x)
    assert report.passed
    assert abs(report.checks[0].analytic) > 1e-3


def test_kink_crossing_is_detected_not_failed():
    # x = 1e-6 sits within the step h = 1e-5 of ReLU's kink: the step crosses it.
    report = gradcheck(ReLU(), np.array([[1e-6, 1.0, -1.0]]), dout=np.ones((1, 3)))
    assert report.passed
    assert report.checks[0].kinks == 1


def test_maxout_tie_crossing_is_detected_and_an_all_kink_tensor_fails():
    layer = Maxout(1, 1, pieces=2, dtype=np.float64)
    layer.params["W"][:] = [[1.0, -1.0]]
    report = gradcheck(layer, np.array([[1e-7]]), dout=np.ones((1, 1)))  # pieces tie at x = 0
    assert [c.kinks for c in report.checks] == [1, 0, 2]  # dx, W (smooth in W), b (both pieces)
    assert [c.passed for c in report.checks] == [False, True, False]
    assert report.checks[0].reason.startswith("every entry was skipped as a kink")


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


def test_cli_passes_builtin_layers_and_losses():
    result = run_cli()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(BUILTINS)} layers, 4 losses" in result.stdout and "all passed" in result.stdout
    assert "(1, 2, 3)" in result.stdout  # a batch of 1, multi-dimensional
    assert re.search(r"^SoftmaxCrossEntropy\s+\(3, 4\)\s+dscores\s.*pass$", result.stdout, re.M)


def row(stdout, layer, tensor):
    return next(line for line in stdout.splitlines() if re.match(rf"{layer}\s+\(4, 3\)\s+{tensor}\s", line))


def test_cli_checks_only_the_named_module_and_says_why_it_failed():
    result = run_cli("broken_layers")
    assert result.returncode == 1
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("4 layers, 0 losses, 14 cases")  # 8, and 6 with parameters drawn
    assert last.endswith("FAILED: NeedsArguments, WrongInputGradScale, WrongParamGradScale")
    assert "Affine" not in result.stdout
    assert row(result.stdout, "GoodScale", "dx").endswith("pass")
    assert row(result.stdout, "WrongInputGradScale", "dx").endswith("FAIL: 8 of 12 entries differ, the first at (0, 0)")
    assert row(result.stdout, "WrongParamGradScale", "dx").endswith("pass")
    assert row(result.stdout, "WrongParamGradScale", "w").endswith("FAIL: 1 of 3 entries differ, the first at (0,)")
    needs = next(line for line in result.stdout.splitlines() if line.startswith("NeedsArguments"))
    assert "cannot build an example (TypeError" in needs and "define a classmethod example(cls, rng, batch=3)" in needs


def test_cli_builtins_flag_adds_the_builtins_and_json_has_every_report(tmp_path):
    result = run_cli("broken_layers", "--builtins", "--json", str(tmp_path / "r.json"))
    assert f"{len(BUILTINS) + 4} layers, 4 losses" in result.stdout
    data = json.loads((tmp_path / "r.json").read_text())
    cases = int(re.search(r"(\d+) cases", result.stdout).group(1))
    assert len(data) == cases > 2 * (len(BUILTINS) + 4 + 2)  # and the cases with parameters drawn
    assert {"seed", "batch", "layer", "checks", "problems", "passed"} <= set(data[0])
    assert not next(d for d in data if d["layer"] == "WrongParamGradScale")["passed"]


def test_cli_seeds_repeats_and_prints_only_failures():
    result = run_cli("--seeds", "3")
    assert result.returncode == 0, result.stdout
    assert "3 seeds" in result.stdout and "result" not in result.stdout  # no table when nothing failed


def test_cli_unknown_module_is_one_line_and_status_2():
    result = run_cli("no_such_module_xyz")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "python -m layers.gradcheck: error: cannot import module 'no_such_module_xyz': ModuleNotFoundError: "
        "No module named 'no_such_module_xyz'"]


def test_cli_names_the_module_whose_import_failed(tmp_path):
    (tmp_path / "boom_module_xyz.py").write_text("raise RuntimeError('boom at import')\n")
    result = subprocess.run([sys.executable, "-m", "layers.gradcheck", "boom_module_xyz"], capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "python -m layers.gradcheck: error: cannot import module 'boom_module_xyz': RuntimeError: boom at import"]


def test_objective_check_covers_loss_and_l2_and_catches_a_broken_layer(rng):
    from layers import Sequential, Tanh
    from losses import SoftmaxCrossEntropy
    from losses.gradcheck import check_objective

    X, y = rng.standard_normal((4, 3)), np.array([0, 1, 2, 1])
    net = Sequential(Affine(3, 5, rng=rng, dtype=np.float64), Tanh(), Affine(5, 3, rng=rng, dtype=np.float64))
    report = check_objective(net, SoftmaxCrossEntropy(), X, y, reg=0.1)
    assert report.passed, str(report)
    assert [c.name for c in report.checks] == ["dX", "0.W (Affine)", "0.b (Affine)", "2.W (Affine)", "2.b (Affine)"]
    broken = Sequential(Affine(3, 3, rng=rng, dtype=np.float64), Doubled())
    failed = check_objective(broken, SoftmaxCrossEntropy(), X, y, reg=0.1)
    assert [c.name for c in failed.checks if not c.passed] == ["dX", "0.W (Affine)", "0.b (Affine)"]


def test_solver_gradcheck_flag_checks_the_config_model():
    result = subprocess.run([sys.executable, "-m", "solver", "examples/spiral.toml", "--gradcheck"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(
        "Sequential + SVMLoss + L2(0.001) on 4 rows of the training data, float64: 5 tensors, all passed")


class Embed(Layer, register=False):
    """out[n] = E[idx[n]] * scale[n]: an integer input (no gradient) beside a floating one."""

    def __init__(self):
        super().__init__()
        self.params = {"E": np.arange(15.0).reshape(5, 3) / 7}
        self.grads = {"E": np.zeros((5, 3))}

    def forward(self, idx, scale):
        self.cache = (idx, scale)
        return self.params["E"][idx] * scale

    def backward(self, dout):
        idx, scale = self.cached(self.cache)
        g = np.zeros_like(self.params["E"])
        np.add.at(g, idx, dout * scale)
        self.grads["E"] = g
        return None, (dout * self.params["E"][idx]).sum(-1, keepdims=True)


def test_integer_inputs_are_passed_as_they_are_and_not_differentiated(rng):
    report = gradcheck(Embed(), np.array([0, 2, 2, 4]), rng.standard_normal((4, 1)))
    assert report.passed, str(report)
    assert [c.name for c in report.checks] == ["dy", "E"]


def test_a_default_example_that_does_not_fit_gets_the_example_hint():
    from chainrule.cli.gradcheck import check_case

    class NeedsFourFeatures(Layer, register=False):
        def forward(self, x):
            if x.shape[-1] != 4:
                raise ValueError(f"expected 4 features, got {x.shape}")
            return x

    report = check_case(NeedsFourFeatures, 3, 0, "train")
    assert report.problems[0].startswith("raised ValueError: expected 4 features, got (3, 2, 3); define a classmethod")


@pytest.mark.parametrize("args, message", [
    (["--seeds", "abc"], "python -m layers.gradcheck: error: argument --seeds: invalid int value: 'abc' (see --help)"),
    (["--seeds", "0"], "python -m layers.gradcheck: error: --seeds must be at least 1"),
    (["--mode", "test"], "python -m layers.gradcheck: error: argument --mode: invalid choice: 'test' "),
    (["--json", "/nonexistent-dir/r.json"],
     "python -m layers.gradcheck: error: --json '/nonexistent-dir/r.json': No such file"),
])
def test_cli_bad_arguments_are_one_line_and_status_2(args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines


def test_cli_help_shows_examples():
    result = run_cli("--help")
    assert result.returncode == 0 and "python -m layers.gradcheck mylayers" in result.stdout


class IndexOnly(Layer, register=False):
    """out = idx * 2.0 for integer idx: nothing differentiable."""

    def forward(self, idx):
        return idx * 2.0

    def backward(self, dout):
        return None


def test_a_check_of_nothing_fails_and_says_so():
    report = gradcheck(IndexOnly(), np.arange(6).reshape(2, 3))
    assert not report.passed and report.checks == []
    assert report.problems == ["nothing was checked: the inputs are not floating and the layer has no parameters; "
                               "give it a floating input (or example() one) to check"]


class ListOutput(Layer, register=False):
    """A forward that returns a list: the checker must blame forward, not backward's shapes."""

    def forward(self, x):
        return [2 * x]

    def backward(self, dout):
        return 2 * dout


def test_a_forward_that_returns_a_list_is_blamed_on_forward():
    with pytest.raises(TypeError, match=r"ListOutput.forward returned a list, expected one numpy array"):
        gradcheck(ListOutput(), np.ones((2, 3)))


ACTIVATION = """
import numpy as np
from layers import Layer


class Cube(Layer):
    \"\"\"out = x ** 3\"\"\"

    def forward(self, x):
        self.x = x
        return x ** 3

    def backward(self, dout):
        return 3 * self.x ** 2 * dout
"""


def test_chainrule_gradcheck_takes_a_module_file_and_says_its_own_name(tmp_path):
    (tmp_path / "mywork").mkdir()
    (tmp_path / "mywork" / "myact.py").write_text(ACTIVATION)
    result = subprocess.run([sys.executable, "-m", "chainrule", "gradcheck", "mywork/myact.py"], capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "1 layer, 0 losses, 2 cases, 2 tensors checked: all passed"
    help_text = subprocess.run([sys.executable, "-m", "chainrule", "gradcheck", "--help"], capture_output=True,
                               text=True, cwd=tmp_path).stdout
    assert help_text.startswith("usage: chainrule gradcheck") and "chainrule gradcheck mywork/myact.py" in help_text
    missing = subprocess.run([sys.executable, "-m", "chainrule", "gradcheck", "mywork/nothere.py"],
                             capture_output=True, text=True, cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.strip().splitlines() == [
        "chainrule gradcheck: error: cannot import module 'mywork/nothere.py': FileNotFoundError: "
        "no file 'mywork/nothere.py'"]


def test_the_summary_counts_in_words():
    from chainrule.cli.gradcheck import count

    assert [count(1, "layer"), count(2, "layer"), count(1, "loss", "losses"), count(0, "loss", "losses")] == [
        "1 layer", "2 layers", "1 loss", "0 losses"]


HIDDEN_BUGS = """
import numpy as np
from layers import Layer


class LearnedSoftplus(Layer):  # out = log(1 + exp(beta x)) / beta, beta > 0 learned (1 in the example)

    def __init__(self, beta=1.0, dtype=np.float32, buggy=False):
        super().__init__()
        self.params = {"beta": np.array([beta], dtype)}
        self.grads = {"beta": np.zeros(1, dtype)}
        self.buggy = buggy

    def forward(self, x):
        self.x = x
        return np.logaddexp(0, self.params["beta"] * x) / self.params["beta"]

    def backward(self, dout):
        beta, x = self.params["beta"], self.x
        s = 1 / (1 + np.exp(-beta * x))
        soft = np.logaddexp(0, beta * x)
        term = x * s if self.buggy else x * s / beta  # the bug drops 1/beta: invisible at beta = 1
        self.grads["beta"][...] = np.sum(dout * (term - soft / beta ** 2))
        return dout * s

    @classmethod
    def example(cls, rng, batch=3):
        return cls(1.0, np.float64, buggy=BUGGY), (rng.standard_normal((batch, 4)),)


class QuadraticTerm(Layer):  # out = x + alpha x**2, alpha learned, starting at 0

    def __init__(self, dtype=np.float32):
        super().__init__()
        self.params = {"alpha": np.zeros(1, dtype)}
        self.grads = {"alpha": np.zeros(1, dtype)}

    def forward(self, x):
        self.x = x
        return x + self.params["alpha"] * x ** 2

    def backward(self, dout):
        self.grads["alpha"][...] = np.sum(dout * self.x ** 2)
        return dout if BUGGY else dout * (1 + 2 * self.params["alpha"] * self.x)  # the bug: the alpha term

    @classmethod
    def example(cls, rng, batch=3):
        return cls(np.float64), (rng.standard_normal((batch, 4)),)
"""


@pytest.mark.parametrize("buggy", [False, True])
def test_bugs_hidden_by_an_examples_parameter_values_fail_at_drawn_values(tmp_path, buggy):
    (tmp_path / "hidden.py").write_text(f"BUGGY = {buggy}\n" + HIDDEN_BUGS)
    result = subprocess.run([sys.executable, "-m", "layers.gradcheck", "hidden.py", "--seeds", "5"],
                            capture_output=True, text=True, cwd=tmp_path)
    if not buggy:
        assert result.returncode == 0, result.stdout  # no false failure at drawn values (beta stays positive)
        return
    assert result.returncode == 1
    failing = [line for line in result.stdout.splitlines() if "FAIL:" in line]
    assert failing and all("params drawn" in line for line in failing), result.stdout
    assert {line.split()[0] for line in failing} == {"LearnedSoftplus", "QuadraticTerm"}
    assert any(" beta " in line for line in failing) and any(" dx " in line for line in failing)
