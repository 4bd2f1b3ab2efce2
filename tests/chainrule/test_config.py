"""``python -m solver CONFIG``: outputs, overrides, custom layers, bad configs, kill and resume."""

import json

import numpy as np
import pytest

from chainrule.cli import solver_main as main
from tests.subprocess_runs import (
    ROOT,
    cli,
    kill_after_epoch,
)

EXAMPLES = ROOT / "examples"
SMALL = """
[data]
source = "spiral"
samples = 100
[model]
layers = [{ type = "Affine", out_features = 20 }, { type = "ReLU" }, { type = "Affine", out_features = 3 }]
[optim]
type = "sgd"
lr = 0.1
momentum = 0.9
[solver]
epochs = 3
batch_size = 30
verbose = false
[output]
plot = false
checkpoint_seconds = 0.0
"""


def without_seconds(row: str) -> str:
    """A history.csv line without its seconds column (the 7th), which no two runs share."""
    cells = row.split(",")
    return ",".join(cells[:6] + cells[7:])


def run_main(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path, text, name="cfg.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.slow
def test_spiral_example_trains_and_writes_the_run_directory(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, out, _ = run_main(capsys, EXAMPLES / "spiral.toml", "--set", f"output.dir='{run_dir}'")
    assert code == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["best_val_acc"] >= 0.95
    assert {"best_val_acc", "train_acc", "test_acc", "epochs_run", "train_seconds", "wall_seconds"} <= set(metrics)
    assert out.strip().splitlines()[-1].startswith(f"best_val_acc {metrics['best_val_acc']:.4f}")
    history = (run_dir / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,loss,val_loss,train_acc,val_acc,lr,seconds,clipped" and len(history) == 41
    assert {"config.toml", "checkpoint.npz", "checkpoint.json"} <= {p.name for p in run_dir.iterdir()}
    with np.load(run_dir / "checkpoint.npz", allow_pickle=False) as f:
        assert {"param/0.W", "param/2.b", "optim/velocity/0.W"} <= set(f.files)
    assert json.loads((run_dir / "checkpoint.json").read_text())["epoch"] == 40


def test_curves_png_with_matplotlib(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    cfg = write(tmp_path, SMALL.replace("plot = false", "plot = true"))
    assert run_main(capsys, cfg, "--set", f"output.dir='{tmp_path / 'r'}'")[0] == 0
    assert (tmp_path / "r" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_existing_run_directory_is_never_overwritten(tmp_path, capsys):
    cfg = write(tmp_path, SMALL)
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    assert run_main(capsys, cfg, "--set", f"output.dir='{target}'")[0] == 0
    assert (target / "keep.txt").read_text() == "mine"
    assert (tmp_path / "out-2" / "metrics.json").exists()


def test_set_overrides_are_typed_like_toml(tmp_path, capsys):
    cfg = write(tmp_path, SMALL)
    code, out, _ = run_main(capsys, cfg, "--set", "solver.epochs=2", "--set", "optim.lr=0.05",
                            "--set", f"output.dir={tmp_path / 'r'}")
    assert code == 0
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["epochs_run"] == 2
    assert "lr = 0.05" in (tmp_path / "r" / "config.toml").read_text()


def test_json_config(tmp_path, capsys):
    cfg = {"data": {"source": "spiral", "samples": 100},
           "model": {"layers": [{"type": "Affine", "out_features": 3}]},
           "solver": {"epochs": 2, "verbose": False}, "output": {"dir": str(tmp_path / "r"), "plot": False}}
    path = write(tmp_path, json.dumps(cfg), "cfg.json")
    assert run_main(capsys, path)[0] == 0
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["epochs_run"] == 2


def test_custom_layer_from_user_module_trains(tmp_path, capsys):
    code, _, _ = run_main(capsys, EXAMPLES / "custom" / "custom.toml", "--set", f"output.dir='{tmp_path}/r'",
                          "--set", "solver.verbose=false")
    assert code == 0
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["best_val_acc"] >= 0.9
    with np.load(tmp_path / "r" / "checkpoint.npz", allow_pickle=False) as f:
        assert f["param/1.a"].shape == (100,)  # PReLU's in_features inferred from the Affine before it


BAD = [
    ("[optimizer]\ntype = 'sgd'\n", "unknown section [optimizer]; did you mean 'optim'?"),
    ("[solver]\nepoch = 3\n", "unknown key solver.epoch; did you mean 'epochs'?"),
    ("[solver]\nepochs = '10'\n", "solver.epochs: expected an integer, got a string ('10')"),
    ("[solver]\nverbose = 1\n", "solver.verbose: expected a boolean, got an integer (1)"),
    ("[optim]\ntype = 'adamm'\n", "optim.type: unknown optimizer 'adamm'; did you mean 'adam'"),
    ("[optim]\nmomentm = 0.9\n", "unknown key optim.momentm for SGD; did you mean 'momentum'?"),
    ("[loss]\ntype = 'hinge2'\n", "loss.type: unknown loss 'hinge2'; did you mean 'hinge'"),
    ("[data]\nsource = 'mnist'\n", "data.source: unknown source 'mnist'; did you mean 'mnist1d' or 'mnist-idx'?"),
    ("[data]\nsource = 'npz'\npath = 'missing.npz'\n", "data.path: "),
]


@pytest.mark.parametrize("extra, message", BAD)
def test_bad_config_is_one_line_with_status_2(tmp_path, capsys, extra, message):
    text = SMALL
    section = extra.split("]")[0] + "]"
    if section in text:  # replace the section wholesale
        start = text.index(section)
        end = text.find("\n[", start + 1)
        text = text[:start] + text[end + 1:]
    cfg = write(tmp_path, text + extra)
    code, out, err = run_main(capsys, cfg)
    assert code == 2
    assert err.startswith("solver: error: ") and err.count("\n") == 1
    assert message in err


def test_unknown_layer_and_layer_keyword(tmp_path, capsys):
    cfg = write(tmp_path, SMALL.replace('type = "Affine", out_features = 20', 'type = "Afine", out_features = 20'))
    code, _, err = run_main(capsys, cfg)
    assert code == 2 and "model.layers[0].type: unknown layer 'Afine'; did you mean 'Affine'" in err
    cfg = write(tmp_path, SMALL.replace("out_features = 20", "out = 20"))
    code, _, err = run_main(capsys, cfg)
    assert code == 2 and "unknown key model.layers[0].out for Affine; allowed: in_features, out_features, init" in err
    cfg = write(tmp_path, SMALL.replace("[model]", "[model]\nimports = ['no_such_module_xyz']"))
    code, _, err = run_main(capsys, cfg)
    assert code == 2 and "model.imports[0]: cannot import 'no_such_module_xyz'" in err


def test_output_width_must_match_classes(tmp_path, capsys):
    cfg = write(tmp_path, SMALL.replace("out_features = 3", "out_features = 4"))
    code, _, err = run_main(capsys, cfg)
    assert code == 2 and "the last layer gives 4 scores per example, but the data has 3 classes" in err


def test_missing_config_and_invalid_toml(tmp_path, capsys):
    code, _, err = run_main(capsys, tmp_path / "nope.toml")
    assert code == 2 and "does not exist" in err
    code, _, err = run_main(capsys, write(tmp_path, "[solver\n"))
    assert code == 2 and "is not valid TOML" in err


def test_cli_error_has_no_traceback_unless_debug(tmp_path):
    cfg = write(tmp_path, SMALL + "[typo]\n")
    result = cli(cfg)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "Traceback" not in result.stderr
    assert "Traceback" in cli(cfg, "--debug").stderr


def test_diverging_run_stops_saves_and_exits_1(tmp_path):
    cfg = write(tmp_path, SMALL.replace("lr = 0.1", "lr = 1e4") + "[loss]\nreg = 1.0\n")
    result = cli(cfg, "--set", "solver.epochs=20", "--set", f"output.dir='{tmp_path / 'r'}'")
    assert result.returncode == 1
    assert "try a lower learning rate" in result.stderr
    assert "no epoch completed, so no parameters improved" in result.stderr  # not "the best parameters so far"
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["best_val_acc"] is None
    assert (tmp_path / "r" / "checkpoint.npz").exists()


RESUMABLE = SMALL.replace("epochs = 3", "epochs = 12").replace(
    '{ type = "ReLU" }', '{ type = "ReLU" }, { type = "SlowIdentity" }').replace(
    "[model]", '[model]\nimports = ["slowlayer"]')


@pytest.mark.slow
def test_kill_and_resume_reproduces_the_uninterrupted_run(tmp_path):
    cfg = write(tmp_path, RESUMABLE)
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert cli(cfg, "--set", f"output.dir='{full}'").returncode == 0

    epoch_at_kill = kill_after_epoch(cfg, killed, 3)
    assert 3 <= epoch_at_kill < 12 and not (killed / "metrics.json").exists()

    result = cli(cfg, "--resume", killed)
    assert result.returncode == 0, result.stderr
    with np.load(full / "checkpoint.npz", allow_pickle=False) as a, np.load(killed / "checkpoint.npz") as b:
        params = [k for k in a.files if k.startswith(("param/", "optim/"))]
        assert params
        for key in params:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    hist_a = (full / "history.csv").read_text().splitlines()
    hist_b = (killed / "history.csv").read_text().splitlines()
    assert [without_seconds(r) for r in hist_a] == [without_seconds(r) for r in hist_b]  # all but seconds


def test_resume_refuses_a_different_config(tmp_path, capsys):
    cfg = write(tmp_path, SMALL)
    assert run_main(capsys, cfg, "--set", f"output.dir='{tmp_path / 'r'}'")[0] == 0
    code, _, err = run_main(capsys, cfg, "--resume", tmp_path / "r", "--set", "optim.lr=0.5")
    assert code == 2 and "the config differs from the run's in optim.lr" in err


def test_cli_usage_error_is_one_line_and_help_shows_examples():
    result = cli()
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "python -m solver: error: give a config file, or --resume RUN_DIR (see --help)"]
    assert "python -m solver examples/spiral.toml --gradcheck" in cli("--help").stdout
