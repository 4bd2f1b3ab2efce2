"""Losses and the L2 penalty: hand-worked values, gradient checks, label errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layers import Layer
from layers.gradcheck import gradcheck
from losses import LOSSES, SoftmaxCrossEntropy, SVMLoss, add_l2_grad, l2_penalty


class LossAsLayer(Layer, register=False):
    """Wraps a loss with fixed labels as a one-input layer, so the gradient checker can test it."""

    def __init__(self, loss, y):
        super().__init__()
        self.loss, self.y = loss, y

    def forward(self, scores):
        return np.array(self.loss.forward(scores, self.y))

    def backward(self, dout):
        return self.loss.backward() * dout


class L2AsLayer(Layer, register=False):
    """The penalty reg * sum(W**2) as a function of W."""

    def __init__(self, reg):
        super().__init__()
        self.reg = reg

    def forward(self, W):
        self.W = W
        return np.array(l2_penalty({"W": W}, self.reg))

    def backward(self, dout):
        grads = {"W": np.zeros_like(self.W)}
        add_l2_grad({"W": self.W}, grads, self.reg)
        return grads["W"] * dout


def test_svm_lecture_example():
    # the lecture's cat/car/frog scores, one row per example; losses 2.9, 0 and 12.9
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    assert SVMLoss().forward(scores, np.array([0, 1, 2])) == pytest.approx((2.9 + 0 + 12.9) / 3)


def test_svm_two_by_three_by_hand():
    scores = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]])
    y = np.array([0, 2])
    loss = SVMLoss()
    # row 0: max(0, 2-1+1) + max(0, 0.5-1+1) = 2 + 0.5; row 1: max(0, 0-3+1) * 2 = 0
    assert loss.forward(scores, y) == pytest.approx(2.5 / 2)
    np.testing.assert_allclose(loss.backward(), [[-1.0, 0.5, 0.5], [0.0, 0.0, 0.0]])


def test_softmax_on_zero_scores_is_log_c():
    loss = SoftmaxCrossEntropy()
    assert loss.forward(np.zeros((5, 7)), np.arange(5)) == pytest.approx(np.log(7), rel=1e-14)
    d = loss.backward()
    np.testing.assert_allclose(d.sum(axis=1), 0, atol=1e-15)
    np.testing.assert_allclose(d[0], (np.full(7, 1 / 7) - np.eye(7)[0]) / 5)


def test_softmax_is_stable_for_huge_scores():
    loss = SoftmaxCrossEntropy()
    assert loss.forward(np.array([[1000.0, 0.0], [0.0, -1000.0]]), np.array([0, 1])) == pytest.approx(500.0)
    assert np.isfinite(loss.backward()).all()


@pytest.mark.parametrize("loss", [SVMLoss(), SoftmaxCrossEntropy()])
def test_loss_gradients_pass_gradcheck(loss, rng):
    y = np.array([0, 2, 1, 2])
    scores = rng.standard_normal((4, 3))
    report = gradcheck(LossAsLayer(loss, y), scores)
    assert report.passed, str(report)


def test_l2_penalty_value_gradient_and_bias_exclusion(rng):
    W, b = rng.standard_normal((3, 2)), rng.standard_normal(2)
    assert l2_penalty({"W": W, "b": b}, 0.1) == pytest.approx(0.1 * np.sum(W * W))
    grads = {"W": np.zeros((3, 2)), "b": np.zeros(2)}
    add_l2_grad({"W": W, "b": b}, grads, 0.1)
    np.testing.assert_allclose(grads["W"], 0.2 * W)
    np.testing.assert_array_equal(grads["b"], 0)
    assert gradcheck(L2AsLayer(0.3), W).passed


@pytest.mark.parametrize("loss", [SVMLoss(), SoftmaxCrossEntropy()])
def test_float32_scores_give_float32_gradient(loss):
    loss.forward(np.zeros((2, 3), np.float32), np.array([0, 1]))
    assert loss.backward().dtype == np.float32


@pytest.mark.parametrize("y, match", [
    (np.array([0, 3]), r"SVMLoss\(\): label 3 is out of range for 3 classes \(0..2\)"),
    (np.array([0.0, 1.0]), r"SVMLoss\(\): expected integer class labels, got dtype float64"),
    (np.array([0, 1, 2]), r"expected labels of shape \(2,\) to match scores of shape \(2, 3\), got \(3,\)"),
    (np.array([-1, 0]), r"label -1 is out of range"),
])
def test_bad_labels_are_value_errors(y, match):
    with pytest.raises(ValueError, match=match):
        SVMLoss().forward(np.zeros((2, 3)), y)


@pytest.mark.parametrize("loss", [SVMLoss, SoftmaxCrossEntropy])
@pytest.mark.parametrize("layout", ["fortran", "strided"])
def test_scores_in_any_memory_layout_give_the_same_loss_and_gradient(loss, layout, rng):
    scores, y = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    other = np.asfortranarray(scores) if layout == "fortran" else np.repeat(scores, 2, axis=0)[::2]
    assert not other.flags.c_contiguous
    first = loss()
    expected, expected_grad = first.forward(scores, y), first.backward()
    second = loss()
    assert second.forward(other, y) == expected
    np.testing.assert_array_equal(second.backward(), expected_grad)


@pytest.mark.parametrize("loss", [SVMLoss, SoftmaxCrossEntropy])
@pytest.mark.parametrize("dtype, bad", [(np.int8, -1), (np.int8, 4), (np.uint8, 4), (np.uint8, 200), (np.int32, -1),
                                        (np.int32, 200), (np.uint64, 4), (np.int64, -7)])
def test_labels_out_of_range_are_refused_whatever_their_integer_dtype(loss, dtype, bad):
    y = np.array([0, 1, 2], dtype=np.int64)
    y[1] = bad
    with pytest.raises(ValueError, match=rf"{loss.__name__}\(\): label {bad} is out of range for 4 classes"):
        loss().forward(np.zeros((3, 4)), y.astype(dtype))


def test_loss_backward_before_forward():
    with pytest.raises(RuntimeError, match=r"SoftmaxCrossEntropy\(\): backward\(\) called before forward"):
        SoftmaxCrossEntropy().backward()


def test_lookup_by_alias_and_close_matches():
    assert LOSSES.lookup("svm") is SVMLoss
    assert LOSSES.lookup("SoftmaxCrossEntropy") is SoftmaxCrossEntropy
    with pytest.raises(KeyError, match="unknown loss 'softmx'; did you mean 'softmax'"):
        LOSSES.lookup("softmx")


@settings(deadline=None, max_examples=40)
@given(st.integers(1, 5), st.integers(2, 5), st.data())
def test_svm_is_zero_when_every_margin_is_met(n, c, data):
    y = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    scores = np.array(data.draw(st.lists(st.lists(st.floats(-5, 5), min_size=c, max_size=c), min_size=n, max_size=n)))
    slack = data.draw(st.floats(1e-6, 3))  # every margin met, with room for rounding
    scores[np.arange(n), y] = scores.max(axis=1) + 1.0 + slack
    loss = SVMLoss()
    assert loss.forward(scores, y) == 0.0
    np.testing.assert_array_equal(loss.backward(), 0.0)


def test_sequence_scores_with_ignored_steps_match_pytorch_cross_entropy():
    from losses import SoftmaxCrossEntropy
    from tests.torch_reference import torch_reference

    rng = np.random.default_rng(0)
    scores, y = rng.standard_normal((2, 5, 4)), rng.integers(0, 4, (2, 5))
    y[0, 3:] = -100  # padding
    loss = SoftmaxCrossEntropy()
    value, dscores = loss.forward(scores, y), loss.backward()

    def compute(torch):
        s = torch.tensor(scores, requires_grad=True)
        ref = torch.nn.functional.cross_entropy(s.permute(0, 2, 1), torch.tensor(y), ignore_index=-100)
        ref.backward()
        return {"loss": np.array(ref.item()), "dscores": s.grad.numpy()}

    theirs = torch_reference("sequence_cross_entropy", compute)
    assert value == pytest.approx(float(theirs["loss"]), rel=1e-12)
    np.testing.assert_allclose(dscores, theirs["dscores"], rtol=1e-10, atol=1e-14)
    assert not dscores[0, 3:].any()


@pytest.mark.parametrize("name", ["softmax", "svm"])
def test_a_sequence_loss_is_the_loss_of_its_kept_steps_as_rows(name):
    from losses import LOSSES

    rng = np.random.default_rng(1)
    scores, y = rng.standard_normal((3, 4, 5)), rng.integers(0, 5, (3, 4))
    y[1, 1] = y[2, 3] = -100
    seq, flat = LOSSES.lookup(name)(), LOSSES.lookup(name)()
    keep = y.reshape(-1) != -100
    assert seq.forward(scores, y) == pytest.approx(flat.forward(scores.reshape(-1, 5)[keep], y.reshape(-1)[keep]))
    expected = np.zeros((12, 5))
    expected[keep] = flat.backward()
    np.testing.assert_allclose(seq.backward(), expected.reshape(3, 4, 5), rtol=1e-12)


def test_sequence_label_errors_name_the_loss_and_shapes():
    from losses import SoftmaxCrossEntropy

    with pytest.raises(ValueError, match=r"expected labels of shape \(2, 5\) to match scores of shape \(2, 5, 4\)"):
        SoftmaxCrossEntropy().forward(np.zeros((2, 5, 4)), np.zeros((2, 4), int))
    with pytest.raises(ValueError, match=r"label 7 is out of range for 4 classes"):
        SoftmaxCrossEntropy().forward(np.zeros((2, 5, 4)), np.full((2, 5), 7))
    assert SoftmaxCrossEntropy().forward(np.zeros((1, 2, 4)), np.full((1, 2), -100)) == 0.0  # nothing counts
