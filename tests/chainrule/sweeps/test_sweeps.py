"""Sweeps: sampling, validation, parallel trials on a process pool and on a Dask cluster, dying workers,
resume, the folder's files."""

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import chainrule
from chainrule.cli import main as chainrule_main
from chainrule.config import ConfigError
from chainrule.sweeps import space as search_space
from chainrule.sweeps.folder import TrialStatus
from solver import Stop
from tests.subprocess_runs import ROOT, popen

pytestmark = pytest.mark.slow  # sweeps start worker processes or a Dask cluster

SWEEP = """
[data]
source = "spiral"
samples = 60
[model]
imports = [{imports}]
import_dirs = ["{userlayers}"]
layers = [{{ type = "Affine", out_features = 12 }}, {{ type = "ReLU" }}, {extra}{{ type = "Affine", out_features = 3 }}]
[optim]
type = "sgd"
lr = 0.1
momentum = 0.9
[solver]
epochs = {epochs}
batch_size = 30
[output]
checkpoint_seconds = 0.0
[sweep]
trials = {trials}
seed = 3
workers = 2
[sweep.params]
"optim.lr" = {{ loguniform = [1e-3, 1e-1] }}
"loss.reg" = {{ loguniform = [1e-5, 1e-1] }}
"""


def config(tmp_path, trials=4, epochs=3, extra="", imports=""):
    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP.format(trials=trials, epochs=epochs, extra=extra, imports=imports,
                                 userlayers=ROOT / "tests" / "userlayers"))
    return path


def table(folder: Path) -> list[dict]:
    with open(folder / "sweep.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def test_random_trials_are_seeded_per_trial_and_grids_are_products():
    dists = search_space.parse({"optim.lr": {"loguniform": [1e-4, 1e-1]},
                                "model.layers[0].out_features": {"choice": [64, 128]},
                                "solver.batch_size": {"int": [16, 256], "log": True}})
    a, b = search_space.random_trials(dists, 5, 0), search_space.random_trials(dists, 8, 0)
    assert a == b[:5]
    assert all(1e-4 <= t["optim.lr"] <= 1e-1 and 16 <= t["solver.batch_size"] <= 256 for t in b)
    grid = search_space.grid_trials(dists, points=3)
    assert len(grid) == 3 * 2 * 3 and grid[0] == {"optim.lr": pytest.approx(1e-4), "model.layers[0].out_features": 64,
                                                  "solver.batch_size": 16}
    raw = {"model": {"layers": [{"type": "Affine", "out_features": 8}]}, "sweep": {}}
    assert search_space.with_values(raw, {"model.layers[0].out_features": 64}) == {
        "model": {"layers": [{"type": "Affine", "out_features": 64}]}}


@pytest.mark.parametrize("params, message", [
    ({"optim.lr": {"loguniform": [0, 1]}}, "a log scale needs low > 0"),
    ({"optim.lr": {"uniform": [1]}}, "uniform needs [low, high]"),
    ({"optim.lr": {"gaussian": [0, 1]}}, "expected a table with one of loguniform"),
    ({"optim": {"choice": [1]}}, "expected a key path"),
    ({"optim.lr": {"choice": []}}, "choice needs a non-empty array"),
    ({"solver.batch_size": {"int": [1.5, 4]}}, "int needs integer bounds"),
])
def test_bad_distributions_are_config_errors(params, message):
    with pytest.raises(ConfigError, match=rf"sweep.params.*{re.escape(message)}"):
        search_space.parse(params)


@pytest.mark.parametrize("line, message", [
    ('"model.layers[7].out_features" = { choice = [4] }', "has no table at index 7"),
    ('"optim.momentum" = { loguniform = [-1, 1] }', "a log scale needs low > 0"),
    ('"solver.batch_size" = { choice = ["big"] }', "solver.batch_size: expected an integer"),
])
def test_every_sampled_config_is_validated_before_any_trial(line, message, tmp_path, capsys):
    path = config(tmp_path)
    path.write_text(path.read_text() + line + "\n")
    assert chainrule_main(["sweep", str(path), "--set", f"output.dir='{tmp_path / 's'}'"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and not (tmp_path / "s").exists()


def test_a_sweep_on_a_process_pool_writes_its_folder(tmp_path, monkeypatch):
    from chainrule.sweeps import folder as sweep_folder

    figures, save = [], sweep_folder.save_figure
    monkeypatch.setattr(sweep_folder, "save_figure", lambda fig, path: (figures.append(fig), save(fig, path)))
    rows = chainrule.sweep(config(tmp_path), workers=2, sets=[f"output.dir='{tmp_path / 's'}'"])
    folder = tmp_path / "s"
    assert [r["trial"] for r in rows] == [0, 1, 2, 3] and all(r["status"] is TrialStatus.OK for r in rows)
    assert {"sweep.csv", "best.toml", "sweep.png", "trial-0000", "trial-0003"} <= set(os.listdir(folder))
    assert (folder / "trial-0002" / "checkpoint.npz").exists() and (folder / "trial-0002" / "history.csv").exists()
    best = max(rows, key=lambda r: (r["metric"], -r["trial"]))
    legend = figures[-1].axes[0].get_legend().get_texts()[0].get_text()
    assert legend.startswith(f"best: trial {best['trial']} ")  # sweep.png marks the best trial
    best_cfg = (folder / "best.toml").read_text()
    assert f"lr = {best['optim.lr']}" in best_cfg and "[sweep]" not in best_cfg
    # only what the sweep's config said and what differs from the defaults: no spiral keys it never set
    assert "samples = 60" in best_cfg and "noise" not in best_cfg and "classes" not in best_cfg
    assert f"dir = \"{tmp_path / 's-best'}\"" in best_cfg  # not runs/best
    result = subprocess.run([sys.executable, "-m", "solver", str(folder / "best.toml"), "--set",
                             f"output.dir='{tmp_path / 'again'}'", "--set", "solver.verbose=false"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr  # runnable as is


def test_a_worker_killed_mid_trial_is_retried_and_the_sweep_completes(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_KILL_MARKER", str(tmp_path / "killed-once"))
    path = config(tmp_path, trials=3, extra='{ type = "KillOnce" }, ', imports='"killonce"')
    rows = chainrule.sweep(path, workers=2, sets=[f"output.dir='{tmp_path / 's'}'"])
    assert (tmp_path / "killed-once").exists()
    assert all(r["status"] is TrialStatus.OK for r in rows) and max(r["attempts"] for r in rows) == 2


def test_a_sweep_on_a_dask_local_cluster_with_two_worker_processes(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        rows = chainrule.sweep(config(tmp_path), client=client, sets=[f"output.dir='{tmp_path / 'dask'}'"])
        pids = {pid for pid in client.run(os.getpid).values()}
    assert len(pids) == 2 and os.getpid() not in pids
    assert all(r["status"] is TrialStatus.OK for r in rows)
    chainrule.sweep(config(tmp_path), workers=2, sets=[f"output.dir='{tmp_path / 'local'}'"])
    assert table(tmp_path / "dask") == table(tmp_path / "local")  # the same trials, the same results


def test_an_interrupted_sweep_resumed_equals_an_uninterrupted_one(tmp_path):
    path = config(tmp_path, trials=4, epochs=6, extra='{ type = "SlowIdentity" }, ', imports='"slowlayer"')
    chainrule.sweep(path, workers=2, sets=[f"output.dir='{tmp_path / 'full'}'"])
    proc = popen([sys.executable, "-m", "chainrule", "sweep", path, "--set", f"output.dir='{tmp_path / 'cut'}'"],
                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((tmp_path / "cut").glob("trial-*/checkpoint.npz")):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group, workers included
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"chainrule sweep --resume {tmp_path / 'cut'}" in err
    assert len(table(tmp_path / "cut")) < 4 if (tmp_path / "cut" / "sweep.csv").exists() else True
    assert chainrule_main(["sweep", "--resume", str(tmp_path / "cut")]) == 0
    assert table(tmp_path / "cut") == table(tmp_path / "full")
    for trial in range(4):
        with np.load(tmp_path / "full" / f"trial-{trial:04d}" / "checkpoint.npz") as a, \
                np.load(tmp_path / "cut" / f"trial-{trial:04d}" / "checkpoint.npz") as b:
            for key in (k for k in a.files if k.startswith(("best/", "param/"))):
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"trial {trial} {key}")


def test_the_median_rule_stops_trials_below_the_median(tmp_path):
    path = config(tmp_path, trials=8, epochs=5)
    path.write_text(path.read_text().replace("workers = 2", "workers = 1\nmedian_stop = true"))
    rows = chainrule.sweep(path, sets=[f"output.dir='{tmp_path / 's'}'"])
    stopped = [r for r in rows if r.get("stop") is Stop.MEDIAN]
    assert stopped and all(r["epochs"] < 5 for r in stopped)
    assert all(r["status"] is TrialStatus.OK for r in rows)


def test_tpe_through_optuna_ask_and_tell(tmp_path):
    pytest.importorskip("optuna")
    path = config(tmp_path, trials=5)
    path.write_text(path.read_text().replace("seed = 3", 'seed = 3\nsampler = "tpe"'))
    rows = chainrule.sweep(path, workers=2, sets=[f"output.dir='{tmp_path / 's'}'"])
    assert len(rows) == 5 and all(r["status"] is TrialStatus.OK for r in rows)
    assert len({r["optim.lr"] for r in rows}) == 5


def test_parameters_of_a_trial_are_drawn_independently():
    dists = search_space.parse({"optim.lr": {"loguniform": [1e-4, 1e-1]}, "loss.reg": {"loguniform": [1e-4, 1e-1]}})
    trials = search_space.random_trials(dists, 200, 0)
    lr, reg = (np.log([t[k] for t in trials]) for k in ("optim.lr", "loss.reg"))
    assert abs(np.corrcoef(lr, reg)[0, 1]) < 0.2  # the same stream per parameter made them identical


@pytest.mark.parametrize("option, value", [("--trials", "0"), ("--workers", "-2")])
def test_bad_trials_or_workers_are_one_line_errors_before_any_folder(tmp_path, capsys, option, value):
    path = config(tmp_path, trials=2, epochs=1)
    out_dir = tmp_path / "s"
    code = chainrule_main(["sweep", str(path), option, value, "--set", f"output.dir='{out_dir}'"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert f"{option}: expected an integer >= {0 if option == '--workers' else 1}, got {value}" in err[0]
    assert not out_dir.exists()


def test_a_damaged_sweep_csv_is_named_when_resuming(tmp_path, capsys):
    path = config(tmp_path, trials=2, epochs=1)
    out_dir = tmp_path / "s"
    assert chainrule_main(["sweep", str(path), "--workers", "1", "--set", f"output.dir='{out_dir}'"]) == 0
    table = out_dir / "sweep.csv"
    lines = table.read_text().splitlines()
    lines[1] = lines[1].replace(",ok,", ",okay,")
    table.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert chainrule_main(["sweep", "--resume", str(out_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sweep.csv' line 2 is damaged" in err[0], err


def test_a_resumed_sweep_keeps_the_number_of_trials_its_command_asked_for(tmp_path, capsys):
    path = config(tmp_path, trials=4, epochs=1)
    out_dir = tmp_path / "s"
    assert chainrule_main(["sweep", str(path), "--trials", "2", "--workers", "1", "--set",
                           f"output.dir='{out_dir}'"]) == 0
    assert chainrule_main(["sweep", "--resume", str(out_dir), "--workers", "1"]) == 0
    assert len(table(out_dir)) == 2
    assert capsys.readouterr().out.splitlines()[-1].endswith("(2 of 2 trials ok)")
    assert chainrule_main(["sweep", "--resume", str(out_dir), "--workers", "1", "--trials", "3",
                           "--set", "solver.epochs=2"]) == 0  # more trials asked for: kept; the --set is not
    assert len(table(out_dir)) == 3
    saved = (out_dir / "sweep.toml").read_text()
    assert "trials = 3" in saved and "epochs = 1" in saved


def test_without_matplotlib_a_sweep_says_there_is_no_picture(tmp_path, capsys, monkeypatch):
    from chainrule import sweeps
    from chainrule.sweeps import folder as sweep_folder

    monkeypatch.setattr(sweeps, "pyplot", lambda: None)
    monkeypatch.setattr(sweep_folder, "pyplot", lambda: None)
    chainrule.sweep(config(tmp_path, trials=2, epochs=1), workers=1, sets=[f"output.dir='{tmp_path / 's'}'"],
                    verbose=True)
    assert "no sweep.png: matplotlib is not installed" in capsys.readouterr().err
    assert not (tmp_path / "s" / "sweep.png").exists() and (tmp_path / "s" / "best.toml").exists()


def test_a_tie_goes_to_the_lowest_trial_whatever_order_the_trials_finished_in(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from types import SimpleNamespace

    from chainrule.sweeps import folder as sweep_folder
    from chainrule.sweeps import space as search_space

    dists = search_space.parse({"optim.lr": {"loguniform": [1e-3, 1e-1]}, "optim.momentum": {"uniform": [0, 0.9]}})
    rows = {i: {"trial": i, "status": TrialStatus.OK, "metric": metric, "optim.lr": lr, "optim.momentum": 0.5}
            for i, metric, lr in ((2, 0.5, 0.01), (1, 0.75, 0.02), (0, 0.75, 0.03))}  # 2, 1, then 0 finished
    sweep = sweep_folder.Sweep(SimpleNamespace(dists=dists, metric="best_val_acc"), tmp_path, None, rows)
    assert sweep_folder.best_trial(sweep) == 0
    figures = []
    monkeypatch.setattr(sweep_folder, "save_figure", lambda fig, path: figures.append(fig))
    assert sweep_folder.write_picture(sweep)
    assert figures[0].axes[0].get_legend().get_texts()[0].get_text() == "best: trial 0 (0.7500)"
