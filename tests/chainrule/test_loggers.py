"""TensorBoard and MLflow, read back with their own readers: TensorBoard's event accumulator gives the scalars
of history.csv and steps.csv; mlflow.search_runs finds the run, its params and metrics; a run killed with
SIGKILL and resumed shows each step and epoch once; a sweep is a parent run with a child per trial."""

import csv
import importlib.util
import json

import numpy as np
import pytest

from chainrule import runs
from chainrule.config import ConfigError
from tests.subprocess_runs import ROOT, cli, kill_after_epoch

pytestmark = pytest.mark.slow  # each trains a run, and MLflow makes a database

CONFIG = """
[data]
source = "spiral"
samples = 80
[model]
imports = [{imports}]
import_dirs = ["{userlayers}"]
layers = [{{ type = "Affine", out_features = 16 }}, {{ type = "ReLU" }}, {extra}{{ type = "Affine" }}]
[optim]
type = "sgd"
lr = 0.1
momentum = 0.9
clip_norm = 1.0
[solver]
epochs = {epochs}
batch_size = 32
verbose = false
[output]
loggers = {loggers}
histograms = true
mlflow_uri = "{uri}"
checkpoint_seconds = 0.0
"""


@pytest.fixture(autouse=True)
def no_global_tracking_uri(monkeypatch):
    """Each test's runs find their store from their config: mlflow.set_tracking_uri (which sets
    MLFLOW_TRACKING_URI, which chainrule obeys) is undone after each test."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield
    try:
        import mlflow
    except ImportError:
        return
    mlflow.set_tracking_uri(None)


def write_config(tmp_path, loggers='["tensorboard", "mlflow"]', epochs=4, extra="", imports="", name="c.toml"):
    path = tmp_path / name
    path.write_text(CONFIG.format(loggers=loggers, epochs=epochs, extra=extra, imports=imports,
                                  userlayers=ROOT / "tests" / "userlayers", uri=f"sqlite:///{tmp_path / 'ml.db'}"))
    return path


def history(run_dir):
    with open(run_dir / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def scalars(run_dir):
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}, acc


def test_tensorboard_shows_the_runs_history_per_step_and_per_epoch(tmp_path):
    pytest.importorskip("tensorboard")
    run = runs.setup(write_config(tmp_path, '["tensorboard"]'), [f"output.dir='{tmp_path / 'r'}'"])
    assert runs.train(run) == 0
    rows, steps = history(tmp_path / "r"), run.solver.steps_per_epoch
    tags, acc = scalars(tmp_path / "r")
    for column in ("loss", "val_loss", "train_acc", "val_acc", "lr"):
        assert [s for s, _ in tags[f"epoch/{column}"]] == [steps * (e + 1) for e in range(4)]
        np.testing.assert_allclose([v for _, v in tags[f"epoch/{column}"]], [float(r[column]) for r in rows],
                                   rtol=1e-6)
    assert [v for _, v in tags["train/loss"]] == pytest.approx(run.solver.loss_history, rel=1e-6)
    assert [s for s, _ in tags["train/loss"]] == list(range(1, 4 * steps + 1))
    assert all(v > 0 for _, v in tags["epoch/grad_norm"]) and len(tags["epoch/grad_norm"]) == 4
    assert "weights/0.W" in acc.Tags()["histograms"] and "grads/2.b" in acc.Tags()["histograms"]
    assert (tmp_path / "r" / "tensorboard" / "hparams").is_dir()


def test_mlflow_finds_the_run_its_params_metrics_and_artifacts(tmp_path):
    mlflow = pytest.importorskip("mlflow")
    run = runs.setup(write_config(tmp_path, '["mlflow"]'), [f"output.dir='{tmp_path / 'r'}'"])
    assert runs.train(run) == 0
    saved = json.loads((tmp_path / "r" / "mlflow.json").read_text())
    mlflow.set_tracking_uri(saved["tracking_uri"])
    found = mlflow.search_runs(search_all_experiments=True)
    assert list(found["run_id"]) == [saved["run_id"]] and found["status"][0] == "FINISHED"
    assert found["params.solver.epochs"][0] == "4" and found["params.optim.type"][0] == "sgd"
    assert found["tags.chainrule.run_dir"][0] == str((tmp_path / "r").resolve())
    client = mlflow.tracking.MlflowClient()
    val = client.get_metric_history(saved["run_id"], "val_loss")
    assert [m.step for m in val] == [1, 2, 3, 4]
    assert [m.value for m in val] == pytest.approx([float(r["val_loss"]) for r in history(tmp_path / "r")])
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert found["metrics.final/test_acc"][0] == pytest.approx(metrics["test_acc"])
    artifacts = {a.path for a in client.list_artifacts(saved["run_id"])}
    assert "config.toml" in artifacts
    from chainrule.cli import main

    assert main(["evaluate", str(tmp_path / "r")]) == 0  # evaluate's and export's files join the same run
    expected = {"config.toml", "evaluation.json"}
    if importlib.util.find_spec("onnx") is not None:
        assert main(["export", str(tmp_path / "r")]) == 0
        expected.add("model.onnx")
    assert expected <= {a.path for a in client.list_artifacts(saved["run_id"])}


def test_a_killed_run_resumed_shows_each_step_and_epoch_once_in_both(tmp_path):
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("tensorboard")
    config = write_config(tmp_path, epochs=8, extra='{ type = "SlowIdentity" }, ', imports='"slowlayer"')
    run_dir = tmp_path / "killed"
    assert 2 <= kill_after_epoch(config, run_dir, 2) < 8
    before = json.loads((run_dir / "mlflow.json").read_text())
    result = cli(config, "--resume", run_dir)
    assert result.returncode == 0, result.stderr
    assert json.loads((run_dir / "mlflow.json").read_text()) == before  # the same MLflow run
    rows = history(run_dir)
    tags, _ = scalars(run_dir)
    steps = [s for s, _ in tags["train/loss"]]
    assert steps == sorted(set(steps)) == list(range(1, len(steps) + 1))  # each step once
    with open(run_dir / "steps.csv", newline="") as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    assert [v for _, v in tags["train/loss"]] == pytest.approx(losses, rel=1e-6)
    assert [v for _, v in tags["epoch/val_loss"]] == pytest.approx([float(r["val_loss"]) for r in rows], rel=1e-6)
    client = mlflow.tracking.MlflowClient(before["tracking_uri"])
    val = client.get_metric_history(before["run_id"], "val_loss")
    assert [m.step for m in val] == list(range(1, 9))  # no epoch sent twice
    assert [m.value for m in val] == pytest.approx([float(r["val_loss"]) for r in rows])
    assert client.get_run(before["run_id"]).info.status == "FINISHED"


def test_a_sweep_is_a_parent_run_with_a_child_per_trial_each_with_its_tensorboard_curves(tmp_path):
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("tensorboard")
    from chainrule.sweeps import sweep

    path = write_config(tmp_path, '["mlflow", "tensorboard"]', epochs=2, name="s.toml")
    path.write_text(path.read_text() + '[sweep]\ntrials = 3\nworkers = 2\n[sweep.params]\n'
                                       '"optim.lr" = { loguniform = [1e-3, 1e-1] }\n')
    rows = sweep(path, sets=[f"output.dir='{tmp_path / 's'}'"])
    parent = json.loads((tmp_path / "s" / "mlflow.json").read_text())["run_id"]
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'ml.db'}")
    found = mlflow.search_runs(search_all_experiments=True)
    children = found[found["tags.mlflow.parentRunId"] == parent]
    assert len(children) == len(rows) == 3
    assert set(children["status"]) == {"FINISHED"}
    assert sorted(children["params.optim.lr"].astype(float)) == pytest.approx(sorted(r["optim.lr"] for r in rows))
    for trial in sorted((tmp_path / "s").glob("trial-*")):
        tags, _ = scalars(trial)
        assert [v for _, v in tags["epoch/val_loss"]] == pytest.approx([float(r["val_loss"]) for r in history(trial)])


def test_a_logger_whose_extra_is_missing_or_unknown_is_one_line(tmp_path, monkeypatch):
    import importlib.util

    from chainrule.loggers import runs as logger_runs

    with pytest.raises(ConfigError, match=r"output.loggers: unknown logger 'wandb'; known: tensorboard, mlflow"):
        runs.setup(write_config(tmp_path, '["wandb"]'), [])
    real = importlib.util.find_spec
    monkeypatch.setattr(logger_runs.importlib.util, "find_spec", lambda name: None if name == "mlflow" else real(name))
    with pytest.raises(ConfigError, match=r"'mlflow' needs the mlflow extra: pip install -e '.\[mlflow\]'"):
        runs.setup(write_config(tmp_path, '["mlflow"]'), [])
    assert not (tmp_path / "runs").exists()  # refused before any folder was made


def test_the_table_of_runs_gives_status_scores_and_the_keys_that_differ(tmp_path, capsys):
    from chainrule.cli import main
    from chainrule.files import RunLock

    config = write_config(tmp_path, "[]", epochs=2)
    for name, lr in (("a", 0.1), ("b", 0.05), ("c", 0.2)):
        run = runs.setup(config, [f"output.dir='{tmp_path / 'runs' / name}'", f"optim.lr={lr}"])
        assert runs.train(run) == 0
    (tmp_path / "runs" / "c" / "metrics.json").unlink()  # as a run killed after its checkpoint leaves it
    (tmp_path / "runs" / "d").mkdir()
    (tmp_path / "runs" / "d" / "checkpoint.json").write_text("{not json")
    capsys.readouterr()
    assert main(["runs", str(tmp_path / "runs"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by_name = {row["run"]: row for row in out["runs"]}
    assert [by_name[n]["status"] for n in "abcd"] == ["finished", "finished", "stopped", "damaged"]
    assert out["differing_keys"] == ["optim.lr"]
    metrics = json.loads((tmp_path / "runs" / "a" / "metrics.json").read_text())
    assert by_name["a"]["best_val"] == metrics["best_val_acc"] and by_name["a"]["test"] == metrics["test_acc"]
    assert by_name["a"]["epochs"] == 2 and by_name["a"]["seconds"] == metrics["train_seconds"]
    with RunLock(tmp_path / "runs" / "b"):
        assert main(["runs", str(tmp_path / "runs"), "--sort", "optim.lr"]) == 0
        lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["run", "status", "epochs", "best_val", "test", "seconds", "optim.lr"]
    assert [line.split()[0] for line in lines[1:]] == ["b", "a", "c", "d"]  # by lr; d has none: last
    assert lines[1].split()[1] == "running"
    assert main(["runs", str(tmp_path / "runs"), "--sort", "nothing"]) == 2
    assert "neither a column" in capsys.readouterr().err
