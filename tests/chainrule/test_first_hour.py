"""What a new user tripped over in the first hour (issue 22): each item, fixed, with its test."""

import json
import subprocess
import sys

import numpy as np
import pytest

from chainrule import report, runs
from chainrule.cli import main as chainrule_main
from chainrule.trained import evaluation, pictures
from tests.chainrule.trained.test_model import SPIRAL, trained, write
from tests.subprocess_runs import ROOT, USER_ENV


def test_a_resumed_run_says_what_its_seconds_are_and_drops_stale_evaluations(tmp_path, capsys):
    run = trained(tmp_path, SPIRAL.replace("verbose = false", "verbose = true"))
    assert chainrule_main(["evaluate", str(run.run_dir)]) == 0
    assert (run.run_dir / "evaluation.json").exists()
    capsys.readouterr()
    resumed = runs.setup(None, ["solver.epochs=14"], resume=run.run_dir)
    assert runs.train(resumed) == 0
    out, err = capsys.readouterr()
    assert not (run.run_dir / "evaluation.json").exists() and "removed evaluation.json" in err
    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    assert metrics["train_seconds"] == pytest.approx(sum(resumed.solver.epoch_seconds), abs=1e-3)  # all 14 epochs
    assert "final_train_acc" not in metrics and "train_seconds" in out and "wall_seconds" in out
    kept = resumed.solver.check_accuracy(resumed.solver.data["X_train"], resumed.solver.data["y_train"])
    assert metrics["train_acc"] == kept  # of the parameters the run keeps (the best epoch's)


def test_evaluate_writes_its_files_before_a_reader_closes_the_pipe(tmp_path):
    run = trained(tmp_path)
    result = subprocess.run(f"{sys.executable} -m chainrule evaluate {run.run_dir} | head -1", shell=True,
                            capture_output=True, text=True, env=USER_ENV, cwd=ROOT)
    assert result.stdout.startswith("best parameters of") and "Traceback" not in result.stderr
    assert (run.run_dir / "evaluation.json").exists() and (run.run_dir / "confusion.png").exists()


def captured_figure(monkeypatch):
    figures = []
    monkeypatch.setattr(evaluation, "save_figure", lambda fig, path: figures.append(fig))
    return figures


@pytest.mark.parametrize("classes", [3, 10])
def test_the_confusion_matrix_labels_every_class_and_nothing_between(classes, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    figures = captured_figure(monkeypatch)
    confusion = np.arange(classes * classes).reshape(classes, classes)
    assert evaluation.write_confusion_png(tmp_path / "c.png", confusion)
    ax = figures[0].axes[0]
    assert list(ax.get_xticks()) == list(range(classes)) and list(ax.get_yticks()) == list(range(classes))
    sizes = {t.get_fontsize() for t in ax.texts}
    assert len(ax.texts) == classes * classes and min(sizes) >= 10


def test_without_matplotlib_a_run_says_there_are_no_curves(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(report, "pyplot", lambda: None)
    run = runs.setup(write(tmp_path, SPIRAL.replace("plot = false", "plot = true").replace(
        "verbose = false", "verbose = true")), [f"output.dir='{tmp_path / 'r'}'"])
    assert runs.train(run) == 0
    assert "no curves.png: matplotlib is not installed" in capsys.readouterr().err
    assert not (tmp_path / "r" / "curves.png").exists()


def test_chainrule_version(capsys):
    import chainrule

    with pytest.raises(SystemExit) as caught:
        chainrule_main(["--version"])
    assert caught.value.code == 0 and capsys.readouterr().out.strip() == f"chainrule {chainrule.__version__}"
    assert all((ROOT / p / "py.typed").exists() for p in ("layers", "losses", "optim", "chainrule"))
    assert (ROOT / "LICENSE").read_text().startswith("MIT License") and (ROOT / "CHANGELOG.md").exists()


def test_the_solver_takes_numpy_data_as_it_comes_and_converts_it_once():
    from chainrule.data import spiral
    from layers import Affine, ReLU, Sequential
    from solver import Solver

    X, y = spiral(samples=50, classes=3, noise=0.2, seed=0)  # float64, as numpy makes it
    data = {"X_train": X, "y_train": y, "X_val": X.astype(np.float32), "y_val": y,
            "X_test": (X * 10).astype(np.int16), "y_test": y}
    model = Sequential(Affine(2, 16, rng=0), ReLU(), Affine(16, 3, rng=0))  # float32
    solver = Solver(model, data, epochs=2, verbose=False)
    assert {solver.data[k].dtype for k in ("X_train", "X_val", "X_test")} == {np.dtype(np.float32)}
    assert solver.data["X_val"] is data["X_val"]  # already the model's dtype: not copied
    solver.train()
    with pytest.raises(ValueError, match=r"X_train has values beyond float32"):
        Solver(model, {**data, "X_train": X * 1e39}, verbose=False)
    with pytest.raises(TypeError, match=r"X_train must be real numbers, got complex128"):
        Solver(model, {**data, "X_train": X.astype(complex)}, verbose=False)


def test_without_matplotlib_evaluate_says_there_are_no_pictures(tmp_path, capsys, monkeypatch):
    run = trained(tmp_path)
    monkeypatch.setattr(evaluation, "pyplot", lambda: None)
    monkeypatch.setattr(pictures, "pyplot", lambda: None)
    capsys.readouterr()
    assert chainrule_main(["evaluate", str(run.run_dir)]) == 0
    assert "no pictures: matplotlib is not installed" in capsys.readouterr().err
    assert (run.run_dir / "evaluation.json").exists() and not (run.run_dir / "confusion.png").exists()


def test_a_users_layers_py_in_the_working_directory_is_named_in_one_line(tmp_path):
    (tmp_path / "layers.py").write_text("x = 1\n")
    result = subprocess.run([sys.executable, "-m", "solver", str(ROOT / "examples" / "spiral.toml")], cwd=tmp_path,
                            capture_output=True, text=True, env=USER_ENV, timeout=60)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"solver: error: {tmp_path / 'layers.py'} shadows chainrule's 'layers': Python finds it first on its path "
        "(the working directory comes first); rename it or run from another folder"]


def test_a_user_layer_that_changes_the_dtype_is_named_where_it_happens():
    from layers import Affine, Layer, ReLU, Sequential

    class Doubling(Layer):
        def forward(self, x):
            return x * np.float64(2.0)  # a float64 constant: float32 in, float64 out

        def backward(self, dout):
            return dout * 2.0

    net = Sequential(Affine(3, 4, rng=0), Doubling(), ReLU(), Affine(4, 2, rng=0))
    with pytest.raises(TypeError, match=r"Doubling\(\) turned float32 input into float64 output; a layer computes in "
                                        r"its input's dtype: write its constants as x.dtype.type\(c\)") as error:
        net.forward(np.ones((2, 3), np.float32))
    assert "in layer 1 (Doubling()) of Sequential.forward" in getattr(error.value, "__notes__", [""])[0]
    assert net.astype(np.float64).forward(np.ones((2, 3))).dtype == np.float64  # float64 in, float64 out: fine
