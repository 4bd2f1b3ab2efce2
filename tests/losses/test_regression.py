"""Regression: MSE and Huber against closed forms and PyTorch, R² and RMSE against scikit-learn, the Solver on
real targets, and a regression config from the command line (train, resume, evaluate, predict, export)."""

import csv
import json

import numpy as np
import pytest

from layers import Affine, ReLU, Sequential
from losses import HuberLoss, MSELoss, Regression, r2_score, rmse
from losses.gradcheck import check_loss
from solver import Solver
from tests.subprocess_runs import ROOT


def huber_by_cases(s, y, delta):
    """h(d) written case by case, one element at a time: an oracle independent of the vectorized loss."""
    total, grad = 0.0, np.zeros_like(s)
    for index, (a, b) in enumerate(zip(s.ravel(), y.ravel(), strict=True)):
        d = a - b
        total += 0.5 * d * d if abs(d) < delta else delta * (abs(d) - 0.5 * delta)
        grad.ravel()[index] = d if abs(d) <= delta else delta * np.sign(d)
    return total / s.size, grad / s.size


def test_mse_and_huber_values_and_gradients_by_hand(rng):
    s, y = np.array([[1.0, -2.0], [0.5, 3.0]]), np.array([[0.0, 0.0], [0.0, 0.0]])
    mse = MSELoss()
    assert mse.forward(s, y) == pytest.approx((1 + 4 + 0.25 + 9) / 4)
    np.testing.assert_allclose(mse.backward(), 2 * s / 4)
    huber = HuberLoss(delta=1.0)  # |d| = 1, 2, 0.5, 3: the quadratic part only for 0.5; at 1 both give 0.5
    assert huber.forward(s, y) == pytest.approx((0.5 + 1.5 + 0.125 + 2.5) / 4)
    np.testing.assert_allclose(huber.backward(), np.array([[1, -1], [0.5, 1]]) / 4)
    for delta in (0.3, 1.0, 2.5):
        s, y = rng.standard_normal((5, 3)) * 2, rng.standard_normal((5, 3))
        loss = HuberLoss(delta)
        expected, expected_grad = huber_by_cases(s, y, delta)
        assert loss.forward(s, y) == pytest.approx(expected, rel=1e-12)
        np.testing.assert_allclose(loss.backward(), expected_grad, rtol=1e-12)


@pytest.mark.parametrize("loss", [MSELoss(), HuberLoss(0.7)])
@pytest.mark.parametrize("shapes", [((4, 3), (4, 3)), ((5, 1), (5,))])
def test_regression_losses_pass_the_gradient_check(loss, shapes, rng):
    scores, y = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    report = check_loss(loss, scores, y)
    assert report.passed and report.checks, str(report)


@pytest.mark.parametrize("name, torch_name", [("mse", "mse_loss"), ("huber", "huber_loss")])
def test_regression_losses_match_pytorch(name, torch_name, rng):
    from losses import LOSSES
    from tests.torch_reference import torch_reference

    s, y = rng.standard_normal((7, 2)) * 2, rng.standard_normal((7, 2))
    loss = LOSSES.lookup(name)()
    value = loss.forward(s, y)

    def compute(torch):
        ts = torch.tensor(s, requires_grad=True)
        expected = getattr(torch.nn.functional, torch_name)(ts, torch.tensor(y))
        expected.backward()
        return {"loss": np.array(expected.item()), "ds": ts.grad.numpy()}

    theirs = torch_reference(f"regression_{name}", compute)
    assert value == pytest.approx(float(theirs["loss"]), rel=1e-12)
    np.testing.assert_allclose(loss.backward(), theirs["ds"], rtol=1e-12)


def test_float32_in_float32_out_and_integer_targets_are_compared_as_floats():
    loss = MSELoss()
    assert loss.forward(np.ones((3, 1), np.float32), np.array([1, 2, 3])) == pytest.approx(5 / 3)
    assert loss.backward().dtype == np.float32
    huber = HuberLoss()
    huber.forward(np.ones((2, 2), np.float32), np.zeros((2, 2)))
    assert huber.backward().dtype == np.float32


@pytest.mark.parametrize("scores, y, match", [
    (np.zeros((3, 2)), np.zeros(3), r"MSELoss\(\): expected targets of shape \(3, 2\) \(the scores'\), or \(3,\)"),
    (np.zeros((3, 1)), np.zeros(4), r"expected targets of shape \(3, 1\)"),
    (np.zeros((3, 1)), np.array(["a", "b", "c"]), r"MSELoss\(\): expected real-valued targets, got dtype <U1"),
    (np.zeros((3, 1), np.int64), np.zeros(3), r"MSELoss\(\): expected scores with a floating dtype"),
])
def test_bad_targets_name_the_loss_and_what_was_expected(scores, y, match):
    with pytest.raises((ValueError, TypeError), match=match):
        MSELoss().forward(scores, y)


@pytest.mark.parametrize("delta", [0, -1.0, "1", True, float("nan"), float("inf")])
def test_huber_delta_must_be_a_positive_finite_number(delta):
    with pytest.raises(ValueError, match="HuberLoss: delta must be a positive finite number"):
        HuberLoss(delta)


def test_r2_and_rmse_match_scikit_learn(rng):
    metrics = pytest.importorskip("sklearn.metrics")
    y, p = rng.standard_normal((20, 3)), rng.standard_normal((20, 3))
    assert r2_score(p, y) == pytest.approx(metrics.r2_score(y, p), rel=1e-12)
    assert r2_score(p[:, 0], y[:, 0]) == pytest.approx(metrics.r2_score(y[:, 0], p[:, 0]), rel=1e-12)
    assert rmse(p, y) == pytest.approx(np.sqrt(metrics.mean_squared_error(y, p)), rel=1e-12)
    constant = np.full(5, 2.0)
    assert r2_score(constant, constant) == 1.0 and r2_score(constant + 1, constant) == 0.0  # scikit-learn's rule


def linear_data(rng, n=400, outputs=None):
    X = rng.standard_normal((n, 3))
    w = np.array([1.5, -2.0, 0.5]) if outputs is None else rng.standard_normal((3, outputs))
    y = X @ w + 3.0 + 0.05 * rng.standard_normal(n if outputs is None else (n, outputs))
    cut = int(n * 0.75)
    return {"X_train": X[:cut], "y_train": y[:cut], "X_val": X[cut:], "y_val": y[cut:]}


@pytest.mark.parametrize("outputs", [None, 2])
def test_the_solver_fits_a_linear_target_and_reports_r2(outputs, rng):
    data = linear_data(rng, outputs=outputs)
    model = Sequential(Affine(3, 16, rng=rng), ReLU(), Affine(16, outputs or 1, rng=rng))
    from optim import Adam

    solver = Solver(model, data, loss="mse", optimizer=Adam(lr=1e-2), epochs=60, batch_size=32, verbose=False)
    metrics = solver.train()
    assert solver.task == Regression() and solver.task.score_name == "r2"
    assert set(metrics) >= {"best_val_r2", "train_r2", "train_rmse"} and "best_val_acc" not in metrics
    assert metrics["best_val_r2"] > 0.99 and metrics["train_rmse"] < 0.2
    predictions = solver.predict(solver.data["X_val"])  # the data as the Solver holds it: float32
    assert predictions.shape == data["y_val"].shape and predictions.dtype == np.float32
    assert r2_score(predictions, data["y_val"]) == pytest.approx(metrics["best_val_r2"], abs=1e-6)
    best = int(np.argmin(solver.val_loss_history))  # the epoch kept is the lowest validation loss's
    assert solver.best_val_score == solver.val_score_history[best] and solver.best_epoch == best + 1
    assert len(solver.val_extra_history["rmse"]) == 60


def test_the_solver_refuses_labels_it_cannot_use_for_regression(rng):
    data = linear_data(rng)
    model = Sequential(Affine(3, 2, rng=rng))
    with pytest.raises(ValueError, match=r"the model gives output of shape \(1, 2\) for one example of targets"):
        Solver(model, data, loss="mse", verbose=False)
    bad = {**data, "y_train": data["y_train"].astype(str)}
    with pytest.raises(ValueError, match="y_train must be real-valued targets for a regression loss"):
        Solver(Sequential(Affine(3, 1, rng=rng)), bad, loss="mse", verbose=False)
    nan = {**data, "y_val": np.where(np.arange(len(data["y_val"])) == 4, np.nan, data["y_val"])}
    with pytest.raises(ValueError, match="y_val has NaN or inf, first in row 4"):
        Solver(Sequential(Affine(3, 1, rng=rng)), nan, loss="mse", verbose=False)
    with pytest.raises(ValueError, match="y_train must be integer labels"):  # a classification loss says so too
        Solver(Sequential(Affine(3, 2, rng=rng)), data, loss="softmax", verbose=False)


def test_patience_counts_epochs_without_a_lower_validation_loss(rng):
    data = linear_data(rng, n=80)
    from optim import SGD

    # a step too small to change a float32 weight: the validation loss never gets lower after the first epoch
    solver = Solver(Sequential(Affine(3, 1, rng=rng)), data, loss="huber", optimizer=SGD(lr=1e-300), epochs=10,
                    patience=3, verbose=False)
    solver.train()
    assert solver.epoch == 4 and "no better validation loss for 3 epochs" in str(solver.stop_reason)


@pytest.mark.slow
def test_the_diabetes_example_trains_resumes_evaluates_predicts_and_exports(tmp_path, capsys):
    pytest.importorskip("sklearn")
    from chainrule.cli import main

    run = tmp_path / "run"
    config = ROOT / "examples" / "diabetes.toml"
    assert main(["train", str(config), "--set", f"output.dir='{run}'", "--set", "solver.epochs=60"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_r2"] > 0.4 and metrics["test_rmse"] < 60 and "test_acc" not in metrics
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith(f"best_val_r2 {metrics['best_val_r2']:.4f}")
    header = (run / "history.csv").read_text().splitlines()[0]
    assert header == "epoch,loss,val_loss,train_r2,val_r2,val_rmse,lr,seconds,clipped"
    assert main(["train", "--resume", str(run), "--set", "solver.epochs=65"]) == 0
    assert len((run / "history.csv").read_text().splitlines()) == 66

    assert main(["evaluate", str(run)]) == 0
    report = json.loads((run / "evaluation.json").read_text())
    assert report["r2"] == pytest.approx(json.loads((run / "metrics.json").read_text())["test_r2"], abs=1e-6)
    assert not (run / "confusion.png").exists() and "rmse" in capsys.readouterr().out

    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, scaled=False)
    np.savez(tmp_path / "new.npz", X=X[:4])
    out = tmp_path / "values.csv"
    assert main(["predict", str(run), str(tmp_path / "new.npz"), "--out", str(out)]) == 0
    with out.open(newline="") as f:
        rows = list(csv.reader(f))
    from chainrule import load_run

    model = load_run(run)
    assert rows[0] == ["index", "value"]
    np.testing.assert_array_equal(np.array([r[1] for r in rows[1:]], dtype=np.float32), model.predict(X[:4]))
    with pytest.raises(ValueError, match="trained with a regression loss .'mse'.; it predicts values"):
        model.predict_proba(X[:4])
    labelled = tmp_path / "labelled.csv"
    with labelled.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*(f"f{i}" for i in range(10)), "label"])
        writer.writerows([[*X[i], y[i]] for i in range(30)])
    assert main(["evaluate", str(run), "--data", str(labelled)]) == 0
    expected = r2_score(model.predict(X[:30]), y[:30])
    assert json.loads((run / "evaluation.json").read_text())["r2"] == pytest.approx(expected, abs=1e-9)
    unlabelled = tmp_path / "unlabelled.csv"
    unlabelled.write_text("".join(",".join(map(str, row)) + "\n" for row in X[:5]))
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(unlabelled)]) == 2
    assert "has no targets to evaluate against (a csv's column 'label'" in capsys.readouterr().err

    pytest.importorskip("onnxruntime")
    import onnxruntime

    model.to_onnx(tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    assert [o.name for o in session.get_outputs()] == ["predictions"]
    (values,) = session.run(None, {"input": X[:50].astype(np.float32)})
    np.testing.assert_allclose(values[:, 0], model.predict(X[:50]), rtol=1e-5)


def test_a_regression_sweep_measures_r2_unless_told_otherwise_and_refuses_accuracy(tmp_path, capsys):
    pytest.importorskip("sklearn")
    from chainrule.cli import main

    config = tmp_path / "sweep.toml"
    config.write_text((ROOT / "examples" / "diabetes.toml").read_text()
                      + "\n[sweep]\ntrials = 2\nmetric = 'best_val_acc'\n"
                      + "params = { 'optim.lr' = { choice = [0.01, 0.03] } }\n")
    assert main(["sweep", str(config), "--set", f"output.dir='{tmp_path / 's'}'"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        "sweep.metric 'best_val_acc' is not measured for a regression loss ('mse'); use one of 'best_val_r2', "
        "'test_r2', 'train_r2'")
    from chainrule.config import read_config
    from chainrule.sweeps.plan import make_plan

    raw = read_config(str(config))
    del raw["sweep"]["metric"]
    assert make_plan(raw, tmp_path, {}).metric == "best_val_r2"


def test_the_regression_report_against_scikit_learn_and_its_shape_rules(rng):
    metrics = pytest.importorskip("sklearn.metrics")
    task = Regression()

    def regression_report(y, p):
        return task.report(y, p, 1, "the targets")

    y, p = rng.standard_normal(30), rng.standard_normal(30)
    report = regression_report(y, p)
    assert report["r2"] == pytest.approx(metrics.r2_score(y, p), rel=1e-12)
    assert report["mae"] == pytest.approx(metrics.mean_absolute_error(y, p), rel=1e-12)
    assert report["examples"] == 30 and task.format_report(report).startswith(f"r2 {report['r2']:.4f}  rmse")
    assert regression_report(y[:, None], p) == report  # one target as a column is the same target
    with pytest.raises(ValueError, match=r"expected targets of shape \(30,\) \(one per prediction\), got .* \(30, 2\)"):
        regression_report(np.c_[y, y], p)
    with pytest.raises(ValueError, match="must be real numbers, not <U1"):
        regression_report(np.array(list("abc")), p[:3])


def test_targets_whose_squared_errors_overflow_are_refused_in_words():
    from layers import Affine
    from solver import Solver

    X = np.zeros((4, 3), np.float32)
    y = np.array([[1.0], [2.0], [3e20], [4.0]])
    with pytest.raises(ValueError, match=r"y_train has values up to 3e\+20, whose squared errors overflow float32"):
        Solver(Affine(3, 1), {"X_train": X, "y_train": y, "X_val": X, "y_val": y}, loss="mse")
