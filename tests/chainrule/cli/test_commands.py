"""The commands on a trained run: predict and evaluate on every input format, their one-line errors, and
outputs that never replace the run's files or their inputs."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from chainrule import TrainedModel, load_run
from chainrule.cli import main as chainrule_main
from tests.chainrule.test_data import write_idx
from tests.chainrule.trained.test_model import SPIRAL, trained, write
from tests.subprocess_runs import cli


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
