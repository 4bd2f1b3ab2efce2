"""The kinds of problem: what each task predicts, measures and prefers, checked on values worked by hand."""

import numpy as np
import pytest

from losses import LOSSES, Classification, Regression, Task
from losses.regression import RegressionLoss

SCORES = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0], [4.0, 0.0, 0.0]])


def test_classification_predicts_the_highest_score_and_measures_accuracy_leaving_ignored_rows_out():
    task = Classification()
    predictions = task.predict(SCORES)
    assert predictions.tolist() == [0, 1, 2, 0]
    y = np.array([0, 2, 2, -100])
    assert task.measures(predictions, y) == {"acc": 0.5}  # 0 right, 2 wrong, 2 right, -100 "wrong"
    assert task.measures(predictions, y, ignore=-100) == {"acc": 2 / 3}
    assert task.score(predictions, np.full(4, -100), ignore=-100) == 0.0  # nothing counted: no division by 0


def test_regression_predicts_values_shaped_as_the_targets_and_measures_r2_and_rmse():
    task = Regression()
    outputs = np.array([[1.0], [2.0], [4.0]])
    assert task.predict(outputs).shape == (3,) and task.predict(outputs, (3, 1)).shape == (3, 1)
    y = np.array([1.0, 3.0, 5.0])  # errors 0, -1, -1: SSE 2, SST 8, R² 0.75, RMSE sqrt(2/3)
    measures = task.measures(task.predict(outputs), y)
    assert list(measures) == ["r2", "rmse"]
    assert measures["r2"] == pytest.approx(0.75) and measures["rmse"] == pytest.approx(np.sqrt(2 / 3))


def test_the_best_epoch_is_the_highest_accuracy_or_the_lowest_validation_loss():
    assert Classification().improved(loss=9.0, score=0.6, best_loss=1.0, best_score=0.5)
    assert not Classification().improved(loss=0.1, score=0.5, best_loss=1.0, best_score=0.5)
    assert Regression().improved(loss=0.9, score=-3.0, best_loss=1.0, best_score=0.9)
    assert not Regression().improved(loss=1.0, score=0.99, best_loss=1.0, best_score=0.9)


def test_each_loss_carries_its_task_and_metric_names_say_what_they_hold():
    for name, cls in LOSSES.items():
        expected = Regression() if issubclass(cls, RegressionLoss) else Classification()
        assert cls.task == expected, name
    assert Classification().metric_names == ("best_val_acc", "test_acc", "train_acc")
    assert Regression().metric_names == ("best_val_r2", "test_r2", "train_r2")
    assert {type(t) for t in (Classification(), Regression())} == set(Task.__subclasses__())


def test_targets_are_checked_and_converted_by_the_task():
    with pytest.raises(ValueError, match=r"y must be integer labels, .* got float64 of shape \(3,\); for real-valued "
                                         r"targets use a regression loss"):
        Classification().check_targets(np.zeros(3), "y", np.dtype(np.float32))
    y = Regression().check_targets(np.array([1, 2, 3]), "y", np.dtype(np.float32))
    assert y.dtype == np.float32 and y.tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="y has values beyond float32 .*, first in row 1"):
        Regression().check_targets(np.array([1.0, 1e39]), "y", np.dtype(np.float32))
    with pytest.raises(ValueError, match="y has NaN or inf, first in row 0"):
        Regression().check_targets(np.array([np.nan, 1.0]), "y", np.dtype(np.float64))
    with pytest.raises(ValueError, match=r"y has labels in \[0, 3\], but the model gives 3 scores"):
        Classification().check_range(np.array([0, 3]), "y", 3)


def test_labels_from_text_are_class_numbers_or_a_training_sets_names_in_sorted_order():
    task = Classification()
    assert task.targets_from_text(["2", "0", "1.0"], "f").tolist() == [2, 0, 1]
    assert task.targets_from_text(["cat", "ant", "cat"], "f", names=True).tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match=r"f has labels that are not class numbers \('cat', '1.5'\)"):
        task.targets_from_text(["cat", "1.5", "2"], "f")
    assert Regression().targets_from_text(["1.5", "-2"], "f").tolist() == [1.5, -2.0]
    with pytest.raises(ValueError, match=r"f has targets that are not finite numbers \('nan'\)"):
        Regression().targets_from_text(["nan", "1"], "f")


def test_the_prediction_tables_and_the_heads_export_writes():
    header, rows = Classification().prediction_table(np.array([[0.0, np.log(3.0)]]))
    assert header == ["index", "label", "p0", "p1"] and rows == [[0, 1, "0.25", "0.75"]]
    header, rows = Regression().prediction_table(np.array([[0.5], [1.25]], dtype=np.float32))
    assert header == ["index", "value"] and rows == [[0, "0.5"], [1, "1.25"]]
    assert list(Classification().heads(SCORES)) == list(Classification().head_names) == ["scores", "probabilities"]
    assert list(Regression().heads(SCORES)) == ["predictions"]
