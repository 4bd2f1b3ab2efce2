"""What training fills in is saved with the run: a model whose sizes came from the data (an Embedding's
vocabulary, the read-out's classes) is rebuilt from the run's own config, so predict, evaluate, export and
sample work on every run that trained."""

import importlib.util

import numpy as np
import pytest

from chainrule import runs
from chainrule.cli import main
from chainrule.config import read_config

pytestmark = pytest.mark.slow

TAGGER = """
[data]
source = "{source}"
path = "{path}"
seq_len = 8
val_fraction = 0.25
test_fraction = 0.0
[model]
layers = [{{ type = "Embedding", embedding_dim = 4 }}, {{ type = "LSTM", hidden_size = 6, return_sequences = {steps} }},
          {{ type = "{head}" }}]
[solver]
epochs = 2
batch_size = 8
verbose = false
[output]
plot = false
"""


def tagger(tmp_path):
    """20 words, 3 tags (a label per step); the largest word and the largest tag only in the validation rows."""
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 15, (40, 6)), rng.integers(0, 2, (40, 6))
    X[35, 2], y[36, 1] = 19, 2
    np.savez(tmp_path / "tags.npz", X_train=X[:30], y_train=y[:30], X_val=X[30:], y_val=y[30:])
    return TAGGER.format(source="npz", path=tmp_path / "tags.npz", steps="true", head="TemporalAffine")


def classifier(tmp_path):
    """20 words, 2 classes (a label per sequence), word 19 only in validation."""
    rng = np.random.default_rng(1)
    X = rng.integers(0, 12, (40, 5))
    X[38, 0] = 19
    y = (X.sum(axis=1) > 27).astype(np.int64)
    np.savez(tmp_path / "seqs.npz", X_train=X[:30], y_train=y[:30], X_val=X[30:], y_val=y[30:])
    return TAGGER.format(source="npz", path=tmp_path / "seqs.npz", steps="false", head="Affine")


def bom_text(tmp_path):
    (tmp_path / "t.txt").write_text("\ufeff" + "the chain rule multiplies local gradients. " * 6, encoding="utf-8")
    return TAGGER.format(source="text", path=tmp_path / "t.txt", steps="true", head="TemporalAffine")


def unique_last(tmp_path):
    (tmp_path / "t.txt").write_text("~" + "backward passes go in reverse order. " * 6, encoding="utf-8")
    return TAGGER.format(source="text", path=tmp_path / "t.txt", steps="true", head="TemporalAffine")


@pytest.mark.parametrize("make", [tagger, classifier, bom_text, unique_last])
def test_a_model_sized_by_its_data_predicts_evaluates_exports_and_samples(make, tmp_path, capsys):
    (tmp_path / "c.toml").write_text(make(tmp_path))
    run = runs.setup(tmp_path / "c.toml", [f"output.dir='{tmp_path / 'r'}'"])
    assert runs.train(run) == 0
    layers = read_config(str(tmp_path / "r" / "config.toml"))["model"]["layers"]
    embedding = run.solver.model.layers[0].params["W"].shape
    assert layers[0]["num_embeddings"] == embedding[0]  # written down, not guessed again when loading
    X = run.solver.data["X_val"]
    np.savez(tmp_path / "in.npz", X=X)
    assert main(["predict", str(tmp_path / "r"), str(tmp_path / "in.npz")]) == 0
    assert main(["evaluate", str(tmp_path / "r")]) == 0
    if importlib.util.find_spec("onnxruntime") is not None:
        assert main(["export", str(tmp_path / "r")]) == 0
    if "text" in make.__name__:
        assert main(["sample", str(tmp_path / "r"), "--length", "5"]) == 0
    assert "error" not in capsys.readouterr().err


def test_labels_that_are_all_ignored_are_refused_before_training():
    from layers import Affine
    from losses import SoftmaxCrossEntropy
    from solver import Solver

    X = np.zeros((4, 3), np.float32)
    data = {"X_train": X, "y_train": np.full(4, -1), "X_val": X, "y_val": np.array([0, 1, -1, 0])}
    with pytest.raises(ValueError, match=r"every label of y_train is ignore_index \(-1\): nothing to learn from"):
        Solver(Affine(3, 2), data, loss=SoftmaxCrossEntropy(ignore_index=-1))


def test_resuming_with_the_config_file_still_matches_the_filled_in_run(tmp_path):
    (tmp_path / "c.toml").write_text(tagger(tmp_path))
    run = runs.setup(tmp_path / "c.toml", [f"output.dir='{tmp_path / 'r'}'"])
    assert runs.train(run) == 0
    resumed = runs.setup(tmp_path / "c.toml", ["solver.epochs=3"], resume=tmp_path / "r")
    assert runs.train(resumed) == 0 and resumed.solver.epoch == 3
