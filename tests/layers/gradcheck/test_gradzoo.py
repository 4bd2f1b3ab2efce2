"""The gradient checker over a zoo of user layers, 50 seeds at a batch of 1 and of 3: no false failure, no miss."""

import numpy as np
import pytest

from layers.gradcheck import gradcheck
from tests.gradzoo.broken import BROKEN
from tests.gradzoo.correct import CORRECT

SEEDS = range(50)


def report(cls, seed, batch):
    layer, inputs = cls.example(np.random.default_rng((seed, batch)), batch=batch)
    return gradcheck(layer, *inputs, rng=seed)


@pytest.mark.parametrize("cls", CORRECT, ids=lambda c: c.__name__)
def test_correct_layer_passes_at_every_seed(cls):
    failed = [(s, b, str(r)) for s in SEEDS for b in (1, 3) if not (r := report(cls, s, b)).passed]
    assert not failed, failed[0]


@pytest.mark.parametrize("cls", BROKEN, ids=lambda c: c.__name__)
def test_broken_layer_fails_at_every_seed(cls):
    missed = [(s, b) for s in SEEDS for b in (1, 3) if report(cls, s, b).passed]
    assert not missed


@pytest.mark.parametrize("cls, reason", [
    ("PolynomialAccumulates", "grads accumulate across backward calls: a changed when backward ran again after a "
                              "fresh forward (the second is 2x the first)"),
    ("ReLUMutatesDout", "backward modified dout in place"),
    ("ScaleMutatesDout", "backward modified dout in place"),
    ("ForwardMutatesInput", "forward modified input x in place"),
    ("DropoutFreshMaskWrongBackward", "stochastic: forward gave different outputs for the same input, and it holds "
                                      "no numpy.random.Generator"),
    ("Affine3DWrongShape", "backward returned dx of shape (3, 8), expected (3, 2, 4)"),
])
def test_harness_failures_say_why(cls, reason):
    r = report(next(c for c in BROKEN if c.__name__ == cls), 0, 3)
    assert any(p.startswith(reason) for p in r.problems), r.problems


@pytest.mark.parametrize("cls, tensor, reason", [
    ("CubeMissingFactor", "dx", "analytic is 0.333x numerical"),
    ("SineSignFlipped", "w", "sign flipped"),
    ("InputGradOff6e4", "dx", "analytic is about 1.000600x numerical (a relative error of +6.0e-04)"),
    ("PReLUHalfSlope", "dx", "only entries with x < 0 differ"),
    ("ParamGradOnePercent", "b", "1 of 4 entries differ, the first at (1,)"),
    ("DropoutOwnRngWrongBackward", "dx", "analytic is 0.5x numerical"),
])
def test_mismatches_are_described(cls, tensor, reason):
    r = report(next(c for c in BROKEN if c.__name__ == cls), 0, 3)
    assert next(c for c in r.checks if c.name == tensor).reason == reason


def test_stochastic_layer_with_its_own_generator_is_checked_with_randomness_held_fixed():
    from tests.gradzoo.correct import UserDropout

    r = report(UserDropout, 0, 3)
    assert r.passed and "randomness held fixed" in r.notes[0]
