"""Values the application's other tests could not see: a deterministic bug in any of these fails here.

Sampling's temperature and context window, the estimators' validation split, the sequences a text yields,
the initial weight scale of grouped convolutions and recurrent layers, max pooling's padding on negative
inputs, an exported BatchNorm with its own eps, and a regression run with early stopping killed and resumed
(its best validation loss and its count of epochs without improvement)."""

import json

import numpy as np
import pytest
from scipy.special import softmax

from chainrule.data import load_text
from chainrule.trained.sampling import drawn
from layers import GRU, LSTM, RNN, BatchNorm, Conv2D, MaxPool2D

RNG = np.random.default_rng(0)


class Recorder:
    """A stand-in model: the same scores per step whatever it reads, and a record of what it read."""

    def __init__(self, logits):
        self.logits, self.seen = np.asarray(logits, dtype=np.float64), []

    def scores(self, X):
        self.seen.append(X[0].tolist())
        return np.tile(self.logits, (1, X.shape[1], 1))


@pytest.mark.parametrize("temperature", [0.3, 1.0, 2.5])
def test_sampling_draws_from_the_scores_over_the_temperature_reading_the_last_window(temperature):
    model, vocabulary = Recorder([1.0, -0.5, 2.0, 0.0]), list("abcd")
    text = "".join(drawn(model, vocabulary, [0, 1, 2, 3, 0], 3, 6, temperature, np.random.default_rng(7)))
    expected, codes = [], [0, 1, 2, 3, 0]
    twin = np.random.default_rng(7)
    for _ in range(6):
        codes.append(int(twin.choice(4, p=softmax(model.logits / temperature))))
        expected.append(vocabulary[codes[-1]])
    assert text == "abcda" + "".join(expected)
    assert model.seen == [codes[i - 3:i] for i in range(5, 11)]  # the last 3 characters, each time


def test_a_text_yields_one_sequence_per_seq_len_characters_labelled_one_step_on(tmp_path):
    for length, seq_len, count in ((101, 10, 10), (100, 10, 9), (31, 5, 6), (30, 5, 5)):
        text = "".join("abcdefg"[(i * 3) % 7] for i in range(length))
        (tmp_path / "t.txt").write_text(text)
        X, y, vocabulary = load_text(str(tmp_path / "t.txt"), seq_len)
        assert X.shape == y.shape == (count, seq_len)
        codes = np.searchsorted(vocabulary, [ord(c) for c in text])
        np.testing.assert_array_equal(X.ravel(), codes[:count * seq_len])
        np.testing.assert_array_equal(y.ravel(), codes[1:count * seq_len + 1])


def test_the_estimators_validation_rows_are_never_trained_on(monkeypatch):
    pytest.importorskip("sklearn")
    from chainrule import sklearn as estimators

    seen = {}
    real = estimators.Solver

    def spy(model, data, **kwargs):
        seen.update(data)
        return real(model, data, **kwargs)

    monkeypatch.setattr(estimators, "Solver", spy)
    X = np.arange(200, dtype=np.float64).reshape(100, 2)
    estimators.NetClassifier(epochs=1, validation_fraction=0.3).fit(X, np.arange(100) % 2)
    train, val = {tuple(r) for r in seen["X_train"]}, {tuple(r) for r in seen["X_val"]}
    assert len(val) == 30 and len(train) == 70 and not train & val and train | val == {tuple(r) for r in X}


@pytest.mark.parametrize("make, fan_in", [
    (lambda: Conv2D(64, 128, 3, groups=8, rng=RNG, dtype=np.float64), 64 // 8 * 9),
    (lambda: Conv2D(64, 128, 3, groups=1, rng=RNG, dtype=np.float64), 64 * 9),
])
def test_grouped_convolutions_draw_he_weights_over_their_own_fan_in(make, fan_in):
    W = make().params["W"]
    assert W.shape[1] == fan_in // 9
    assert abs(W.std() / np.sqrt(2 / fan_in) - 1) < 0.03


@pytest.mark.parametrize("cls", [RNN, LSTM, GRU])
def test_recurrent_weights_have_the_scale_of_one_over_the_square_root_of_their_inputs(cls):
    layer = cls(300, 200, rng=RNG, dtype=np.float64)
    assert abs(layer.params["Wx"].std() * np.sqrt(300) - 1) < 0.02
    assert abs(layer.params["Wh"].std() * np.sqrt(200) - 1) < 0.02
    biases = np.concatenate([v for k, v in layer.params.items() if k.startswith("b")])
    ones = 200 if cls is LSTM else 0  # the LSTM's forget gate starts open (bias 1), as is usual
    assert np.count_nonzero(biases == 1) == ones and np.count_nonzero(biases) == ones


def test_max_pooling_pads_with_minus_infinity_so_negative_inputs_win():
    x = -np.abs(RNG.standard_normal((2, 3, 5, 5))) - 1  # every value negative
    out = MaxPool2D(3, stride=2, padding=1).forward(x)
    padded = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)], constant_values=-np.inf)
    expected = np.array([[[[padded[n, c, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max() for j in range(3)]
                           for i in range(3)] for c in range(3)] for n in range(2)])
    np.testing.assert_array_equal(out, expected)
    assert out.max() < -1


def test_an_exported_batch_norm_keeps_its_own_eps(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from chainrule.trained.model import TrainedModel
    from layers import Affine, Flatten, Sequential

    norm = BatchNorm(2, eps=0.5)
    net = Sequential(Conv2D(1, 2, 3, padding=1, rng=RNG), norm, Flatten(), Affine(32, 3, rng=RNG))
    net.train().forward(RNG.standard_normal((8, 1, 4, 4)).astype(np.float32))  # running statistics move
    norm.buffers["running_var"][:] = [0.05, 0.3]  # small variances: eps=0.5 against 1e-5 changes the output
    model = TrainedModel(net, {"model": {"dtype": "float32"}}, {}, (1, 4, 4))
    X = RNG.standard_normal((5, 1, 4, 4)).astype(np.float32)
    session = ort.InferenceSession(str(model.to_onnx(tmp_path / "m.onnx")), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["probabilities"], {"input": X})[0], model.predict_proba(X), atol=1e-5)


REGRESSION = """
[data]
source = "npz"
path = "r.npz"
[model]
imports = ["slowlayer"]
layers = [{ type = "Affine", out_features = 8 }, { type = "Tanh" }, { type = "SlowIdentity" }, { type = "Affine" }]
[loss]
type = "mse"
[optim]
type = "sgd"
lr = 0.5
[solver]
epochs = 30
batch_size = 10
patience = 4
verbose = false
[output]
plot = false
checkpoint_seconds = 0.0
"""


@pytest.mark.slow
def test_a_regression_run_with_early_stopping_resumes_its_best_loss_and_bad_epochs(tmp_path):
    from tests.subprocess_runs import assert_same_checkpoint_arrays, run_killed_and_resumed

    X = RNG.standard_normal((80, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.3 * RNG.standard_normal(80)
    np.savez(tmp_path / "r.npz", X_train=X[:60], y_train=y[:60], X_val=X[60:], y_val=y[60:])
    (tmp_path / "r.toml").write_text(REGRESSION)
    full, killed = run_killed_and_resumed(tmp_path / "r.toml", tmp_path, epochs=30, kill_at=3)
    assert_same_checkpoint_arrays(full, killed)
    a, b = (json.loads((p / "checkpoint.json").read_text()) for p in (full, killed))
    for key in ("best_val_loss", "best_val_r2", "best_epoch", "bad_epochs", "epoch", "stop_reason"):
        assert a[key] == b[key], key
    assert a["stop_reason"] is not None and "early stop" in a["stop_reason"]["message"]
    assert a["bad_epochs"] == 4 and a["epoch"] == a["best_epoch"] + 4


def test_an_early_stop_says_how_to_train_on(tmp_path, capsys):
    from chainrule import runs

    (tmp_path / "c.toml").write_text('[data]\nsource = "spiral"\nsamples = 30\n'
                                     '[model]\nlayers = [{ type = "Affine" }]\n[optim]\ntype = "sgd"\nlr = 1e-12\n'
                                     '[solver]\nepochs = 50\npatience = 3\n'
                                     'verbose = false\n[output]\nplot = false\n')
    run = runs.setup(tmp_path / "c.toml", [f"output.dir='{tmp_path / 'r'}'"])
    assert runs.train(run) == 0 and run.solver.epoch == 4  # the first epoch, then 3 without improvement
    err = capsys.readouterr().err
    assert f"to go on: chainrule train --resume {tmp_path / 'r'} --set solver.patience=6 (or solver.patience=0: no " \
           "early stop)" in err
