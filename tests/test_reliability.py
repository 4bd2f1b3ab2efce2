"""Bad input of every kind is a clean error: exit status 2, one line naming the key or file, no traceback,
nothing written or changed on disk. Generated configs, data files and damaged checkpoints, plus the cases
found by hand; concurrent runs on one output folder."""

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chainrule.cli import solver_main
from chainrule.config import SCHEMA
from tests.subprocess_runs import ROOT, USER_ENV

BASE = {
    "data": {"source": "spiral", "samples": 40},
    "model": {"layers": [{"type": "Affine", "out_features": 8}, {"type": "ReLU"}, {"type": "Affine",
                                                                                  "out_features": 3}]},
    "optim": {"type": "sgd", "lr": 0.1},
    "solver": {"epochs": 2, "batch_size": 20, "verbose": False},
    "output": {"plot": False, "checkpoint_seconds": 0.0},
}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def run(*args: object) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = solver_main([str(a) for a in args])
    return code, err.getvalue()


def assert_clean_error(code: int, err: str, names: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert names in lines[0], (names, lines[0])


def write_config(folder: Path, cfg: dict) -> Path:
    path = folder / "cfg.toml"
    path.write_text(tomli_w.dumps(cfg))
    return path


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


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


def fresh(tmp_path: Path) -> Path:
    """A new folder per generated example (hypothesis reuses the function's tmp_path)."""
    return Path(tempfile.mkdtemp(dir=tmp_path))


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


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


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


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("finished")
    cfg = write_config(folder, BASE)
    assert run(cfg, "--set", f"output.dir='{folder / 'run'}'")[0] == 0
    return folder / "run"


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


def test_elu_at_infinity_and_read_only_outputs():
    from layers import ELU, Sigmoid, Tanh

    elu = ELU()
    elu.forward(np.array([np.inf, -np.inf, 1.0]))
    np.testing.assert_array_equal(elu.backward(np.ones(3)), [1.0, 0.0, 1.0])
    for layer in (Sigmoid(), Tanh(), ELU()):
        out = layer.forward(np.array([0.5, -0.5]))
        with pytest.raises(ValueError, match="read-only"):
            out[0] = 3.0
        fresh_layer = type(layer)()
        fresh_layer.forward(np.array([0.5, -0.5]))
        np.testing.assert_array_equal(layer.backward(np.ones(2)), fresh_layer.backward(np.ones(2)))


# Generated input files for predict and evaluate: numbers at the edges, encodings, headers and labels. A file
# is either read in full (every data row predicted, no row taken for a header, labels meaning what they say)
# or refused in one line naming it.
EDGE_CELLS = ["nan", "inf", "-inf", "1e308", "1e39", "-0", "5e-324", " 1.5 ", "", "abc", "0x1", "1e", "+2",
              "1_0", "\u0661", "3.4028235e38"]
CELLS = st.one_of(st.floats(-100, 100).map(repr), st.integers(-5, 5).map(str), st.sampled_from(EDGE_CELLS))
LABELS = st.sampled_from(["0", "1", "2", "2.0", "1.5", "cat", "3", "-1", " 1 ", "1e0", "nan", ""])


@st.composite
def input_csv(draw):
    rows, columns = draw(st.integers(0, 4)), draw(st.sampled_from([2, 2, 2, 1, 3]))
    header = draw(st.sampled_from(["none", "names", "one name", "label", "label first"]))
    table = [[draw(CELLS) for _ in range(columns)] for _ in range(rows)]
    if header.startswith("label"):
        for row in table:
            row.insert(0 if header == "label first" else len(row), draw(LABELS))
        names = [f"x{i}" for i in range(columns)]
        names.insert(0 if header == "label first" else len(names), "label")
        table.insert(0, names)
    elif header == "names":
        table.insert(0, [draw(st.sampled_from(["x", "café", "size (cm)", "a b"])) + str(i) for i in range(columns)])
    elif header == "one name":
        table.insert(0, ["0.5"] * (columns - 1) + ["y"])
    lines = [",".join(row) for row in table]
    if draw(st.booleans()) and lines:
        lines.insert(draw(st.integers(0, len(lines))), "")
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    text = ending.join(lines) + (ending if draw(st.booleans()) else "")
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    return text, encoding


def data_rows(text: str) -> list[list[str]]:
    """The oracle: the non-blank rows, less the first one when any of its values is not a number."""
    rows = [line.split(",") for line in text.splitlines() if line.strip(" ,")]
    numeric = rows and all(is_float(v) for v in rows[0])
    return rows if numeric else rows[1:]


def is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@SETTINGS
@given(case=input_csv(), command=st.sampled_from(["predict", "evaluate"]))
@example(case=("0.5,1.0\n0.2,0.3\n", "utf-8-sig"), command="predict")  # the byte-order mark made row 1 a header
@example(case=("\nx,y\n0.2,0.3\n", "utf-8"), command="predict")  # numpy's loadtxt skipped the blank line
def test_generated_input_files_are_read_in_full_or_refused_naming_them(case, command, finished_run, tmp_path):
    from chainrule.cli import main

    text, encoding = case
    folder = fresh(tmp_path)
    path = folder / "in.csv"
    path.write_bytes(text.encode(encoding, errors="replace"))
    args = [command, str(finished_run), str(path)] if command == "predict" else [command, str(finished_run),
                                                                                   "--data", str(path)]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main([*args, "--out", str(folder / "p.csv")] if command == "predict" else args)
    err_text = err.getvalue()
    if code != 0:
        assert_clean_error(code, err_text, "in.csv")
        return
    assert encoding.startswith("utf-8") or text.isascii(), "a file in another encoding was read"
    rows = data_rows(text.removeprefix("\ufeff"))
    first = next(line for line in text.removeprefix("\ufeff").splitlines() if line.strip(" ,")).split(",")
    has_label = "label" in first
    if command == "predict":
        predicted = (folder / "p.csv").read_text().splitlines()[1:]
        assert len(predicted) == len(rows), (text, predicted)
        assert all("nan" not in line for line in predicted)
    else:
        assert has_label, "evaluate ran without labels"
        labels = [row[first.index("label")].strip() for row in rows]
        assert all(float(v) in (0.0, 1.0, 2.0) for v in labels), labels
        report = json.loads((finished_run / "evaluation.json").read_text())
        assert int(np.sum(report["confusion"])) == len(rows)


@st.composite
def input_npz(draw):
    rows = draw(st.integers(0, 4))
    shape = draw(st.sampled_from([(rows, 2), (rows, 2), (rows,), (rows, 3), (rows, 1, 2), (rows, 2, 1)]))
    dtype = draw(st.sampled_from(["float32", "float64", "float16", "int64", "uint8", "bool", "complex64", "<U3"]))
    values = draw(st.lists(st.sampled_from([0.5, -1.0, 3.0, np.nan, np.inf, 1e39, 1e308, 7.0]),
                           min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    with np.errstate(all="ignore"):
        X = np.array(values).reshape(shape).astype(dtype)
    arrays = {draw(st.sampled_from(["X", "X_test", "features"])): X}
    if draw(st.booleans()):
        labels = draw(st.lists(st.sampled_from(["0", "1", "2", "2.0", "1.5", "-1", "3", "cat"]), min_size=rows,
                               max_size=rows + draw(st.integers(0, 1))))
        y_dtype = draw(st.sampled_from(["int64", "float64", "<U3"]))
        y = np.array(labels) if y_dtype == "<U3" else np.array([float(v) if is_float(v) else 0.0 for v in labels])
        arrays["y" if "X" in arrays else "y_test"] = y.astype(y_dtype) if y_dtype == "int64" else y
    return arrays


@SETTINGS
@given(arrays=input_npz(), command=st.sampled_from(["predict", "evaluate"]))
def test_generated_npz_inputs_are_read_in_full_or_refused_naming_them(arrays, command, finished_run, tmp_path):
    from chainrule.cli import main

    folder = fresh(tmp_path)
    path = folder / "in.npz"
    np.savez(path, **arrays)
    args = [command, str(finished_run), str(path), "--out", str(folder / "p.csv")] if command == "predict" \
        else [command, str(finished_run), "--data", str(path)]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    if code != 0:
        assert_clean_error(code, err.getvalue(), "in.npz")
        return
    X = arrays.get("X", arrays.get("X_test"))
    assert X.dtype.kind in "iuf" and np.abs(X.astype(np.float64)).max(initial=0) < 3.5e38  # finite in float32
    if command == "predict":
        assert len((folder / "p.csv").read_text().splitlines()) == len(X) + 1
    else:
        y = arrays.get("y", arrays.get("y_test"))
        assert y is not None and len(y) == len(X) and set(np.asarray(y, dtype=float).tolist()) <= {0.0, 1.0, 2.0}
        report = json.loads((finished_run / "evaluation.json").read_text())
        assert int(np.sum(report["confusion"])) == len(X)
