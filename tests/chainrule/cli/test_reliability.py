"""Bad input of every kind is a clean error: exit status 2, one line naming the key or file, no traceback,
nothing written or changed on disk. Generated configs, data files and damaged checkpoints, plus the cases
found by hand; concurrent runs on one output folder."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from hypothesis import example, given
from hypothesis import strategies as st

from chainrule.config import SCHEMA
from tests.chainrule.reliability import (
    BASE,
    SETTINGS,
    assert_clean_error,
    files_under,
    fresh,
    npz_bytes,
    run,
    write_config,
)
from tests.subprocess_runs import ROOT, USER_ENV

OF_TYPE = {int: st.integers(-5, 5), float: st.floats(-5, 5), bool: st.booleans(), str: st.text(max_size=5),
           list: st.lists(st.integers(), max_size=2)}
NOT_FINITE = st.sampled_from([float("nan"), float("inf"), -float("inf")])


def wrong_values(types: tuple[type, ...]):
    """Values no key of ``types`` accepts: other types (an int is a valid float, a bool is not an int) and,
    for numbers, NaN and infinities."""
    other = [OF_TYPE[t] for t in OF_TYPE if t not in types and not (t is int and float in types)]
    return st.one_of(*other, NOT_FINITE) if float in types else st.one_of(*other)


KEYS = [(s, k, types) for s, spec in SCHEMA.items() for k, (types, _) in spec.items() if s not in ("schedule",)]


@st.composite
def bad_key(draw):
    section, key, types = draw(st.sampled_from(KEYS))
    return section, key, draw(wrong_values(types))


@SETTINGS
@given(case=bad_key())
def test_generated_wrong_types_for_every_schema_key(case, tmp_path):
    section, key, value = case
    folder = fresh(tmp_path)
    cfg = json.loads(json.dumps(BASE))
    cfg.setdefault(section, {})[key] = value
    sets = [] if (section, key) == ("output", "dir") else ["--set", f"output.dir='{folder / 'out'}'"]
    cwd = os.getcwd()
    os.chdir(folder)  # a default output folder would go here
    try:
        code, err = run(write_config(folder, cfg), *sets)
    finally:
        os.chdir(cwd)
    assert_clean_error(code, err, f"{section}.{key}")
    assert list(files_under(folder)) == ["cfg.toml"]  # nothing written


LAYER_KWARGS = [("Affine", "out_features", int), ("Affine", "init", str), ("Affine", "scale", float),
                ("Dropout", "p", float), ("BatchNorm", "momentum", float), ("BatchNorm", "eps", float),
                ("LeakyReLU", "negative_slope", float), ("ELU", "alpha", float), ("Maxout", "pieces", int)]
OPTIM_KWARGS = [("sgd", "lr", float), ("sgd", "momentum", float), ("sgd", "nesterov", bool), ("adam", "lr", float),
                ("adam", "beta1", float), ("rmsprop", "decay_rate", float)]


@st.composite
def bad_kwarg(draw):
    where = draw(st.sampled_from(["layer", "optim"]))
    name, key, kind = draw(st.sampled_from(LAYER_KWARGS if where == "layer" else OPTIM_KWARGS))
    return where, name, key, draw(wrong_values((kind,)))


@SETTINGS
@given(case=bad_kwarg())
def test_generated_wrong_keyword_arguments_of_registered_classes(case, tmp_path):
    where, name, key, value = case
    folder = fresh(tmp_path)
    cfg = json.loads(json.dumps(BASE))
    if where == "layer":
        cfg["model"]["layers"].insert(1, {"type": name, key: value})
        path = f"model.layers[1].{key}"
    else:
        cfg["optim"] = {"type": name, key: value}
        path = f"optim.{key}"
    code, err = run(write_config(folder, cfg), "--set", f"output.dir='{folder / 'out'}'")
    assert_clean_error(code, err, path)
    assert list(files_under(folder)) == ["cfg.toml"]




GOOD_X, GOOD_Y = np.random.default_rng(0).standard_normal((30, 2)), np.arange(30) % 3
BAD_NPZ = {
    "nan": npz_bytes(X_train=np.where(np.arange(60).reshape(30, 2) == 17, np.nan, GOOD_X), y_train=GOOD_Y),
    "inf": npz_bytes(X_train=np.where(np.arange(60).reshape(30, 2) == 40, np.inf, GOOD_X), y_train=GOOD_Y),
    "complex": npz_bytes(X_train=GOOD_X + 1j, y_train=GOOD_Y),
    "object": npz_bytes(X_train=np.array([GOOD_X, "x"], dtype=object), y_train=GOOD_Y),
    "lengths": npz_bytes(X_train=GOOD_X, y_train=GOOD_Y[:20]),
    "string labels": npz_bytes(X_train=GOOD_X, y_train=np.array(["a", "b", "c"] * 10)),
    "float labels": npz_bytes(X_train=GOOD_X, y_train=GOOD_Y.astype(float)),
    "missing y": npz_bytes(X_train=GOOD_X),
    "empty": b"",
    "not npz": b"hello, this is text",
    "huge": npz_bytes(X_train=GOOD_X * 1e39, y_train=GOOD_Y),
}


@st.composite
def damaged_npz(draw):
    kind = draw(st.sampled_from([*BAD_NPZ, "truncated", "flipped"]))
    if kind in BAD_NPZ:
        return kind, BAD_NPZ[kind]
    good = npz_bytes(X_train=GOOD_X, y_train=GOOD_Y)
    cut = draw(st.integers(1, len(good) - 1))
    if kind == "truncated":
        return kind, good[:cut]
    flipped = bytearray(good)
    flipped[cut] ^= 0xFF
    return kind, bytes(flipped)


@SETTINGS
@given(case=damaged_npz())
def test_generated_bad_npz_data_files(case, tmp_path):
    kind, content = case
    folder = fresh(tmp_path)
    (folder / "d.npz").write_bytes(content)
    cfg = json.loads(json.dumps(BASE))
    cfg["data"] = {"source": "npz", "path": "d.npz"}
    code, err = run(write_config(folder, cfg), "--set", f"output.dir='{folder / 'out'}'")
    if code == 0:  # a flipped byte the zip format does not check (inside an array's values) can still load
        assert kind == "flipped"
        return
    assert_clean_error(code, err, "d.npz" if kind != "huge" else "X_train")
    assert not (folder / "out").exists()


BAD_CSV = {"short row": "a,b,label\n1,2,0\n3,1\n", "text value": "a,b,label\n1,x,0\n2,3,1\n",
           "header only": "a,b,label\n", "no label column": "a,b\n1,2\n", "nan": "a,b,label\n1,nan,0\n2,3,1\n"}


@pytest.mark.parametrize("kind", BAD_CSV)
def test_bad_csv_files(kind, tmp_path):
    (tmp_path / "d.csv").write_text(BAD_CSV[kind])
    cfg = json.loads(json.dumps(BASE))
    cfg["data"] = {"source": "csv", "path": "d.csv"}
    cfg["model"]["layers"][-1]["out_features"] = 2
    code, err = run(write_config(tmp_path, cfg), "--set", f"output.dir='{tmp_path / 'out'}'")
    assert_clean_error(code, err, "d.csv")


def test_a_csv_blank_line_is_skipped(tmp_path):
    rows = [f"{i % 5},{i % 3},{i % 2}" for i in range(30)]
    (tmp_path / "d.csv").write_text("\n".join(["a,b,label", *rows[:10], "", *rows[10:]]) + "\n")
    cfg = json.loads(json.dumps(BASE))
    cfg["data"] = {"source": "csv", "path": "d.csv"}
    cfg["model"]["layers"][-1]["out_features"] = 2
    assert run(write_config(tmp_path, cfg), "--set", f"output.dir='{tmp_path / 'out'}'")[0] == 0


def idx(array: np.ndarray, magic: int = 0x08) -> bytes:
    header = bytes([0, 0, magic, array.ndim]) + np.array(array.shape, dtype=">i4").tobytes()
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("kind", ["label count", "magic", "corrupt gz", "size"])
def test_bad_mnist_idx_folders(kind, tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    files = {"train-images-idx3-ubyte": idx(np.zeros((10, 2, 2))), "train-labels-idx1-ubyte": idx(np.arange(10) % 3),
             "t10k-images-idx3-ubyte": idx(np.zeros((4, 2, 2))), "t10k-labels-idx1-ubyte": idx(np.arange(4) % 3)}
    if kind == "label count":
        files["train-labels-idx1-ubyte"] = idx(np.arange(9) % 3)
    elif kind == "magic":
        files["train-images-idx3-ubyte"] = idx(np.zeros((10, 2, 2)), magic=0x0D)
    elif kind == "size":
        files["train-images-idx3-ubyte"] = idx(np.zeros((10, 2, 2)))[:-3]
    else:
        del files["train-images-idx3-ubyte"]
        files["train-images-idx3-ubyte.gz"] = b"\x1f\x8bnot really gzip"
    for name, content in files.items():
        (folder / name).write_bytes(content)
    cfg = json.loads(json.dumps(BASE))
    cfg["data"] = {"source": "mnist-idx", "path": "mnist"}
    code, err = run(write_config(tmp_path, cfg), "--set", f"output.dir='{tmp_path / 'out'}'")
    assert_clean_error(code, err, "mnist")




def rewrite_checkpoint(run_dir: Path, change) -> None:
    with np.load(run_dir / "checkpoint.npz") as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    meta, arrays = change(meta, arrays)
    (run_dir / "checkpoint.npz").write_bytes(npz_bytes(__meta__=np.array(json.dumps(meta)), **arrays))


CHECKPOINT_DAMAGE = {
    "epoch 99": lambda m, a: ({**m, "epoch": 99}, a),
    "epoch text": lambda m, a: ({**m, "epoch": "3"}, a),
    "best shape": lambda m, a: (m, {**a, "best/0.W": np.zeros((3, 3), np.float32)}),
    "param missing": lambda m, a: (m, {k: v for k, v in a.items() if k != "param/2.b"}),
    "old format, history missing": lambda m, a: ({**m, "format": 5}, a),
    "no optimizer": lambda m, a: ({k: v for k, v in m.items() if k != "optimizer"}, a),
    "format": lambda m, a: ({**m, "format": 1}, a),
    "optim shape": lambda m, a: (m, {**a, "optim/velocity/0.W": np.zeros(7, np.float32)}),
}


@st.composite
def damaged_checkpoint(draw):
    kind = draw(st.sampled_from([*CHECKPOINT_DAMAGE, "truncated", "flipped", "empty", "directory",
                                 "history.csv truncated", "steps.csv truncated", "history.csv flipped",
                                 "steps.csv flipped", "history.csv missing", "steps.csv missing"]))
    return kind, draw(st.integers(1, 10_000))


@SETTINGS
@given(case=damaged_checkpoint())
@example(case=("flipped", 129))  # a byte of the metadata array's header: numpy's parser raised a TokenError
def test_generated_damaged_checkpoints_change_nothing(case, finished_run, tmp_path):
    kind, where = case
    run_dir = fresh(tmp_path) / "run"
    run_dir.mkdir()
    for p in finished_run.iterdir():
        (run_dir / p.name).write_bytes(p.read_bytes())
    ckpt = run_dir / "checkpoint.npz"
    named = "checkpoint"
    if kind.endswith(("csv truncated", "csv flipped", "csv missing")):  # the history files a resume reads back
        named = kind.split()[0]
        ckpt = run_dir / named
        kind = kind.split()[1]
    if kind == "missing":
        ckpt.unlink()
    elif kind in CHECKPOINT_DAMAGE:
        rewrite_checkpoint(run_dir, CHECKPOINT_DAMAGE[kind])
    elif kind == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[:where % ckpt.stat().st_size])
    elif kind == "flipped":
        content = bytearray(ckpt.read_bytes())
        content[where % len(content)] ^= 0xFF
        ckpt.write_bytes(bytes(content))
    elif kind == "empty":
        ckpt.write_bytes(b"")
    else:
        ckpt.unlink()
        ckpt.mkdir()
    before = files_under(run_dir)
    code, err = run("--resume", run_dir, "--set", "solver.epochs=4")
    if code == 0:  # a flipped byte inside an array's values is not detectable: the run goes on, as it should
        assert kind == "flipped"
        return
    assert_clean_error(code, err, named)
    assert files_under(run_dir) == before


@pytest.mark.parametrize("args, names", [
    (["--set", "data.test_fraction=-0.2"], "data.test_fraction"),
    (["--set", "data.val_fraction=0.7", "--set", "data.test_fraction=0.4"], "data.val_fraction + data.test_fraction"),
    (["--set", "data.val_fraction=nan"], "data.val_fraction"),
    (["--set", "data.noise=inf"], "data.noise"),
    (["--set", "data.classes=-3"], "data.classes"),
    (["--set", 'optim.nesterov="false"'], "optim.nesterov"),
    (["--set", 'model.layers=[{type="Affine",out_features=3},{type="Sum",axis=1}]'], "model.layers"),
    (["--set", 'model.layers=[{type="Affine",out_features=10000000000},{type="Affine",out_features=3}]'],
     "model.layers[0] (Affine): not enough memory"),
    (["--set", 'model.imports=["broken_module_xyz"]'], "model.imports[0]"),
])
def test_found_by_hand(args, names, tmp_path):
    (tmp_path / "broken_module_xyz.py").write_text("x = 1\nraise RuntimeError('boom at import')\n")
    code, err = run(write_config(tmp_path, BASE), *args, "--set", f"output.dir='{tmp_path / 'out'}'")
    assert_clean_error(code, err, names)
    assert not (tmp_path / "out").exists()


def test_config_files_that_are_not_configs(tmp_path):
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00binary")
    assert_clean_error(*run(tmp_path / "bin.toml"), "bin.toml")
    (tmp_path / "dir.toml").mkdir()
    assert_clean_error(*run(tmp_path / "dir.toml"), "is a directory")


@pytest.mark.slow
def test_four_processes_on_one_output_folder_get_four_folders(tmp_path):
    procs = []
    for seed in range(4):
        cfg = dict(BASE, solver={**BASE["solver"], "seed": seed})
        path = tmp_path / f"c{seed}.toml"
        path.write_text(tomli_w.dumps(cfg))
        procs.append(subprocess.Popen([sys.executable, "-m", "solver", str(path), "--set",
                                       f"output.dir='{tmp_path / 'shared'}'"], env=USER_ENV,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    folders = {line.rsplit("run ", 1)[1] for out in outputs for line in out.splitlines() if " run " in line}
    assert len(folders) == 4
    seeds = sorted(int(Path(f, "config.toml").read_text().split("seed = ")[-1].split()[0]) for f in folders)
    assert seeds == [0, 1, 2, 3]
    assert not any(name.endswith(".tmp") for f in folders for name in os.listdir(f))


def test_every_flipped_byte_and_every_truncation_of_an_npz_is_an_error_or_loads(tmp_path):
    from chainrule.data import load_npz

    good = npz_bytes(X_train=GOOD_X, y_train=GOOD_Y)
    path = tmp_path / "d.npz"
    outcomes = {"loaded": 0, "error": 0}
    for i in range(len(good)):
        for content in (bytes(good[:i]), bytes(good[:i]) + bytes([good[i] ^ 0xFF]) + good[i + 1:]):
            path.write_bytes(content)
            try:
                load_npz(str(path))
                outcomes["loaded"] += 1
            except ValueError as e:
                assert "d.npz" in str(e)
                outcomes["error"] += 1
    assert outcomes["error"] > len(good)  # every truncation, and flips in the zip structure


def test_resume_cleans_stale_temporaries_and_restarts_a_run_killed_before_its_first_checkpoint(tmp_path):
    assert run(write_config(tmp_path, BASE), "--set", f"output.dir='{tmp_path / 'full'}'")[0] == 0
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / "config.toml").write_bytes((tmp_path / "full" / "config.toml").read_bytes())
    (killed / ".checkpoint.npz.x1y2.tmp").write_bytes(b"half a checkpoint")
    code, err = run("--resume", killed)
    assert code == 0 and "has no checkpoint" in err and "starting it again from the beginning" in err
    assert not list(killed.glob(".*.tmp"))
    with np.load(tmp_path / "full" / "checkpoint.npz") as a, np.load(killed / "checkpoint.npz") as b:
        np.testing.assert_array_equal(a["best/0.W"], b["best/0.W"])


def test_a_full_disk_is_one_line(tmp_path, monkeypatch):
    import chainrule.checkpoint as ckpt

    def no_space(path, data):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(ckpt, "atomic_write", no_space)  # the checkpoint module's own name for it
    code, err = run(write_config(tmp_path, BASE), "--set", f"output.dir='{tmp_path / 'r'}'")
    assert_clean_error(code, err, "No space left on device")


def test_paths_of_the_wrong_kind(tmp_path):
    (tmp_path / "adir.npz").mkdir()
    cfg = json.loads(json.dumps(BASE))
    cfg["data"] = {"source": "npz", "path": "adir.npz"}
    assert_clean_error(*run(write_config(tmp_path, cfg), "--set", f"output.dir='{tmp_path / 'o'}'"), "adir.npz")
    (tmp_path / "afile").write_text("x")
    code, err = run(write_config(tmp_path, BASE), "--set", f"output.dir='{tmp_path / 'afile' / 'run'}'")
    assert_clean_error(code, err, "afile")
    assert (tmp_path / "afile").read_text() == "x"


def test_a_user_module_with_a_syntax_error_is_named_with_its_line(tmp_path):
    (tmp_path / "badsyntax_xyz.py").write_text("x = 1\ndef f(:\n")
    code, err = run(write_config(tmp_path, BASE), "--set", 'model.imports=["badsyntax_xyz"]',
                    "--set", f"output.dir='{tmp_path / 'o'}'")
    assert_clean_error(code, err, "model.imports[0]: importing 'badsyntax_xyz' raised SyntaxError")
    assert "line 2" in err


def test_modules_next_to_a_config_run_only_when_it_imports_them(tmp_path):
    (tmp_path / "matplotlib.py").write_text("raise SystemExit('shadowing module ran')\n")
    (tmp_path / "multiprocessing.py").write_text("raise SystemExit('shadowing module ran')\n")
    result = subprocess.run([sys.executable, "-m", "solver", str(write_config(tmp_path, {**BASE, "output": {
        "plot": True, "checkpoint_seconds": 0.0}})), "--set", f"output.dir='{tmp_path / 'o'}'"],
        capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "shadowing module ran" not in result.stderr
