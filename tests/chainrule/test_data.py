"""Data sources: files written here in each format, splits, standardization, and the digits target."""

import gzip
import json
import struct

import numpy as np
import pytest

from chainrule import data as datasets
from chainrule.cli import solver_main as main
from losses import Classification
from tests.subprocess_runs import ROOT

CLASSES = Classification()


def cfg(**kw):
    base = {"source": "spiral", "seed": 0, "val_fraction": 0.2, "test_fraction": 0.2, "standardize": False,
            "samples": 50, "classes": 3, "noise": 0.2, "label_column": "label", "delimiter": ","}
    return {**base, **kw}


def test_spiral_is_seeded_and_split_without_overlap(tmp_path):
    a, b = datasets.load(cfg(), tmp_path, CLASSES), datasets.load(cfg(), tmp_path, CLASSES)
    np.testing.assert_array_equal(a["X_train"], b["X_train"])
    assert [len(a[k]) for k in ("X_train", "X_val", "X_test")] == [90, 30, 30]
    rows = {tuple(r) for k in ("X_train", "X_val", "X_test") for r in a[k]}
    assert len(rows) == 148  # every row once; the three arms share their first point, the origin
    assert not np.array_equal(datasets.load(cfg(seed=1), tmp_path, CLASSES)["X_train"], a["X_train"])


def test_npz_with_and_without_validation_arrays(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 4)), rng.integers(0, 3, 50)
    np.savez(tmp_path / "d.npz", X_train=X, y_train=y)
    data = datasets.load(cfg(source="npz", path="d.npz", val_fraction=0.2), tmp_path, CLASSES)
    assert len(data["X_train"]) == 40 and len(data["X_val"]) == 10 and "X_test" not in data
    np.savez(tmp_path / "e.npz", X_train=X, y_train=y, X_val=X[:5], y_val=y[:5], X_test=X[:3], y_test=y[:3])
    data = datasets.load(cfg(source="npz", path="e.npz"), tmp_path, CLASSES)
    assert [len(data[k]) for k in ("X_train", "X_val", "X_test")] == [50, 5, 3]
    np.savez(tmp_path / "f.npz", X=X)
    with pytest.raises(ValueError, match="has no array 'X_train'"):
        datasets.load(cfg(source="npz", path="f.npz"), tmp_path, CLASSES)


def test_npz_with_object_arrays_is_refused(tmp_path):
    np.savez(tmp_path / "o.npz", X_train=np.array([{"a": 1}], dtype=object), y_train=np.zeros(1, int))
    with pytest.raises(ValueError, match="pickle"):
        datasets.load(cfg(source="npz", path="o.npz"), tmp_path, CLASSES)


def test_csv_by_column_name_with_string_labels(tmp_path):
    lines = ["f1,species,f2"] + [f"{i},{'ab'[i % 2]},{-i}" for i in range(20)]
    (tmp_path / "d.csv").write_text("\n".join(lines))
    X, y = datasets.load_csv(str(tmp_path / "d.csv"), "species", CLASSES, names=True)
    assert X.shape == (20, 2) and list(y[:4]) == [0, 1, 0, 1]
    np.testing.assert_array_equal(X[3], [3.0, -3.0])
    with pytest.raises(ValueError, match="data.label_column: no column 'label'.*columns: f1, species, f2"):
        datasets.load_csv(str(tmp_path / "d.csv"), "label", CLASSES, names=True)


def write_idx(path, array, gz=False):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def test_mnist_idx_folder(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (20, 4, 4)))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(20) % 10)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.full((5, 4, 4), 255), gz=True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(5), gz=True)
    data = datasets.load(cfg(source="mnist-idx", path=".", val_fraction=0.25), tmp_path, CLASSES)
    assert data["X_train"].shape == (15, 1, 4, 4) and data["X_val"].shape == (5, 1, 4, 4)
    np.testing.assert_array_equal(data["X_test"], 1.0)
    np.testing.assert_array_equal(data["y_test"], np.arange(5))


def test_cifar10_binary_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for name, n in (("data_batch_1.bin", 6), ("data_batch_2.bin", 4), ("test_batch.bin", 3)):
        records = np.zeros((n, 3073), np.uint8)
        records[:, 0] = np.arange(n) % 10
        records[:, 1:] = 51
        records.tofile(folder / name)
    data = datasets.load(cfg(source="cifar10-bin", path=".", val_fraction=0.2), tmp_path, CLASSES)
    assert data["X_train"].shape == (8, 3, 32, 32) and len(data["X_val"]) == 2 and len(data["X_test"]) == 3
    np.testing.assert_allclose(data["X_test"], 0.2)
    (folder / "data_batch_1.bin").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="is not a CIFAR-10 binary batch"):
        datasets.load(cfg(source="cifar10-bin", path="."), tmp_path, CLASSES)


def test_standardize_uses_training_statistics_only():
    data = {"X_train": np.array([[0.0, 5.0], [2.0, 5.0]]), "y_train": np.array([0, 1]),
            "X_val": np.array([[4.0, 6.0]]), "y_val": np.array([0])}
    out = datasets.standardize(data)
    np.testing.assert_allclose(out["X_train"], [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(out["X_val"], [[3.0, 1.0]])  # constant feature: divided by 1


@pytest.mark.slow
def test_digits_example_reaches_97_percent_test_accuracy(tmp_path, capsys):
    pytest.importorskip("sklearn")

    example = ROOT / "examples" / "digits.toml"
    code = main([str(example), "--set", f"output.dir='{tmp_path}'", "--set", "solver.verbose=false",
                 "--set", "output.plot=false"])
    assert code == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_acc"] >= 0.97


@pytest.mark.parametrize("test_split, words", [
    ({"X_test": np.zeros((5, 4)), "y_test": np.zeros(5, np.int64)}, "X_test has examples of shape (4,) but "
                                                                    "X_train's are (3,)"),
    ({"X_test": np.zeros((5, 3)), "y_test": np.zeros((5, 2), np.int64)}, "y_test has examples of shape (2,) but "
                                                                         "y_train's are ()"),
])
def test_a_split_unlike_the_training_set_is_refused_before_the_first_epoch(tmp_path, capsys, test_split, words):
    from chainrule.cli import main

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X_train=rng.standard_normal((30, 3)), y_train=rng.integers(0, 2, 30), **test_split)
    (tmp_path / "c.toml").write_text('[data]\nsource = "npz"\npath = "d.npz"\n'
                                     '[model]\nlayers = [{ type = "Affine" }]\n')
    assert main(["train", str(tmp_path / "c.toml"), "--set", f"output.dir='{tmp_path / 'r'}'"]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()  # nothing trained, nothing half-written


def test_csv_class_names_are_the_runs_classes_in_predictions_and_evaluations(tmp_path, capsys):
    import csv

    from chainrule.cli import main as chainrule
    from chainrule.trained.model import load_run

    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 2))
    species = np.array(["setosa", "virginica", "versicolor"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    rows = [["a", "b", "species"]] + [[f"{a:.4f}", f"{b:.4f}", s] for (a, b), s in zip(X, species, strict=True)]
    with open(tmp_path / "d.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    (tmp_path / "c.toml").write_text('[data]\nsource = "csv"\npath = "d.csv"\nlabel_column = "species"\n'
                                     '[model]\nlayers = [{ type = "Affine", out_features = 16 }, { type = "ReLU" }, '
                                     '{ type = "Affine" }]\n[solver]\nepochs = 5\nverbose = false\n')
    assert chainrule(["train", str(tmp_path / "c.toml"), "--set", f"output.dir='{tmp_path / 'r'}'"]) == 0
    model = load_run(tmp_path / "r")
    assert model.class_names == ["setosa", "versicolor", "virginica"]  # kept with the run, sorted
    np.savez(tmp_path / "new.npz", X=X[:4])
    assert chainrule(["predict", str(tmp_path / "r"), str(tmp_path / "new.npz")]) == 0
    with open(tmp_path / "r" / "predictions.csv", newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == ["index", "label", "p_setosa", "p_versicolor", "p_virginica"]
    expected = [model.class_names[i] for i in model.predict(X[:4])]
    assert [row[1] for row in table[1:]] == expected
    (tmp_path / "few.csv").write_text("a,b,label\n" + "\n".join(f"{a},{b},{s}" for (a, b), s in
                                                                 zip(X[:6], species[:6], strict=True)) + "\n")
    capsys.readouterr()
    assert chainrule(["evaluate", str(tmp_path / "r"), "--data", str(tmp_path / "few.csv")]) == 0
    out = capsys.readouterr().out
    assert "setosa" in out and "virginica" in out  # the per-class rows by name
    (tmp_path / "odd.csv").write_text("a,b,label\n0.1,0.2,daisy\n")
    assert chainrule(["evaluate", str(tmp_path / "r"), "--data", str(tmp_path / "odd.csv")]) == 2
    assert "labels 'daisy' are not among the run's classes ('setosa', 'versicolor', 'virginica')" in \
        capsys.readouterr().err
