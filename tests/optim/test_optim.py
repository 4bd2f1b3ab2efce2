"""Optimizers by hand, schedules, and state round trips."""

import numpy as np
import pytest

from optim import SGD, AdaGrad, Adam, AdamW, CosineDecay, ExponentialDecay, RMSProp, StepDecay
from tests.torch_reference import torch_reference


def test_sgd_step_is_w_minus_lr_dw():
    w = np.array([1.0, -2.0])
    SGD(lr=0.1).step({"w": w}, {"w": np.array([0.5, 0.5])})
    np.testing.assert_allclose(w, [0.95, -2.05])


def test_sgd_momentum_two_steps_by_hand():
    w = np.array([1.0])
    opt = SGD(lr=0.1, momentum=0.9)
    opt.step({"w": w}, {"w": np.array([1.0])})  # v = 1, w = 0.9
    opt.step({"w": w}, {"w": np.array([1.0])})  # v = 1.9, w = 0.71
    np.testing.assert_allclose(w, [0.71])
    np.testing.assert_allclose(opt.state["w"]["velocity"], [1.9])


def test_nesterov_step_by_hand():
    w = np.array([1.0])
    opt = SGD(lr=0.1, momentum=0.9, nesterov=True)
    opt.step({"w": w}, {"w": np.array([1.0])})  # v = 1, w -= 0.1 * (1 + 0.9)
    np.testing.assert_allclose(w, [0.81])


def test_adam_first_step_moves_by_lr_times_sign():
    w = np.array([1.0, 1.0])
    Adam(lr=0.01).step({"w": w}, {"w": np.array([3.0, -0.2])})
    np.testing.assert_allclose(w, [0.99, 1.01], rtol=1e-6)


def test_rmsprop_and_adagrad_by_hand():
    w = np.array([1.0])
    RMSProp(lr=0.1, decay_rate=0.9, eps=1e-12).step({"w": w}, {"w": np.array([2.0])})
    np.testing.assert_allclose(w, [1.0 - 0.1 * 2.0 / np.sqrt(0.1 * 4.0)])
    w = np.array([1.0])
    AdaGrad(lr=0.1, eps=1e-12).step({"w": w}, {"w": np.array([2.0])})
    np.testing.assert_allclose(w, [0.9])


@pytest.mark.parametrize("cls", [SGD, AdaGrad, RMSProp, Adam, AdamW])
def test_float32_parameters_stay_float32(cls):
    w = np.ones(3, np.float32)
    opt = cls(lr=0.1, momentum=0.5) if cls is SGD else cls(lr=0.1)
    for _ in range(2):
        opt.step({"w": w}, {"w": np.full(3, 0.5, np.float32)})
    assert w.dtype == np.float32
    assert all(a.dtype == np.float32 for a in opt.state["w"].values())


def test_state_dict_round_trip_continues_identically():
    g = {"w": np.array([0.3, -0.1])}
    a, b = np.array([1.0, 2.0]), np.array([1.0, 2.0])
    opt_a = Adam(lr=0.1)
    opt_a.step({"w": a}, g)
    opt_b = Adam(lr=0.5)
    opt_b.load_state_dict(*opt_a.state_dict())
    b[...] = a
    opt_a.step({"w": a}, g)
    opt_b.step({"w": b}, g)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make, match", [
    (lambda: SGD(lr=-1), "SGD: lr must be a positive number"),
    (lambda: SGD(lr=0.1, momentum=1.5), r"SGD: momentum must be in \[0, 1\)"),
    (lambda: SGD(lr=0.1, nesterov=True), "nesterov=True needs a momentum"),
    (lambda: Adam(beta1=1.0), r"Adam: beta1 must be in \[0, 1\)"),
    (lambda: AdamW(betas=0.9), r"AdamW: betas must be two numbers \(b1, b2\), got 0.9"),
    (lambda: AdamW(betas=[0.9, 1.0]), r"AdamW: beta2 must be in \[0, 1\)"),
    (lambda: AdamW(weight_decay=-0.1), r"AdamW: weight_decay must be a number >= 0, got -0.1"),
])
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_schedules():
    assert ExponentialDecay(0.5)(1.0, 3) == 0.125
    assert [StepDecay(2, 0.1)(1.0, e) for e in range(5)] == pytest.approx([1, 1, 0.1, 0.1, 0.01])
    cos = CosineDecay(epochs=4, min_lr=0.1)
    assert [cos(1.1, e) for e in (0, 2, 4, 9)] == pytest.approx([1.1, 0.6, 0.1, 0.1])



@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop", "adagrad"])
def test_clip_norm_scales_all_gradients_together_as_pytorch_does(name):
    from optim import OPTIMIZERS

    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[0.0, 4.0]])}  # global norm 5
    kept = {k: v.copy() for k, v in grads.items()}
    plain, clipped = OPTIMIZERS.lookup(name)(lr=0.1), OPTIMIZERS.lookup(name)(lr=0.1, clip_norm=1.0)
    p1 = {"a": np.zeros(2), "b": np.zeros((1, 2))}
    p2 = {k: v.copy() for k, v in p1.items()}
    plain.step(p1, {k: v * (1.0 / (5.0 + 1e-6)) for k, v in grads.items()})  # torch: max_norm / (norm + 1e-6)
    clipped.step(p2, grads)
    for k in p1:
        np.testing.assert_allclose(p2[k], p1[k], rtol=1e-12)
        np.testing.assert_array_equal(grads[k], kept[k])  # the layers' gradients are not changed
    assert clipped.clipped == 1 and "clip_norm=1.0" in repr(clipped)
    clipped.step(p2, {k: v * 0.1 for k, v in grads.items()})  # norm 0.5: left alone
    assert clipped.clipped == 1
    with pytest.raises(ValueError, match="clip_norm must be a positive number"):
        OPTIMIZERS.lookup(name)(clip_norm=0)


def test_adamw_steps_by_hand_and_as_pytorch():
    """One step by hand: the decay first, then Adam's step of lr * sign(g) (m_hat = g, v_hat = g^2)."""
    w = np.array([2.0, -1.0])
    AdamW(lr=0.1, weight_decay=0.5, eps=1e-300).step({"w": w}, {"w": np.array([3.0, -0.5])})
    np.testing.assert_allclose(w, [2.0 * 0.95 - 0.1, -1.0 * 0.95 + 0.1], rtol=1e-14)
    rng = np.random.default_rng(0)
    start, gradients = rng.standard_normal((3, 4)), rng.standard_normal((5, 3, 4))

    def compute(torch):
        theirs = torch.tensor(start.copy(), requires_grad=True)
        reference = torch.optim.AdamW([theirs], lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)
        steps = []
        for g in gradients:
            theirs.grad = torch.tensor(g)
            reference.step()
            steps.append(theirs.detach().numpy().copy())
        return {"steps": np.array(steps)}

    theirs = torch_reference("adamw", compute)["steps"]
    ours, opt = start.copy(), AdamW(lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)
    for g, expected in zip(gradients, theirs, strict=True):
        opt.step({"w": ours}, {"w": g})
        np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-14)


def test_a_warmup_rises_linearly_by_step_then_hands_over():
    from optim import Warmup

    warm = Warmup(steps=4, after={"type": "exponential", "decay": 0.5})
    assert [warm.at_step(0.8, 0, s) for s in range(5)] == [0.2, 0.4, 0.6000000000000001, 0.8, 0.8]
    assert warm.at_step(0.8, 2, 10) == pytest.approx(0.2)  # then the decay by epoch
    with pytest.raises(ValueError, match="Warmup: steps must be an integer >= 1, got 0"):
        Warmup(steps=0)


def test_reduce_on_plateau_follows_the_validation_loss_as_pytorch():
    from optim import ReduceOnPlateau

    losses = [1.0, 0.9, 0.95, 0.91, 0.9, 0.89, 0.95, 0.96, 0.97, 0.5, 0.6, 0.7, 0.8]
    ours = ReduceOnPlateau(factor=0.5, patience=1, threshold=0.05, cooldown=1, min_lr=0.02)
    lrs = []
    for loss in losses:
        ours.observe(loss)
        lrs.append(ours(0.1, 0))
    assert lrs[:4] == [0.1, 0.1, 0.1, 0.05] and min(lrs) == 0.02  # 0.9 -> 0.95, 0.91: two bad epochs > 1

    def compute(torch):
        p = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([p], lr=0.1)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1, threshold=0.05,
                                                           cooldown=1, min_lr=0.02)
        theirs = []
        for loss in losses:
            sched.step(loss)
            theirs.append(opt.param_groups[0]["lr"])
        return {"lrs": np.array(theirs)}

    np.testing.assert_allclose(lrs, torch_reference("reduce_on_plateau", compute)["lrs"], rtol=1e-12)


def test_a_float32_gradient_whose_square_overflows_is_clipped_not_dropped():
    from optim import SGD

    w = np.zeros(4, np.float32)
    opt = SGD(lr=1.0, clip_norm=1.0)
    opt.step({"w": w}, {"w": np.full(4, 1e20, np.float32)})
    np.testing.assert_allclose(w, [-0.5] * 4, rtol=1e-6)  # the unit step of the clipped gradient
    assert opt.clipped == 1 and opt.grad_norm == pytest.approx(2e20, rel=1e-6)
