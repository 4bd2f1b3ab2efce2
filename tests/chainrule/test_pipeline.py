"""The data pipeline: per-batch augmentation of training batches only (values by hand, a SIGKILLed augmented
run resumed bit for bit), on_batch_end, prefetching that changes nothing, and the memory-mapped npy source."""

import numpy as np
import pytest

from chainrule.augment import augmenter, hflip, noise, pad_crop
from chainrule.config import ConfigError
from layers import Affine, Flatten, Sequential
from solver import Solver

RNG = np.random.default_rng(0)


def test_pad_crop_shifts_each_example_by_its_drawn_offset_filling_with_zeros():
    x = np.arange(2 * 1 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3) + 1
    offsets = np.random.default_rng(0).integers(0, 3, size=(2, 2))  # what pad_crop draws first
    out = pad_crop(x, 1, np.random.default_rng(0))
    padded = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)])
    for n, (dy, dx) in enumerate(offsets):
        np.testing.assert_array_equal(out[n, 0], padded[n, 0, dy:dy + 3, dx:dx + 3])
    signal = np.arange(1, 9, dtype=np.float32).reshape(2, 4)
    shifted = pad_crop(signal, 2, np.random.default_rng(5))
    for n, (o,) in enumerate(np.random.default_rng(5).integers(0, 5, size=(2, 1))):
        np.testing.assert_array_equal(shifted[n], np.pad(signal[n], 2)[o:o + 4])
    assert out.dtype == np.float32 and pad_crop(x, 0, RNG).tolist() == x.tolist()


def test_hflip_reverses_the_last_axis_of_the_drawn_half_and_noise_has_its_std():
    x = RNG.standard_normal((400, 1, 2, 3)).astype(np.float32)
    flipped = hflip(x, np.random.default_rng(1))
    chosen = np.random.default_rng(1).random(400) < 0.5
    np.testing.assert_array_equal(flipped[chosen], x[chosen][..., ::-1])
    np.testing.assert_array_equal(flipped[~chosen], x[~chosen])
    assert 150 < chosen.sum() < 250
    noisy = noise(np.zeros((1000, 50), np.float32), 0.3, np.random.default_rng(2))
    assert noisy.dtype == np.float32 and abs(noisy.std() - 0.3) < 0.01


@pytest.mark.parametrize("settings, words", [
    ({"pad_crop": -1}, "pad_crop and noise must be >= 0"), ({"hflip": "yes"}, "data.augment.hflip: expected a "
                                                                               "boolean"),
    ({"rotate": 10}, "unknown key data.augment.rotate; allowed: pad_crop, hflip, noise"),
    ({"noise": 1e400}, "expected a finite number"), ({"pad_crop": 1.5}, "expected an integer"),
])
def test_bad_augment_settings_are_config_errors(settings, words):
    with pytest.raises(ConfigError, match=words):
        augmenter(settings)
    assert augmenter({}) is None and augmenter({"pad_crop": 0, "hflip": False}) is None


def data(n=60):
    X = np.random.default_rng(1).standard_normal((n, 1, 4, 4)).astype(np.float32)
    y = (X.mean(axis=(1, 2, 3)) > 0).astype(np.int64)
    return {"X_train": X[:40], "y_train": y[:40], "X_val": X[40:], "y_val": y[40:]}


def model():
    return Sequential(Flatten(), Affine(16, 2, rng=np.random.default_rng(0)))


def test_augment_sees_training_batches_only_and_on_batch_end_every_step():
    seen, losses = [], []

    def augment(x, y, rng):
        seen.append(len(x))
        return x + rng.standard_normal(x.shape, dtype=x.dtype), y

    solver = Solver(model(), data(), optimizer="sgd", batch_size=16, epochs=2, verbose=False, augment=augment)
    solver.train(on_batch_end=lambda s, loss: losses.append((s.epoch, loss)))
    assert seen == [16, 16, 8] * 2  # never a validation batch, nor the training set measured at epoch end
    assert losses == [(e, loss) for e, loss in zip([0, 0, 0, 1, 1, 1], solver.loss_history, strict=True)]
    plain = Solver(model(), data(), optimizer="sgd", batch_size=16, epochs=2, verbose=False)
    plain.train()
    assert plain.loss_history != solver.loss_history
    assert plain.val_loss_history != solver.val_loss_history


def test_prefetching_gives_the_same_run_bit_for_bit():
    def augment(x, y, rng):
        return pad_crop(x, 1, rng), y

    runs = []
    for prefetch in (False, True):
        solver = Solver(model(), data(), optimizer="adam", batch_size=8, epochs=3, verbose=False, augment=augment,
                        prefetch=prefetch)
        solver.train()
        runs.append((solver.loss_history, solver.model.params["1.W"].copy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


@pytest.mark.parametrize("augment, words", [
    (lambda x, y, rng: x, "augment must return a pair"),
    (lambda x, y, rng: (x.astype(np.float64), y), "16 rows of float32 into 16 rows of float64"),
    (lambda x, y, rng: (x[:3], y[:3]), "into 3 rows"),
])
def test_an_augment_that_breaks_the_batch_is_named(augment, words):
    solver = Solver(model(), data(), batch_size=16, epochs=1, verbose=False, augment=augment)
    with pytest.raises((TypeError, ValueError), match=words):
        solver.train()
    with pytest.raises(TypeError, match="augment must be a function"):
        Solver(model(), data(), augment="pad_crop")


AUGMENTED = """
[data]
source = "npz"
path = "images.npz"
[data.augment]
pad_crop = 1
hflip = true
noise = 0.1
[model]
imports = ["slowlayer"]
layers = [{ type = "Conv2D", out_channels = 4, kernel_size = 3, padding = 1 }, { type = "ReLU" },
          { type = "SlowIdentity" }, { type = "MaxPool2D", kernel_size = 2 }, { type = "Affine", out_features = 3 }]
[optim]
type = "adam"
lr = 0.01
[solver]
epochs = 10
batch_size = 20
verbose = false
prefetch = true
[output]
plot = false
checkpoint_seconds = 0.0
"""


@pytest.mark.slow
def test_an_augmented_run_killed_with_sigkill_resumes_bit_for_bit(tmp_path):
    from tests.subprocess_runs import assert_same_checkpoint_arrays, run_killed_and_resumed

    X = RNG.standard_normal((120, 2, 6, 6))
    y = (X[:, 0, :3].mean(axis=(1, 2)) > 0).astype(np.int64) + (X[:, 1, 3:].mean(axis=(1, 2)) > 0)
    np.savez(tmp_path / "images.npz", X_train=X[:90], y_train=y[:90], X_test=X[90:], y_test=y[90:])
    (tmp_path / "aug.toml").write_text(AUGMENTED)
    full, killed = run_killed_and_resumed(tmp_path / "aug.toml", tmp_path, epochs=10)
    assert "param/0.W" in assert_same_checkpoint_arrays(full, killed)
    assert (full / "history.csv").read_text() .splitlines()[1:] != []
    steps = [(p / "steps.csv").read_text().splitlines() for p in (full, killed)]
    assert [line.split(",")[:3] for line in steps[0]] == [line.split(",")[:3] for line in steps[1]]


def write_folder(folder, X, y, **more):
    folder.mkdir()
    np.save(folder / "X_train.npy", X)
    np.save(folder / "y_train.npy", y)
    for name, value in more.items():
        np.save(folder / f"{name}.npy", value)
    return folder


def test_the_npy_source_maps_the_inputs_and_validates_on_the_last_rows(tmp_path):
    from chainrule import data as datasets
    from losses import Classification

    X = RNG.standard_normal((50, 3)).astype(np.float32)
    y = np.arange(50) % 2
    cfg = {"source": "npy", "path": str(write_folder(tmp_path / "d", X, y)), "seed": 0, "val_fraction": 0.2,
           "test_fraction": 0.0}
    loaded = datasets.load(cfg, tmp_path, Classification())
    assert isinstance(loaded["X_train"].base, np.memmap) or isinstance(loaded["X_train"], np.memmap)
    np.testing.assert_array_equal(loaded["X_train"], X[:40])
    np.testing.assert_array_equal(loaded["X_val"], X[40:])
    np.testing.assert_array_equal(loaded["y_val"], y[40:])
    stats = datasets.standardization(loaded["X_train"])
    np.testing.assert_allclose(stats["mean"], X[:40].mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(stats["std"], X[:40].std(0), rtol=1e-5)
    standardized = datasets.standardize(loaded, stats)
    np.testing.assert_allclose(standardized["X_val"], (X[40:] - stats["mean"]) / stats["std"], rtol=1e-6)
    assert standardized["X_val"].dtype == np.float32


def test_streamed_statistics_equal_numpys_over_many_chunks(monkeypatch):
    from chainrule import mapped

    X = RNG.standard_normal((1000, 3, 5)) * 3 + 7
    monkeypatch.setattr(mapped, "CHUNK_BYTES", 8 * 15 * 7)  # 7 rows a chunk: 143 merges
    for axes in ((0,), (0, 2)):
        mean, std = mapped.mean_and_std(X, axes)
        np.testing.assert_allclose(mean, X.mean(axis=axes, keepdims=True), rtol=1e-13)
        np.testing.assert_allclose(std, X.std(axis=axes, keepdims=True), rtol=1e-12)
    X[555, 1, 2] = np.nan
    assert mapped.first_bad_row(X) == 555


@pytest.mark.parametrize("files, words", [
    ({}, "has no X_train.npy or y_train.npy"),
    ({"X_train": np.zeros((4, 2)), "y_train": np.zeros(4, np.int64), "X_val": np.zeros((2, 2))},
     "has no y_val.npy (X and y of a split come together)"),
    ({"X_train": np.array([{}], dtype=object), "y_train": np.zeros(1, np.int64)}, "never loaded"),
])
def test_a_bad_npy_folder_is_named(tmp_path, files, words):
    from chainrule.mapped import load_npy_folder

    folder = tmp_path / "d"
    folder.mkdir()
    for name, value in files.items():
        np.save(folder / f"{name}.npy", value)
    with pytest.raises(ValueError) as e:
        load_npy_folder(str(folder))
    assert words in str(e.value)
    with pytest.raises(ValueError, match="is not a folder"):
        load_npy_folder(str(tmp_path / "missing"))


def test_released_pages_read_back_and_a_copy_on_write_map_keeps_its_changes(tmp_path):
    from optim.batches import batches, release_pages

    X = np.arange(4000, dtype=np.float32).reshape(1000, 4)
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    order = np.random.default_rng(0).permutation(1000)
    gathered = np.concatenate([x for x, _ in batches(np.asarray(mapped), np.zeros(1000), order, 64)])
    np.testing.assert_array_equal(gathered, X[order])  # read again after each release, through a plain view too
    release_pages(mapped[10:20])
    np.testing.assert_array_equal(mapped, X)
    changed = np.load(tmp_path / "X.npy", mmap_mode="c")
    changed[0] = -1
    release_pages(changed)  # a private (copy-on-write) map is writeable: left alone
    assert changed[0].tolist() == [-1, -1, -1, -1]
    release_pages(X)  # an array in memory: nothing to release
