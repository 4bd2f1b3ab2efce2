"""Layers made of layers: sub-layers held in attributes, lists and dicts are trained, regularized, switched
between modes, checkpointed, gradient-checked and built from configs like any built-in layer."""

import json
import subprocess
import sys

import numpy as np
import pytest

from chainrule import load_run, runs
from layers import REGISTRY, Affine, Dropout, Layer, ReLU, Sequential
from layers.gradcheck import gradcheck
from losses import SoftmaxCrossEntropy
from losses.gradcheck import check_objective
from optim import SGD
from solver import Solver
from tests.subprocess_runs import ROOT, USER_ENV, assert_same_checkpoint_arrays, cli, run_killed_and_resumed

sys.path.insert(0, str(ROOT / "tests" / "userlayers"))
from blocks import ListBlock, NormBlock, ResidualBlock  # noqa: E402

BLOCKS = [ResidualBlock, NormBlock, ListBlock]
SUBLAYER_PARAMS = {ResidualBlock: ["fc.W", "fc.b"], NormBlock: ["fc.W", "fc.b", "bn.gamma", "bn.beta"],
                   ListBlock: ["scale", "stages.0.W", "stages.0.b", "stages.2.W", "stages.2.b"]}


class Block(Layer, register=False):
    """The block exactly as a new user first writes it."""

    def __init__(self, d=4):
        super().__init__()
        self.fc = Affine(d, d)
        self.drop = Dropout(0.5)

    def forward(self, x):
        return x + self.drop.forward(self.fc.forward(x))

    def backward(self, dout):
        return dout + self.fc.backward(self.drop.backward(dout))


def spiral_data(n=60, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, 2, n)
    return {"X_train": X, "y_train": y, "X_val": X[:20], "y_val": y[:20]}


def test_the_first_block_a_user_writes_is_one_tree():
    net = Sequential(Affine(4, 4), Block(), Affine(4, 2))
    assert list(net.params) == ["0.W", "0.b", "1.fc.W", "1.fc.b", "2.W", "2.b"]
    assert list(net.grads) == list(net.params) and net.params["1.fc.W"] is net[1].fc.params["W"]
    assert list(net.generators()) == ["1.drop.rng"]
    assert [name for name, _ in net.named_layers()] == ["", "0", "1", "1.fc", "1.drop", "2"]
    net.eval()
    assert net[1].drop.training is False and net[1].training is False
    x = np.ones((3, 4), np.float32)
    np.testing.assert_array_equal(net.forward(x), net.forward(x))  # evaluation is not random
    net.train()
    assert net[1].drop.training is True
    net.astype(np.float64)
    assert net[1].fc.params["W"].dtype == np.float64 and net[1].fc.grads["b"].dtype == np.float64


def test_sublayers_in_dicts_and_nested_lists_are_found_in_a_stable_order():
    class Heads(Layer, register=False):
        def __init__(self):
            super().__init__()
            self.heads = {"a": Affine(2, 2), "b": [ReLU(), Affine(2, 3)]}
            self.note = ("not a layer", 3)

    assert list(Heads().params) == ["heads.a.W", "heads.a.b", "heads.b.1.W", "heads.b.1.b"]
    assert [n for n, _ in Heads().named_layers()] == ["", "heads.a", "heads.b.0", "heads.b.1"]


def test_one_instance_in_two_places_is_an_error_naming_both():
    shared = Affine(4, 4)

    class Twice(Layer, register=False):
        def __init__(self):
            super().__init__()
            self.first, self.again = shared, [shared]

    with pytest.raises(ValueError, match=r"Affine\(in_features=4, out_features=4\) is at both 'first' and "
                                         r"'again.0'; one instance is one place in a network"):
        Twice().named_layers()
    with pytest.raises(ValueError, match=r"at both '0' and '1.fc'"):
        block = Block()
        Sequential(block.fc, block).named_layers()


@pytest.mark.parametrize("cls", BLOCKS, ids=lambda c: c.__name__)
def test_a_blocks_parameters_are_trained_by_name(cls):
    rng = np.random.default_rng(0)
    net = Sequential(Affine(4, 4, rng=rng), cls(4, rng=rng), ReLU(), Affine(4, 2, rng=rng))
    names = [f"1.{k}" for k in SUBLAYER_PARAMS[cls]]
    assert [k for k in net.params if k.startswith("1.")] == names
    before = {k: net.params[k].copy() for k in names}
    solver = Solver(net, spiral_data(), optimizer=SGD(lr=0.1, momentum=0.9), epochs=2, batch_size=20,
                    verbose=False)
    solver.train()
    assert set(solver.optimizer.state) == set(net.params)  # momentum kept for every tensor, the block's too
    for key in names:
        assert not np.array_equal(solver.optimizer.state[key]["velocity"], 0), key
        assert not np.array_equal(net.params[key], before[key]) or key.endswith("gamma"), key


@pytest.mark.parametrize("cls", BLOCKS, ids=lambda c: c.__name__)
def test_l2_reaches_a_blocks_weights_and_nothing_else(cls):
    data = spiral_data()
    X, y = data["X_train"][:8], data["y_train"][:8]
    losses = []
    for reg in (0.0, 0.1):
        net = Sequential(Affine(4, 4, rng=2), cls(4, rng=3), Affine(4, 2, rng=4))
        losses.append(Solver(net, data, reg=reg, optimizer=SGD(lr=1e-9), verbose=False).step(X, y))
    assert set(net.params) - {"0.W", "0.b", "2.W", "2.b"} == {f"1.{k}" for k in SUBLAYER_PARAMS[cls]}
    weights = ["0.W", "2.W", *(f"1.{k}" for k in SUBLAYER_PARAMS[cls] if k.endswith("W"))]
    expected = 0.1 * sum(float(np.sum(net.params[k].astype(np.float64) ** 2)) for k in weights)
    assert losses[1] - losses[0] == pytest.approx(expected, rel=1e-5)



@pytest.mark.parametrize("cls", BLOCKS, ids=lambda c: c.__name__)
def test_the_whole_model_check_covers_a_blocks_parameters(cls):
    rng = np.random.default_rng(5)
    net = Sequential(Affine(3, 4, rng=rng, dtype=np.float64), cls(4, rng=rng, dtype=np.float64),
                     Affine(4, 3, rng=rng, dtype=np.float64))
    if cls is NormBlock:
        net[1].fc.params["b"][:] = 1.0
    report = check_objective(net, SoftmaxCrossEntropy(), rng.standard_normal((4, 3)), np.array([0, 1, 2, 1]),
                             reg=0.1)
    assert report.passed, str(report)
    names = [c.name.split(" (")[0] for c in report.checks]
    assert names == ["dX", "0.W", "0.b", *(f"1.{k}" for k in SUBLAYER_PARAMS[cls]), "2.W", "2.b"]
    owners = {c.name.split(" (")[0]: c.name.split(" (")[1].rstrip(")") for c in report.checks if " (" in c.name}
    assert owners["0.W"] == "Affine" and owners[f"1.{SUBLAYER_PARAMS[cls][0]}"] in (cls.__name__, "Affine")


def test_a_block_that_loses_its_own_gradient_fails_the_check():
    class Forgetful(ListBlock, register=False):
        def backward(self, dout):
            dx = super().backward(dout)
            self.grads["scale"] = np.zeros_like(self.params["scale"])  # forgot dscale
            return dx

    layer, inputs = Forgetful.example(np.random.default_rng(0))
    report = gradcheck(layer, *inputs)
    assert [c.name for c in report.checks if not c.passed] == ["scale"]


def test_the_gradcheck_command_checks_user_blocks():
    result = subprocess.run([sys.executable, "-m", "layers.gradcheck", "blocks"], capture_output=True, text=True,
                            env=USER_ENV, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("3 layers, 0 losses, 12 cases, 56 tensors checked: all passed")
    assert "stages.2.W" in result.stdout and "bn.gamma" in result.stdout


BLOCK_CONFIG = """
[data]
source = "spiral"
samples = 120
standardize = true
[model]
imports = ["blocks", "slowlayer"]
layers = [{{ type = "Affine", out_features = 8 }}, {{ type = "{block}" }}, {{ type = "SlowIdentity" }},
          {{ type = "ReLU" }}, {{ type = "Affine", out_features = 3 }}]
[loss]
reg = 0.001
[optim]
type = "sgd"
lr = 0.05
momentum = 0.9
[solver]
epochs = 10
batch_size = 30
verbose = false
[output]
plot = false
checkpoint_seconds = 0.0
"""


@pytest.mark.slow
@pytest.mark.parametrize("block", ["ResidualBlock", "NormBlock", "ListBlock"])
def test_a_block_from_a_config_is_killed_resumed_bit_identical_and_loads_back(tmp_path, block):
    cfg = tmp_path / "block.toml"
    cfg.write_text(BLOCK_CONFIG.format(block=block))
    full, killed = run_killed_and_resumed(cfg, tmp_path, epochs=10)
    files = assert_same_checkpoint_arrays(full, killed)
    assert "param/1.fc.W" in files or "param/1.stages.0.W" in files
    with np.load(full / "checkpoint.npz") as a, np.load(killed / "checkpoint.npz") as b:
        meta_a, meta_b = json.loads(str(a["__meta__"])), json.loads(str(b["__meta__"]))
    assert meta_a["generators"] == meta_b["generators"]
    assert ("1.drop.rng" in meta_a["generators"]) == (block == "ResidualBlock")
    if block == "NormBlock":
        assert "buffer/1.bn.running_mean" in files
    sys.path.insert(0, str(ROOT / "tests" / "userlayers"))
    model = load_run(full)
    run_model = load_run(killed)
    X = np.random.default_rng(0).standard_normal((5, 2))
    np.testing.assert_array_equal(model.scores(X), run_model.scores(X))
    assert model.network[1].training is False


@pytest.mark.slow
def test_a_config_block_is_checked_whole_by_the_gradcheck_flag(tmp_path):
    cfg = tmp_path / "block.toml"
    cfg.write_text(BLOCK_CONFIG.format(block="ListBlock"))
    result = cli(cfg, "--gradcheck")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1.stages.2.W" in result.stdout and "1.scale" in result.stdout
    assert result.stdout.strip().endswith("10 tensors, all passed")


def test_a_misspelt_layer_in_a_config_offers_the_close_name(tmp_path):
    cfg = tmp_path / "typo.toml"
    cfg.write_text('[model]\nlayers = [{ type = "Relu" }]\n')
    result = cli(cfg)
    assert result.returncode == 2
    assert "model.layers[0].type: unknown layer 'Relu'; did you mean 'ReLU'" in result.stderr


def test_registries_share_one_lookup():
    from optim import OPTIMIZERS, SCHEDULES

    assert REGISTRY.lookup("ReLU") is ReLU
    for registry, typo, close in ((OPTIMIZERS, "adma", "'adam'"), (SCHEDULES, "Cosine", "'cosine'"),
                                  (REGISTRY, "affine", "'Affine'")):
        with pytest.raises(KeyError, match=f"unknown {registry.kind} '{typo}'; did you mean {close}"):
            registry.lookup(typo)


def test_a_block_run_trains_in_process_and_reports_its_layers(tmp_path, capsys):
    cfg = tmp_path / "block.toml"
    cfg.write_text(BLOCK_CONFIG.format(block="NormBlock").replace("verbose = false", "verbose = true"))
    run = runs.setup(cfg, [f"output.dir='{tmp_path / 'r'}'", "solver.epochs=2",
                           f"model.import_dirs=['{ROOT / 'tests' / 'userlayers'}']"])
    assert runs.train(run) == 0
    err = capsys.readouterr().err
    assert "1 NormBlock(...)" in err and "  1.bn BatchNorm(num_features=8)" in err


def test_a_user_layer_shows_its_arguments_in_its_repr_and_the_model_summary():
    from layers import Affine, Layer, Sequential
    from layers.summary import summary_table

    class LearnedSoftplus(Layer, register=False):
        def __init__(self, beta=1.0, rng=None, dtype="float32"):
            super().__init__()
            self.beta, self.rng = beta, rng

        def forward(self, x):
            return np.logaddexp(0, self.beta * x) / self.beta

    assert repr(LearnedSoftplus()) == "LearnedSoftplus()"
    assert repr(LearnedSoftplus(2.0, rng=np.random.default_rng(0))) == "LearnedSoftplus(beta=2.0)"
    summary = summary_table(Sequential(Affine(2, 3), LearnedSoftplus(beta=2.0)), np.zeros((1, 2), np.float32))
    assert "1 LearnedSoftplus(beta=2.0)" in summary, summary
