"""The life of a run after training: load, predict, evaluate, continue, interrupt, re-run from anywhere."""

import json
import os
import re
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
from tests.test_data import write_idx

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
    assert "Traceback" not in err and f"continue with: python -m solver --resume {tmp_path / 'cut'}" in err
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


def make_idx_run(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "mnist"
    data.mkdir()
    write_idx(data / "train-images-idx3-ubyte", rng.integers(0, 256, (40, 4, 4)))
    write_idx(data / "train-labels-idx1-ubyte", np.arange(40) % 3)
    write_idx(data / "t10k-images-idx3-ubyte", rng.integers(0, 256, (6, 4, 4)))
    write_idx(data / "t10k-labels-idx1-ubyte", np.arange(6) % 3)
    text = SPIRAL.replace('source = "spiral"\nsamples = 100', 'source = "mnist-idx"\npath = "mnist"')
    return trained(tmp_path, text), data


def test_predict_and_evaluate_read_every_input_format(tmp_path, capsys):
    run, data = make_idx_run(tmp_path)
    X = data / "t10k-images-idx3-ubyte"
    images = np.fromfile(X, np.uint8, offset=16).reshape(6, 16) / 255.0
    labels = np.arange(6) % 3
    np.savez(tmp_path / "in.npz", X=images, y=labels)
    header = ",".join([*(f"f{i}" for i in range(16)), "label"])
    np.savetxt(tmp_path / "in.csv", np.c_[images, labels], delimiter=",", header=header, comments="")
    expected = load_run(run.run_dir).predict(images)
    for source in (data, X, tmp_path / "in.npz", tmp_path / "in.csv"):
        out = tmp_path / f"pred-{source.name}.csv"
        assert chainrule_main(["predict", str(run.run_dir), str(source), "--out", str(out)]) == 0
        rows = out.read_text().splitlines()
        assert rows[0] == "index,label,p0,p1,p2"
        np.testing.assert_array_equal([int(r.split(",")[1]) for r in rows[1:]], expected)
    for source in (data, tmp_path / "in.npz", tmp_path / "in.csv"):
        assert chainrule_main(["evaluate", str(run.run_dir), "--data", str(source)]) == 0
        result = json.loads((run.run_dir / "evaluation.json").read_text())
        assert result["accuracy"] == pytest.approx(np.mean(expected == labels)) and result["examples"] == 6
    assert chainrule_main(["evaluate", str(run.run_dir)]) == 0  # the run's own test split
    assert "the test split of the run" in capsys.readouterr().out


def test_predict_reads_cifar10_binary_batches(tmp_path):
    folder = tmp_path / "cifar"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("data_batch_1.bin", 30), ("test_batch.bin", 4)):
        records = rng.integers(0, 256, (n, 3073)).astype(np.uint8)
        records[:, 0] = np.arange(n) % 3
        records.tofile(folder / name)
    text = SPIRAL.replace('source = "spiral"\nsamples = 100', 'source = "cifar10-bin"\npath = "cifar"')
    run = trained(tmp_path, text)
    for source in (folder, folder / "test_batch.bin"):
        assert chainrule_main(["predict", str(run.run_dir), str(source), "--out", str(tmp_path / "p.csv")]) == 0
        assert len((tmp_path / "p.csv").read_text().splitlines()) == 5


@pytest.mark.parametrize("args, message", [
    (["predict", "nope", "x.npz"], "chainrule: error: 'nope' is not a folder: expected a run folder"),
    (["evaluate", "nope"], "chainrule: error: 'nope' is not a folder: expected a run folder"),
    (["evaluate", "."], "chainrule: error: '.' is not a run: it has no checkpoint.npz"),
    (["train"], "chainrule: error: give a config file, or --resume RUN_DIR"),
])
def test_command_errors_are_one_line_with_status_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert chainrule_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(message), err


def test_an_unknown_command_is_one_line_with_status_2(capsys):
    with pytest.raises(SystemExit) as caught:
        chainrule_main(["fly"])
    assert caught.value.code == 2
    assert capsys.readouterr().err.strip().startswith("chainrule: error: argument COMMAND: invalid choice: 'fly'")


@pytest.mark.parametrize("command", ["train", "predict", "evaluate", "gradcheck"])
def test_every_command_has_help_with_an_example(command):
    result = subprocess.run([sys.executable, "-m", "chainrule", command, "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "example" in result.stdout


def test_run_files_follow_the_umask_and_a_verbose_run_shows_the_model(tmp_path):
    old = os.umask(0o022)
    try:
        result = cli(write(tmp_path, SPIRAL.replace("verbose = false", "verbose = true")),
                     "--set", f"output.dir='{tmp_path / 'r'}'")
    finally:
        os.umask(old)
    assert result.returncode == 0
    assert (tmp_path / "r" / "checkpoint.npz").stat().st_mode & 0o777 == 0o644
    assert "0 Affine(in_features=2, out_features=20)  (20,)" in result.stderr
    assert re.search(r"^total\s+123$", result.stderr, re.M)
    assert "solver: finished 10 epochs" in result.stderr


def test_a_closed_output_pipe_ends_the_command_quietly(tmp_path):
    run = trained(tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command writes anything (as `| head` can be)
    result = subprocess.run([sys.executable, "-m", "chainrule", "evaluate", str(run.run_dir)], stdout=write_end,
                            stderr=subprocess.PIPE, text=True)
    os.close(write_end)
    assert result.returncode == 141 and result.stderr == ""


def test_a_bad_label_is_reported_before_any_folder_is_created(tmp_path):
    np.savez(tmp_path / "d.npz", X_train=np.zeros((10, 2)), y_train=np.r_[np.arange(9) % 2, -1])
    text = SPIRAL.replace('source = "spiral"\nsamples = 100', 'source = "npz"\npath = "d.npz"').replace(
        "out_features = 3", "out_features = 2")
    result = cli(write(tmp_path, text), "--set", f"output.dir='{tmp_path / 'r'}'")
    assert result.returncode == 2 and "y_train has labels in [-1, 1]" in result.stderr
    assert not (tmp_path / "r").exists()


def test_loading_a_checkpoint_as_a_model_file_points_to_load_run(tmp_path):
    run = trained(tmp_path)
    with pytest.raises(ValueError, match=r"is a run's checkpoint, not a model file: load the run with "
                                         r"chainrule.load_run\('.*run'\)"):
        TrainedModel.load(run.run_dir / "checkpoint.npz")


@pytest.mark.parametrize("target", ["checkpoint.npz", "config.toml", "history.csv", "steps.csv", "model.onnx",
                                    "input"])
def test_predict_never_replaces_a_run_file_or_its_input(tmp_path, capsys, target):
    run = trained(tmp_path)
    inputs = tmp_path / "new.npz"
    np.savez(inputs, X=np.zeros((3, 2)))
    out = inputs if target == "input" else run.run_dir / target
    if target == "model.onnx":  # as `chainrule export` would have written it
        out.write_bytes(b"an exported model")
    before = out.read_bytes()
    capsys.readouterr()
    code = chainrule_main(["predict", str(run.run_dir), str(inputs), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"--out {str(out)!r} is the" in err[0]
    assert out.read_bytes() == before
    assert chainrule_main(["predict", str(run.run_dir), str(inputs)]) == 0  # its own earlier output is fine
    assert chainrule_main(["predict", str(run.run_dir), str(inputs)]) == 0


@pytest.mark.parametrize("command", ["predict", "export"])
def test_an_out_that_is_a_folder_or_in_no_folder_is_one_line_naming_it(tmp_path, capsys, command):
    if command == "export":
        pytest.importorskip("onnx")
    run = trained(tmp_path)
    inputs = tmp_path / "new.npz"
    np.savez(inputs, X=np.zeros((3, 2)))
    args = [command, str(run.run_dir), *([str(inputs)] if command == "predict" else [])]
    missing = tmp_path / "missing"
    for out, message in ((tmp_path, "is a folder; give the name of a file to write"),
                         (missing / "out.file", f"the folder {str(missing)!r} does not exist")):
        capsys.readouterr()
        assert chainrule_main([*args, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"--out {str(out)!r}" in err[0] and message in err[0], err
    assert not missing.exists()


def test_an_atomic_write_into_no_folder_names_the_file_asked_for(tmp_path):
    from chainrule.files import atomic_write

    with pytest.raises(OSError) as info:
        atomic_write(tmp_path / "missing" / "model.onnx", b"x")
    assert info.value.filename == str(tmp_path / "missing" / "model.onnx")


def test_evaluate_on_a_file_without_labels_says_where_labels_go(tmp_path, capsys):
    run = trained(tmp_path)
    path = tmp_path / "unlabelled.csv"
    path.write_text("0.1,0.2\n0.3,0.4\n")
    capsys.readouterr()
    assert chainrule_main(["evaluate", str(run.run_dir), "--data", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"--data: {str(path)!r} has no labels to evaluate against (a csv's column 'label'" in err[0]


@pytest.mark.parametrize("labels, message", [
    (["1.0", "2.0", "2.0"], None),
    (["cat", "dog", "cat"], r"column 'label' has labels that are not class numbers \('cat', 'dog'\)"),
    (["0", "1.5", "2"], r"has labels that are not class numbers \('1.5'\)"),
    (["0", "1", "7"], r"the labels of .*labelled.csv must hold the run's classes, integers 0..2; found 7"),
])
def test_evaluate_reads_labels_as_the_runs_classes_or_refuses_them(tmp_path, capsys, labels, message):
    run = trained(tmp_path)
    path = tmp_path / "labelled.csv"
    path.write_text("x0,x1,label\n" + "".join(f"0.1,0.2,{v}\n" for v in labels))
    capsys.readouterr()
    code = chainrule_main(["evaluate", str(run.run_dir), "--data", str(path)])
    out, err = capsys.readouterr()
    if message is None:  # integral floats are the integers they are: no remapping to 0..k-1
        assert code == 0
        assert json.loads((run.run_dir / "evaluation.json").read_text())["per_class"][0]["support"] == 0
    else:
        assert code == 2 and len(err.strip().splitlines()) == 1 and re.search(message, err), err


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e308])
def test_predict_refuses_non_finite_or_overflowing_rows_naming_the_file_and_row(tmp_path, capsys, bad):
    run = trained(tmp_path)
    inputs = tmp_path / "new.npz"
    X = np.zeros((4, 2))
    X[2, 1] = bad
    np.savez(inputs, X=X)
    capsys.readouterr()
    code = chainrule_main(["predict", str(run.run_dir), str(inputs), "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert f"input {str(inputs)!r}: row 2 has NaN, inf or a value beyond the model's float32" in err[0]
    assert not (tmp_path / "p.csv").exists()


def test_evaluate_on_no_rows_is_an_error_and_keeps_the_last_evaluation(tmp_path, capsys):
    run = trained(tmp_path)
    assert chainrule_main(["evaluate", str(run.run_dir)]) == 0
    before = (run.run_dir / "evaluation.json").read_bytes()
    empty = tmp_path / "empty.npz"
    np.savez(empty, X=np.zeros((0, 2)), y=np.zeros(0, np.int64))
    capsys.readouterr()
    assert chainrule_main(["evaluate", str(run.run_dir), "--data", str(empty)]) == 2
    assert "has no rows to evaluate" in capsys.readouterr().err
    assert (run.run_dir / "evaluation.json").read_bytes() == before


def test_csv_inputs_keep_a_numeric_first_row_and_refuse_empty_files(tmp_path):
    from chainrule.trained.evaluation import read_inputs
    from losses import Classification

    (tmp_path / "no_header.csv").write_text("0.5,1.0\n2.0,3.0\n")
    (tmp_path / "header.csv").write_text("a,b\n0.5,1.0\n")
    (tmp_path / "header_only.csv").write_text("a,b\n")
    (tmp_path / "empty.csv").write_text("\n")
    assert read_inputs(tmp_path / "no_header.csv", Classification())[0].tolist() == [[0.5, 1.0], [2.0, 3.0]]
    assert read_inputs(tmp_path / "header.csv", Classification())[0].tolist() == [[0.5, 1.0]]
    with pytest.raises(ValueError, match="has a header row and no data rows"):
        read_inputs(tmp_path / "header_only.csv", Classification())
    with pytest.raises(ValueError, match="is empty"):
        read_inputs(tmp_path / "empty.csv", Classification())


def test_random_bytes_named_npz_are_not_called_pickled_data(tmp_path, capsys):
    run = trained(tmp_path)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(np.random.default_rng(0).bytes(300))
    capsys.readouterr()
    assert chainrule_main(["predict", str(run.run_dir), str(junk)]) == 2
    err = capsys.readouterr().err
    assert "is not a readable npz file" in err and "not a zip archive" in err and "pickled" not in err


def test_an_unwritable_out_is_named_as_given_not_as_a_temporary_file(tmp_path, capsys):
    run = trained(tmp_path)
    inputs = tmp_path / "new.npz"
    np.savez(inputs, X=np.zeros((3, 2)))
    locked = tmp_path / "locked"
    locked.mkdir()
    out = locked / "p.csv"
    out.mkdir()  # a directory where the file should go: the final rename fails
    capsys.readouterr()
    assert chainrule_main(["predict", str(run.run_dir), str(inputs), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(out) in err and ".tmp" not in err, err


def test_a_csv_in_another_encoding_is_an_error_naming_the_file(tmp_path):
    from chainrule.trained.evaluation import read_inputs
    from losses import Classification

    path = tmp_path / "latin.csv"
    path.write_bytes("caf\xe9,b\n0.5,1.0\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin.csv' is not UTF-8 text \(byte 3\)"):
        read_inputs(path, Classification())


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
