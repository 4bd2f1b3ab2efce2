"""The gradient checker: every registered layer passes, broken layers fail, Jacobians agree."""

import subprocess
import sys

import numpy as np
import pytest

from layers import REGISTRY, Affine, Layer, Maxout, ReLU, Sigmoid
from layers.gradcheck import assert_gradients, check_jacobian, gradcheck, numerical_jacobian
from layers.gradcheck.finite_diff import rounding_allowance
from losses import LOSSES
from losses.gradcheck import check_loss

BUILTINS = sorted(name for name, cls in REGISTRY.items() if cls.__module__.startswith("layers."))


def test_the_examples_are_the_same_layers_whatever_the_rng_and_the_variants_differ():
    """An example draws values, not geometries: its repr and input shapes do not depend on the rng; each variant
    is another layer or other inputs."""
    for cls in [*(REGISTRY[n] for n in BUILTINS), *LOSSES.values()]:
        seen = set()
        for variant in range(cls.variants):
            built = [example(cls, np.random.default_rng(seed), batch=3, variant=variant) for seed in (0, 1, 2)]
            described = {(repr(layer), tuple(np.shape(x) for x in inputs)) for layer, inputs in built}
            assert len(described) == 1, (cls.__name__, variant, described)
            seen |= described
        assert len(seen) == cls.variants, cls.__name__


def test_every_builtin_layer_is_covered():
    # The registry drives the parametrised check below; this pins that it is not empty and complete.
    assert {"Add", "Mul", "Max", "Affine", "ReLU", "Sigmoid", "Tanh", "ELU", "LeakyReLU", "Maxout",
            "Sequential"} <= set(BUILTINS)


#: Every built-in example: the geometries and modes a class gives by ``variant``, each listed.
CASES = [(name, variant) for name in BUILTINS for variant in range(REGISTRY[name].variants)]


def example(cls, rng, batch, variant):
    """The class's example ``variant`` (a class with one example takes no variant)."""
    return cls.example(rng, batch=batch, variant=variant) if cls.variants > 1 else cls.example(rng, batch=batch)


@pytest.mark.parametrize("name, variant", CASES)
@pytest.mark.parametrize("batch", [1, 4])
def test_registered_layer_passes_gradcheck(name, variant, batch):
    layer, inputs = example(REGISTRY[name], np.random.default_rng(batch), batch=batch, variant=variant)
    report = gradcheck(layer, *inputs)
    assert report.passed, str(report)
    assert all(c.abs_error <= c.allowed for c in report.checks)
    expected = {f"d{n}" for n in getattr(layer, "input_names", ())} or ({"dx"} if len(inputs) == 1 else {"dx", "dy"})
    if np.asarray(inputs[0]).dtype.kind != "f":  # indices (Embedding) have no gradient
        expected = set()
    assert {c.name for c in report.checks} == expected | set(layer.params)


@pytest.mark.parametrize("name, variant", [(name, v) for name in sorted(LOSSES) for v in range(LOSSES[name].variants)])
def test_registered_loss_passes_gradcheck(name, variant):
    loss, (scores, y) = example(LOSSES[name], np.random.default_rng(0), batch=5, variant=variant)
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
    from losses.gradcheck import check_case

    class NeedsFourFeatures(Layer, register=False):
        def forward(self, x):
            if x.shape[-1] != 4:
                raise ValueError(f"expected 4 features, got {x.shape}")
            return x

    report = check_case(NeedsFourFeatures, 3, 0, "train")
    assert report.problems[0].startswith("raised ValueError: expected 4 features, got (3, 2, 3); define a classmethod")


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


class ReturnsNone(Layer, register=False):
    def forward(self, x):
        return 2 * x

    def backward(self, dout):
        return None


class IntegerOutput(Layer, register=False):
    def forward(self, x):
        return (x > 0).astype(np.int64)

    def backward(self, dout):
        return dout * 0


class CastsToFloat32(Layer, register=False):
    def forward(self, x):
        return (x * 2).astype(np.float32)

    def backward(self, dout):
        return dout * 2


@pytest.mark.parametrize("layer, x, problem", [
    (ReturnsNone(), np.ones((2, 3)), ["backward returned None for dx; it must return the gradient of x (an array "
                                      "of shape (2, 3))"]),  # and no note that nothing was checked
    (IntegerOutput(), np.ones((2, 3)), ["forward returned dtype int64; a layer returns a floating array, whose "
                                        "gradient is checked"]),
    (CastsToFloat32(), np.ones((2, 3)), ["forward returned float32 for float64 inputs: the layer changes its "
                                         "input's dtype (a float32 constant or cast inside it), so its gradient "
                                         "cannot be checked in float64; compute in x.dtype"]),
    (ReLU(), np.ones((0, 3)), ["input x is empty (shape (0, 3)): nothing to compare; check with one example or more"]),
])
def test_what_cannot_be_checked_says_why(layer, x, problem):
    report = gradcheck(layer, x)
    assert report.problems == problem and not report.passed


@pytest.mark.parametrize("h", [0, -1e-5, float("nan"), float("inf"), True, "1e-5"])
def test_a_step_that_is_not_a_positive_number_is_refused(h):
    with pytest.raises(ValueError, match=f"gradcheck: h must be a finite number > 0, got {h!r}"):
        gradcheck(ReLU(), np.ones((2, 3)), h=h)


def test_a_dout_of_the_wrong_shape_is_blamed_on_the_dout():
    with pytest.raises(ValueError, match=r"dout has shape \(3, 2\) but Affine's output has shape \(2, 2\)"):
        gradcheck(Affine(3, 2), np.ones((2, 3)), dout=np.ones((3, 2)))


class ScalesByFloat64(Layer, register=False):
    """out = x * 2, the 2 a numpy float64 scalar: float32 in, float64 out (NEP 50)."""

    def forward(self, x):
        return x * np.float64(2.0)

    def backward(self, dout):
        return dout * np.float64(2.0)


def test_a_layer_that_does_not_keep_float32_is_named_by_a_float32_pass():
    report = gradcheck(ScalesByFloat64(), np.ones((2, 3)))
    assert report.passed  # its float64 gradient is right; the note says what float32 does
    assert report.notes == ["forward turned float32 inputs into float64 output, which a float32 model refuses; a "
                            "layer computes in its input's dtype: write constants as x.dtype.type(c), or cast with "
                            ".astype(x.dtype)"]
    assert gradcheck(ReLU(), np.ones((2, 3))).notes == []
