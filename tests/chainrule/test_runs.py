"""A run folder over time: history files beside a checkpoint that does not grow, one writer among many,
sweep workers that end with their sweep, and Ctrl-C at any moment of a command's start."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from chainrule import history, runs
from chainrule.files import RunLock
from tests.chainrule.trained.test_model import SLOW, SPIRAL, write
from tests.subprocess_runs import ROOT, assert_same_checkpoint_arrays, cli, popen


def train_to(tmp_path: Path, epochs: int, name: str, text: str = SPIRAL) -> runs.Run:
    run = runs.setup(write(tmp_path, text.replace("epochs = 10", f"epochs = {epochs}"), f"{name}.toml"),
                     [f"output.dir='{tmp_path / name}'"])
    assert runs.train(run) == 0
    return run


def rows(path: Path, drop_seconds: bool = False) -> list[list[str]]:
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    return [r[:6] + r[7:] for r in table] if drop_seconds else table


def test_the_history_is_in_its_files_and_the_checkpoint_does_not_grow_with_the_run(tmp_path):
    train_to(tmp_path, 5, "short")
    long = train_to(tmp_path, 300, "long")
    sizes = [(tmp_path / name / "checkpoint.npz").stat().st_size for name in ("short", "long")]
    assert abs(sizes[1] - sizes[0]) < 300, sizes  # digits: the epoch, the learning rate, Generator states (the
    # history of 300 epochs, as before format 6, added 29 kB)
    with np.load(tmp_path / "long" / "checkpoint.npz") as f:
        assert not [k for k in f.files if "history" in k]
        meta = json.loads(str(f["__meta__"]))
    assert meta["format"] == 7 and not [k for k in meta if "history" in k or k == "epoch_seconds"]

    solver = long.solver
    table = rows(tmp_path / "long" / "history.csv")
    assert table[0] == ["epoch", "loss", "val_loss", "train_acc", "val_acc", "lr", "seconds", "clipped"]
    assert [int(r[0]) for r in table[1:]] == list(range(1, 301))
    assert [float(r[4]) for r in table[1:]] == solver.val_acc_history  # exactly: floats as Python writes them
    assert [float(r[5]) for r in table[1:]] == solver.lr_history
    steps = rows(tmp_path / "long" / "steps.csv")
    assert steps[0] == ["epoch", "step", "loss"] and len(steps) - 1 == 300 * solver.steps_per_epoch
    assert [float(r[2]) for r in steps[1:]] == solver.loss_history
    assert float(table[7][1]) == pytest.approx(np.mean(solver.loss_history[6 * solver.steps_per_epoch:
                                                                          7 * solver.steps_per_epoch]))


def test_rows_written_after_the_checkpoint_are_dropped_when_the_run_resumes(tmp_path):
    train_to(tmp_path, 9, "full")
    train_to(tmp_path, 6, "cut")
    cut = tmp_path / "cut"
    with open(cut / "history.csv", "a") as f:  # a kill after the history was appended, before the checkpoint
        f.write("7,0.5,0.5,0.5,0.5,0.1,0.01\n8,0.5,0.5")
    with open(cut / "steps.csv", "a") as f:
        f.write("7,25,0.25\n7,26,0.2")
    assert runs.train(runs.setup(None, ["solver.epochs=9"], resume=cut)) == 0
    assert rows(cut / "history.csv", drop_seconds=True) == rows(tmp_path / "full" / "history.csv", drop_seconds=True)
    assert rows(cut / "steps.csv") == rows(tmp_path / "full" / "steps.csv")
    assert_same_checkpoint_arrays(tmp_path / "full", cut)


def test_a_checkpoint_of_an_older_format_is_refused_saying_why(tmp_path):
    train_to(tmp_path, 2, "old")
    path = tmp_path / "old" / "checkpoint.npz"
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    np.savez(path, __meta__=np.array(json.dumps({**meta, "format": 6})), **arrays)
    with pytest.raises(ValueError, match=r"checkpoint format 6, expected 7 \(a run written by an older chainrule"):
        runs.setup(None, [], resume=tmp_path / "old")


def test_a_history_file_that_disagrees_with_the_checkpoint_is_an_error_naming_it(tmp_path):
    train_to(tmp_path, 4, "r")
    path = tmp_path / "r" / "steps.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3] + lines[2:3] + lines[4:]))  # a step twice, the next one missing
    with pytest.raises(ValueError, match=r"steps.csv'.* not .* steps an epoch numbered from 1"):
        runs.setup(None, [], resume=tmp_path / "r")
    path.write_text("".join(lines))
    (tmp_path / "r" / "history.csv").write_text("epoch,loss\n")
    with pytest.raises(ValueError, match=r"history.csv' does not start with the header epoch,loss,val_loss"):
        runs.setup(None, [], resume=tmp_path / "r")


@pytest.mark.slow
def test_four_processes_resuming_one_run_leave_one_consistent_run(tmp_path):
    """The run-folder race, stressed: each round, four processes resume one run at once. Each either trains
    or is refused in one line naming the process in the way; the folder ends as one run of the last count."""
    cfg = write(tmp_path, SLOW.replace("epochs = 10", "epochs = 2"))
    assert cli(cfg, "--set", f"output.dir='{tmp_path / 'r'}'").returncode == 0
    for epochs in (6, 10, 14):
        procs = [popen([sys.executable, "-m", "solver", "--resume", tmp_path / "r", "--set", f"solver.epochs={epochs}"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
        for p in procs:
            p.stderr.close()
        assert any(code == 0 for code, _ in results), results
        for code, err in results:
            assert code == 0 or (code == 2 and "is in use by" in err and len(err.strip().splitlines()) == 1), err
        meta = json.loads((tmp_path / "r" / "checkpoint.json").read_text())
        assert meta["epoch"] == epochs and meta["config"]["solver"]["epochs"] == epochs
        table = rows(tmp_path / "r" / "history.csv")
        assert [int(r[0]) for r in table[1:]] == list(range(1, epochs + 1))
        per_epoch = np.unique([int(r[0]) for r in rows(tmp_path / "r" / "steps.csv")[1:]], return_counts=True)
        assert list(per_epoch[0]) == list(range(1, epochs + 1)) and len(set(per_epoch[1])) == 1
        assert not (tmp_path / "r" / ".lock").exists()


def children_of(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (Linux's /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds worker processes through /proc")
def test_the_workers_of_a_sweep_killed_with_sigkill_end_too(tmp_path):
    from tests.chainrule.sweeps.test_sweeps import config

    path = config(tmp_path, trials=8, epochs=40, extra='{ type = "SlowIdentity" }, ', imports='"slowlayer"')
    proc = popen([sys.executable, "-m", "chainrule", "sweep", path, "--set", f"output.dir='{tmp_path / 's'}'"],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list((tmp_path / "s").glob("trial-*/checkpoint.npz")):
            time.sleep(0.01)
        workers = {w for w in children_of(proc.pid) if "spawn" in Path(f"/proc/{w}/cmdline").read_text()}
        assert len(workers) >= 2, workers
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(w) for w in workers):
        time.sleep(0.05)
    assert not [w for w in workers if alive(w)]


STARTING = [ROOT / "chainrule" / name for name in ("__init__.py", "__main__.py", "cli/__init__.py", "cli/launch.py")]


def frames_after_the_handler(traceback: str) -> list[str]:
    """The frames of a traceback that run after ``chainrule.cli.launch.start`` installs its Ctrl-C handler: any frame
    of this project's code except the lines that get to ``start`` (solver.py's first lines, the chainrule package's
    module bodies that import chainrule.cli.launch), and anything in site-packages (numpy, scipy...) but the
    start-up hooks that ``site`` runs before any of it."""
    frames = re.findall(r'File "([^"]+)", line (\d+)', traceback)
    if any(path == "<frozen site>" or Path(path).name == "site.py" for path, _ in frames):
        return []  # the interpreter's own start-up: site, and the .pth hooks in site-packages it runs
    handler_line = next(n for n, line in enumerate((ROOT / "solver.py").read_text().splitlines(), 1)
                        if "start(\"solver\")" in line)
    late = []
    for path, line in frames:
        if Path(path) in STARTING or (Path(path) == ROOT / "solver.py" and int(line) <= handler_line):
            continue
        if "__editable__" in path:  # an editable install's import finder, part of the import machinery
            continue
        if Path(path).is_relative_to(ROOT) or "site-packages" in path:
            late.append(f"{path}:{line}")
    return late


@pytest.mark.slow
@pytest.mark.parametrize("command, program", [(["-m", "solver"], "solver"),
                                              (["-m", "chainrule", "train"], "chainrule")])
def test_ctrl_c_at_any_moment_of_a_start_is_one_line_and_status_130(tmp_path, command, program):
    cfg = write(tmp_path, SLOW.replace("epochs = 10", "epochs = 500"))
    for delay in (0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 0.8, 1.2):
        proc = popen([sys.executable, *command, cfg, "--set", f"output.dir='{tmp_path / f'r{delay}'}'"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
        if proc.returncode == -signal.SIGINT and not err:  # so early that Python had not yet set up its handler
            continue
        if "Traceback" in err:  # the signal landed before the handler was in place: Python's own start-up
            # (site, runpy) or the few lines that install it; never while the framework or numpy import
            assert delay < 0.3 and not frames_after_the_handler(err), (delay, err)
        elif "continue with" in err:  # training had begun: it stopped after the epoch (see test_after_training)
            assert proc.returncode == 130 and delay >= 0.2, (delay, proc.returncode, err)
        else:
            assert proc.returncode == 130 and err.strip().splitlines() == [f"{program}: interrupted"], (delay, err)


def test_the_lock_is_released_by_the_system_when_its_process_ends(tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    holder = popen([sys.executable, "-c", "import sys, time; from chainrule.files import RunLock; "
                    f"from pathlib import Path; RunLock(Path({str(run_dir)!r})).acquire(); print('held', flush=True); "
                    "time.sleep(60)"],
                   stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(runs.ConfigError, match=f"is in use by process {holder.pid}"):
            RunLock(run_dir).acquire()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert (run_dir / ".lock").read_text() == str(holder.pid)  # left behind by the kill, but not locked
    with RunLock(run_dir):
        assert (run_dir / ".lock").read_text() == str(os.getpid())
    assert not (run_dir / ".lock").exists()


def test_history_files_are_appended_not_rewritten(tmp_path):
    run = train_to(tmp_path, 3, "r")
    path = tmp_path / "r" / "history.csv"
    inode, before = path.stat().st_ino, path.read_bytes()
    solver = run.solver
    solver.epoch += 1  # one more epoch's numbers, as training would add them
    for values in solver.epoch_lists().values():
        values.append(values[-1])
    solver.loss_history += solver.loss_history[-solver.steps_per_epoch:]
    assert history.append(tmp_path / "r", solver, 3) == 4
    assert path.stat().st_ino == inode and path.read_bytes().startswith(before)
    assert path.read_bytes()[len(before):].decode().startswith("4,")


def test_runs_started_at_once_never_share_a_folder(tmp_path):
    """The race behind a flaky four-process test: a folder another run had just made was still empty, and
    an empty folder counted as free. Sixteen threads claim folders next to one name, twenty rounds."""
    import threading

    for round_ in range(20):
        base, claimed, start = tmp_path / f"round{round_}" / "run", [], threading.Barrier(16)

        def claim(base=base, claimed=claimed, start=start):
            start.wait()
            claimed.append(runs.create_run_dir(base))

        threads = [threading.Thread(target=claim) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(claimed)) == 16, sorted(claimed)


def test_resuming_a_run_that_has_its_epochs_says_so_and_how_to_train_on(tmp_path, capsys):
    train_to(tmp_path, 4, "r")
    capsys.readouterr()
    assert runs.train(runs.setup(None, ["solver.epochs=3", "solver.verbose=false"], resume=tmp_path / "r")) == 0
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"solver: the run already has 4 epochs and solver.epochs is 3: nothing to train; to train on, "
                   f"resume with more: chainrule train --resume {tmp_path / 'r'} --set solver.epochs=6")
