"""The life of a run after training: load, predict, evaluate, continue, interrupt, re-run from anywhere."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from chainrule import TrainedModel, load_run, runs
from chainrule.cli import main as chainrule_main
from tests.subprocess_runs import ROOT, USER_ENV, cli, popen

SPIRAL = """
[data]
source = "spiral"
samples = 100
standardize = true
[model]
layers = [{ type = "Affine", out_features = 20 }, { type = "ReLU" }, { type = "Affine", out_features = 3 }]
[optim]
type = "sgd"
lr = 0.1
momentum = 0.9
[solver]
epochs = 10
batch_size = 30
lr_decay = 0.95
verbose = false
[output]
plot = false
checkpoint_seconds = 0.0
"""
SLOW = SPIRAL.replace('{ type = "ReLU" }', '{ type = "ReLU" }, { type = "SlowIdentity" }').replace(
    "[model]", '[model]\nimports = ["slowlayer"]')  # 4 ms a forward: a run that signals can catch mid-way


def without_seconds(row: str) -> str:
    """A history.csv line without its seconds column (the 7th), which no two runs share."""
    cells = row.split(",")
    return ",".join(cells[:6] + cells[7:])


def write(tmp_path, text=SPIRAL, name="cfg.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def trained(tmp_path, text=SPIRAL, sets=()):
    run = runs.setup(write(tmp_path, text), [f"output.dir='{tmp_path / 'run'}'", *sets])
    assert runs.train(run) == 0
    return run


def checkpoints_equal(a: Path, b: Path) -> None:
    with np.load(a / "checkpoint.npz") as x, np.load(b / "checkpoint.npz") as y:
        assert x.files == y.files
        for key in x.files:
            if key != "__meta__":
                np.testing.assert_array_equal(x[key], y[key], err_msg=key)
    rows_a = [without_seconds(r) for r in (a / "history.csv").read_text().splitlines()]
    rows_b = [without_seconds(r) for r in (b / "history.csv").read_text().splitlines()]
    assert rows_a == rows_b  # every column but seconds


@pytest.mark.slow
def test_load_run_in_a_new_process_predicts_as_at_the_end_of_training(tmp_path, capsys):
    run = trained(tmp_path)
    X = run.solver.data["X_test"]  # standardized, as the network saw it
    expected = run.solver.predict(X)
    raw = run.solver.data["X_test"] * run.preprocessing["std"] + run.preprocessing["mean"]  # what a user has
    np.save(tmp_path / "raw.npy", raw)
    code = (f"import numpy as np, chainrule; m = chainrule.load_run({str(run.run_dir)!r}); "
            f"np.save({str(tmp_path / 'pred.npy')!r}, m.predict(np.load({str(tmp_path / 'raw.npy')!r})))")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "pred.npy"), expected)


def test_trained_model_scores_probabilities_evaluate_and_single_file_save(tmp_path):
    run = trained(tmp_path)
    model = load_run(run.run_dir)
    X, y = run.solver.data["X_val"] * run.preprocessing["std"] + run.preprocessing["mean"], run.solver.data["y_val"]
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(np.argmax(proba, axis=1), model.predict(X))
    result = model.evaluate(X, y)
    assert result["accuracy"] == pytest.approx(np.mean(model.predict(X) == y))
    assert np.array(result["confusion"]).sum() == len(y) and len(result["per_class"]) == 3
    model.save(tmp_path / "model.npz")
    with np.load(tmp_path / "model.npz", allow_pickle=False) as f:
        meta = json.loads(str(f["__meta__"]))
        assert {"param/0.W", "param/2.b", "pre/mean", "pre/std"} <= set(f.files)
    assert meta["format"] == 1 and meta["input_shape"] == [2] and meta["classes"] == 3
    again = TrainedModel.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(again.scores(X), model.scores(X))
    with pytest.raises(ValueError, match=r"X: 3 values a row, but the model expects examples of shape \(2,\)"):
        model.predict(np.zeros((4, 3)))


def test_best_and_last_are_kept_apart(tmp_path):
    run = trained(tmp_path)
    best, last = load_run(run.run_dir), load_run(run.run_dir, which="last")
    with np.load(run.run_dir / "checkpoint.npz") as f:
        np.testing.assert_array_equal(best.network.params["0.W"], f["best/0.W"])
        np.testing.assert_array_equal(last.network.params["0.W"], f["param/0.W"])
    np.testing.assert_array_equal(run.solver.model.params["0.W"], best.network.params["0.W"])  # restored at the end


@pytest.mark.slow
def test_continuing_a_finished_run_equals_a_longer_run(tmp_path):
    cfg = write(tmp_path)
    assert cli(cfg, "--set", f"output.dir='{tmp_path / 'long'}'").returncode == 0
    assert cli(cfg, "--set", "solver.epochs=6", "--set", f"output.dir='{tmp_path / 'short'}'").returncode == 0
    result = cli("--resume", tmp_path / "short", "--set", "solver.epochs=10")  # no config: the run's own
    assert result.returncode == 0, result.stderr
    checkpoints_equal(tmp_path / "long", tmp_path / "short")


@pytest.mark.slow
def test_an_early_stopped_run_can_be_extended(tmp_path):
    cfg = write(tmp_path, SPIRAL.replace("epochs = 10", "epochs = 60\npatience = 1"))
    assert cli(cfg, "--set", f"output.dir='{tmp_path / 'r'}'").returncode == 0
    first = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert first["stop_reason"].startswith("early stop") and first["epochs_run"] < 60
    result = cli("--resume", tmp_path / "r", "--set", "solver.patience=1000")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["epochs_run"] == 60
    assert "patience = 1000" in (tmp_path / "r" / "config.toml").read_text()


@pytest.mark.slow
def test_ctrl_c_checkpoints_says_how_to_continue_and_resumes_bit_identically(tmp_path):
    cfg = write(tmp_path, SLOW.replace("epochs = 10", "epochs = 12"))
    assert cli(cfg, "--set", f"output.dir='{tmp_path / 'full'}'").returncode == 0
    proc = popen([sys.executable, "-m", "solver", cfg, "--set", f"output.dir='{tmp_path / 'cut'}'"],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (tmp_path / "cut" / "checkpoint.json").exists():
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and f"continue with: chainrule train --resume {tmp_path / 'cut'}" in err
    assert json.loads((tmp_path / "cut" / "checkpoint.json").read_text())["epoch"] < 12
    result = cli("--resume", tmp_path / "cut")
    assert result.returncode == 0, result.stderr
    checkpoints_equal(tmp_path / "full", tmp_path / "cut")


@pytest.mark.slow
def test_sigterm_stops_after_the_epoch_with_a_checkpoint_and_status_143(tmp_path):
    cfg = write(tmp_path, SLOW.replace("epochs = 10", "epochs = 200"))
    proc = popen([sys.executable, "-m", "solver", cfg, "--set", f"output.dir='{tmp_path / 'r'}'"],
                 stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (tmp_path / "r" / "checkpoint.json").exists():
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "terminated (SIGTERM) after epoch" in err and "Traceback" not in err
    meta = json.loads((tmp_path / "r" / "checkpoint.json").read_text())
    assert meta["stop_reason"]["kind"] == "terminated" and meta["epoch"] < 200
    assert meta["stop_reason"]["message"].startswith("terminated (SIGTERM) after epoch")


@pytest.mark.slow
def test_a_run_folder_config_reruns_from_another_directory(tmp_path):
    result = cli(ROOT / "examples" / "custom" / "custom.toml", "--set", "solver.epochs=2",
                 "--set", f"output.dir='{tmp_path / 'first'}'", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = subprocess.run([sys.executable, "-m", "solver", str(tmp_path / "first" / "config.toml"),
                            "--set", f"output.dir='{tmp_path / 'second'}'"], capture_output=True, text=True,
                           cwd=elsewhere)
    assert again.returncode == 0, again.stderr
    checkpoints_equal(tmp_path / "first", tmp_path / "second")


@pytest.mark.slow
def test_a_run_folder_has_one_writer_and_a_dead_writers_lock_is_taken_over(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "userlayers"))  # the run imports slowlayer
    cfg = write(tmp_path, SLOW.replace("epochs = 10", "epochs = 300"))
    run_dir = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "solver", str(cfg), "--set", f"output.dir='{run_dir}'"],
                            env=USER_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (run_dir / "checkpoint.json").exists():
            time.sleep(0.01)
        assert (run_dir / ".lock").read_text() == str(proc.pid)
        config_before = (run_dir / "config.toml").read_bytes()
        capsys.readouterr()
        code = chainrule_main(["train", "--resume", str(run_dir), "--set", "solver.epochs=301"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and f"is in use by process {proc.pid}" in err[0], err
        # the live writer goes on writing its checkpoint and history; the refused resume wrote nothing:
        # its config (301 epochs) never reached the folder, and the lock is still the live writer's
        assert (run_dir / "config.toml").read_bytes() == config_before
        assert b"301" not in config_before
        assert (run_dir / ".lock").read_text() == str(proc.pid)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (run_dir / ".lock").exists()  # SIGKILL leaves it behind; its process is gone, so it is taken over
    assert chainrule_main(["train", "--resume", str(run_dir), "--set", "solver.epochs=2", "--set",
                           "solver.verbose=false"]) == 0  # epoch 2 is behind it: it ends at once
    assert not (run_dir / ".lock").exists()
