"""Layers with state and modes: Dropout, BatchNorm, LayerNorm; buffers through the Solver, configs and checkpoints."""

import json

import numpy as np
import pytest

from chainrule import load_run
from layers import Affine, BatchNorm, Dropout, Layer, LayerNorm, ReLU, Sequential
from layers.gradcheck import gradcheck
from solver import Solver
from tests.subprocess_runs import (
    ROOT,
    cli,
    kill_after_epoch,
)


def without_seconds(row: str) -> str:
    """A history.csv line without its seconds column (the 7th), which no two runs share."""
    cells = row.split(",")
    return ",".join(cells[:6] + cells[7:])


def test_dropout_scales_in_training_and_is_identity_in_eval(rng):
    layer = Dropout(0.25, rng=3)
    x = rng.standard_normal((200, 50)).astype(np.float32)
    out = layer.forward(x)
    assert out.dtype == np.float32
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / 0.75, rtol=1e-6)
    assert abs(kept.mean() - 0.75) < 0.01
    dout = np.ones_like(x)
    np.testing.assert_array_equal(layer.backward(dout), kept / np.float32(0.75))
    layer.eval()
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(dout), dout)


def test_dropout_masks_come_from_its_own_seeded_generator():
    x = np.ones((4, 6))
    assert np.array_equal(Dropout(0.5, rng=7).forward(x), Dropout(0.5, rng=7).forward(x))
    assert not np.array_equal(Dropout(0.5, rng=7).forward(x), Dropout(0.5, rng=8).forward(x))
    assert set(Sequential(Affine(6, 6, rng=0), Dropout(rng=1)).generators()) == {"1.rng"}


@pytest.mark.parametrize("p", [-0.1, 1.0, "0.5", True])
def test_dropout_rejects_bad_p(p):
    with pytest.raises(ValueError, match=r"Dropout: p must be a number in \[0, 1\)"):
        Dropout(p)


def test_batchnorm_training_normalizes_and_updates_running_statistics(rng):
    layer = BatchNorm(3, momentum=0.1, dtype=np.float64)
    x = 5 + 2 * rng.standard_normal((8, 3))
    out = layer.forward(x)
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(0), 1, rtol=1e-4)
    np.testing.assert_allclose(layer.buffers["running_mean"], 0.1 * x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(layer.buffers["running_var"], 0.9 + 0.1 * x.var(0, ddof=1), rtol=1e-12)
    layer.eval()
    expected = (x - layer.buffers["running_mean"]) / np.sqrt(layer.buffers["running_var"] + 1e-5)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12)
    running = layer.buffers["running_mean"].copy()
    layer.forward(x)
    np.testing.assert_array_equal(layer.buffers["running_mean"], running)  # eval never moves them


def test_batchnorm_batch_of_one_in_training_is_a_clear_error():
    with pytest.raises(ValueError, match=r"BatchNorm\(num_features=3\): a batch of 1 in training mode has no "
                                         r"variance; use batches of 2 or more, or call eval\(\)"):
        BatchNorm(3).forward(np.zeros((1, 3), np.float32))
    assert BatchNorm(3).eval().forward(np.zeros((1, 3), np.float32)).dtype == np.float32


def test_batchnorm_and_layernorm_check_shapes_and_keep_float32(rng):
    with pytest.raises(ValueError, match=r"BatchNorm\(num_features=3\): expected x of shape \(N, 3\) or "
                                         r"\(N, 3, \*spatial\), got \(4, 2\)"):
        BatchNorm(3).forward(np.zeros((4, 2), np.float32))
    x = rng.standard_normal((4, 3)).astype(np.float32)
    for layer in (BatchNorm(3), LayerNorm(3)):
        out = layer.forward(x)
        assert out.dtype == np.float32 and layer.backward(np.ones_like(out)).dtype == np.float32


def test_layernorm_normalizes_rows_the_same_in_both_modes(rng):
    layer = LayerNorm(5, dtype=np.float64)
    x = 3 + rng.standard_normal((4, 5))
    out = layer.forward(x)
    np.testing.assert_allclose(out.mean(1), 0, atol=1e-12)
    np.testing.assert_array_equal(layer.eval().forward(x), out)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("cls", [BatchNorm, LayerNorm, Dropout])
def test_gradients_in_both_modes(cls, mode):
    for seed in range(10):
        layer, inputs = cls.example(np.random.default_rng(seed), batch=3)
        report = gradcheck(layer, *inputs, mode=mode, rng=seed)
        assert report.passed, str(report)


def test_against_pytorch_in_float64(rng):
    from tests.torch_reference import torch_reference

    x, dout = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))

    def compute(torch):
        arrays = {}
        norm = torch.nn.BatchNorm1d(4).double()
        for name, ref in (("batch", norm), ("layer", torch.nn.LayerNorm(4).double())):
            xt = torch.tensor(x, requires_grad=True)
            out_t = ref(xt)
            out_t.backward(torch.tensor(dout))
            arrays.update({f"{name}_out": out_t.detach().numpy(), f"{name}_dx": xt.grad.numpy(),
                           f"{name}_gamma": ref.weight.grad.numpy(), f"{name}_beta": ref.bias.grad.numpy()})
        arrays.update(running_mean=norm.running_mean.numpy(), running_var=norm.running_var.numpy())
        norm.eval()
        arrays["batch_eval"] = norm(torch.tensor(x)).detach().numpy()
        dropped = torch.nn.functional.dropout(torch.ones(50, 50, dtype=torch.float64), 0.3, training=True).numpy()
        arrays["dropout_values"] = np.unique(dropped)
        return arrays

    theirs = torch_reference("normalization_dropout", compute)
    ours = BatchNorm(4, dtype=np.float64)
    for name, layer in (("batch", ours), ("layer", LayerNorm(4, dtype=np.float64))):
        np.testing.assert_allclose(layer.forward(x), theirs[f"{name}_out"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.backward(dout), theirs[f"{name}_dx"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(layer.grads["gamma"], theirs[f"{name}_gamma"], rtol=1e-10)
        np.testing.assert_allclose(layer.grads["beta"], theirs[f"{name}_beta"], rtol=1e-10)
    np.testing.assert_allclose(ours.buffers["running_mean"], theirs["running_mean"], rtol=1e-12)
    np.testing.assert_allclose(ours.buffers["running_var"], theirs["running_var"], rtol=1e-12)
    ours.eval()
    np.testing.assert_allclose(ours.forward(x), theirs["batch_eval"], rtol=1e-10)
    out = Dropout(0.3, rng=0).forward(np.ones((50, 50)))
    assert set(np.unique(out)) == set(theirs["dropout_values"]) == {0.0, 1 / 0.7}


def small_data(rng):
    X = rng.standard_normal((60, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    return {"X_train": X[:40], "y_train": y[:40], "X_val": X[40:], "y_val": y[40:]}


def test_solver_measures_in_eval_mode_snapshots_buffers_and_restores_the_mode(rng):
    model = Sequential(Affine(4, 8, rng=0), BatchNorm(8), ReLU(), Dropout(0.5, rng=1), Affine(8, 2, rng=2))
    model.eval()
    solver = Solver(model, small_data(rng), epochs=3, batch_size=10, verbose=False)
    solver.train()
    assert model.training is False
    assert set(solver.best_buffers) == {"1.running_mean", "1.running_var"}
    for key, value in solver.best_buffers.items():
        np.testing.assert_array_equal(model.buffers[key], value)
    before = {k: v.copy() for k, v in model.buffers.items()}
    model.train()
    solver.predict(solver.data["X_val"])
    assert model.training is True
    for key, value in before.items():
        np.testing.assert_array_equal(model.buffers[key], value)  # predicting moved no statistic


BN_CONFIG = """
[data]
source = "spiral"
samples = 100
[model]
imports = ["slowlayer"]
layers = [{ type = "Affine", out_features = 16 }, { type = "BatchNorm" }, { type = "ReLU" },
          { type = "Dropout", p = 0.3 }, { type = "SlowIdentity" }, { type = "Affine", out_features = 3 }]
[optim]
type = "sgd"
lr = 0.1
momentum = 0.9
[solver]
epochs = 12
batch_size = 30
verbose = false
[output]
plot = false
checkpoint_seconds = 0.0
"""


def test_config_builder_leaves_every_buffer_at_its_initial_value():
    from chainrule.build import build_model

    cfg = {"layers": [{"type": "Affine", "out_features": 5}, {"type": "BatchNorm"}, {"type": "Dropout"},
                      {"type": "Affine", "out_features": 2}], "dtype": "float32", "init": "he"}
    model = build_model(cfg, 7 + np.zeros((10, 3), np.float32), np.random.default_rng(0))
    np.testing.assert_array_equal(model.buffers["1.running_mean"], 0)
    np.testing.assert_array_equal(model.buffers["1.running_var"], 1)
    assert model.training


@pytest.mark.slow
def test_kill_and_resume_with_batchnorm_and_dropout_equals_the_uninterrupted_run(tmp_path):
    cfg = tmp_path / "bn.toml"
    cfg.write_text(BN_CONFIG)
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert cli(cfg, "--set", f"output.dir='{full}'").returncode == 0
    epoch_at_kill = kill_after_epoch(cfg, killed, 3)
    assert 3 <= epoch_at_kill < 12
    result = cli(cfg, "--resume", killed)
    assert result.returncode == 0, result.stderr
    with np.load(full / "checkpoint.npz") as a, np.load(killed / "checkpoint.npz") as b:
        keys = [k for k in a.files if k.startswith(("param/", "buffer/", "best/", "best_buffer/", "optim/"))]
        assert any(k.startswith("buffer/") for k in keys)
        for key in keys:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        meta_a, meta_b = json.loads(str(a["__meta__"])), json.loads(str(b["__meta__"]))
    assert meta_a["generators"] == meta_b["generators"] and set(meta_a["generators"]) == {"3.rng"}
    hist_a = (full / "history.csv").read_text().splitlines()
    hist_b = (killed / "history.csv").read_text().splitlines()
    assert [without_seconds(r) for r in hist_a] == [without_seconds(r) for r in hist_b]


def test_a_finished_run_rebuilt_from_its_folder_predicts_as_at_the_end_of_training(tmp_path):
    from chainrule import runs

    cfg = tmp_path / "bn.toml"
    cfg.write_text(BN_CONFIG.replace("epochs = 12", "epochs = 4"))
    run = runs.setup(cfg, [f"output.dir='{tmp_path / 'r'}'", f"model.import_dirs=['{ROOT / 'tests' / 'userlayers'}']"])
    assert runs.train(run) == 0
    X = run.solver.data["X_test"]
    expected = run.solver.model.eval().forward(X)
    model = load_run(run.run_dir)
    assert model.network.training is False
    np.testing.assert_array_equal(model.scores(X), expected)


@pytest.mark.slow
def test_mnist1d_example_with_batchnorm_and_dropout_reaches_the_papers_mlp(tmp_path, capsys):
    pytest.importorskip("mnist1d")
    from chainrule.cli import solver_main as main

    code = main([str(ROOT / "examples" / "mnist1d_bn_dropout.toml"), "--set", "solver.verbose=false",
                 "--set", "output.plot=false", "--set", f"output.dir='{tmp_path / 'r'}'"])
    assert code == 0
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["test_acc"] >= 0.68


class Block(Layer, register=False):
    """A user container that keeps its sub-layers in attributes, not in children()."""

    def __init__(self):
        super().__init__()
        self.drop, self.parts = Dropout(0.5, rng=1), [Dropout(0.3, rng=2)]

    def forward(self, x):
        return self.parts[0].forward(self.drop.forward(x))

    def backward(self, dout):
        return self.drop.backward(self.parts[0].backward(dout))


def test_generators_are_found_in_children_and_in_attributes_and_held_fixed_by_gradcheck(rng):
    net = Sequential(Affine(4, 4, rng=0), Dropout(rng=1), Block())
    assert list(net.generators()) == ["1.rng", "2.drop.rng", "2.parts.0.rng"]
    report = gradcheck(Block(), rng.standard_normal((3, 4)))
    assert report.passed and "randomness held fixed" in report.notes[0]
