"""Config runs in a subprocess, with the test user layers importable: run to the end, or SIGKILL part-way."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USER_ENV = {**os.environ, "PYTHONPATH": str(ROOT / "tests" / "userlayers")}


def default_signals() -> None:
    """In a child before it runs: Ctrl-C and SIGTERM back to their defaults. A shell that starts pytest in the
    background sets SIGINT to ignored, and children inherit that, so a test that signals them would fail."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def popen(args: list, **kwargs) -> subprocess.Popen:
    """A child process with the test user layers importable and the default signal handling, however pytest
    was started."""
    return subprocess.Popen([str(a) for a in args], env=USER_ENV, preexec_fn=default_signals, **kwargs)


def cli(*args, **kwargs) -> subprocess.CompletedProcess:
    """``python -m solver ARGS`` to the end, output captured."""
    return subprocess.run([sys.executable, "-m", "solver", *map(str, args)], capture_output=True, text=True,
                          env=USER_ENV, **kwargs)


def kill_after_epoch(config: Path, run_dir: Path, epoch: int, timeout: float = 60.0) -> int:
    """Run ``python -m solver config`` into ``run_dir``, SIGKILL it at ``epoch`` or later; the epoch it reached."""
    proc = subprocess.Popen([sys.executable, "-m", "solver", str(config), "--set", f"output.dir='{run_dir}'"],
                            env=USER_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = run_dir / "checkpoint.json"
        if meta.exists() and json.loads(meta.read_text() or "{}").get("epoch", 0) >= epoch:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return json.loads((run_dir / "checkpoint.json").read_text())["epoch"]


def run_killed_and_resumed(config: Path, folder: Path, epochs: int, kill_at: int = 3) -> tuple[Path, Path]:
    """The config run to its end in ``folder/full``, and again in ``folder/killed``, SIGKILLed at epoch
    ``kill_at`` or later and resumed to its end; returns both run folders."""
    full, killed = folder / "full", folder / "killed"
    result = cli(config, "--set", f"output.dir='{full}'")
    assert result.returncode == 0, result.stderr
    assert kill_at <= kill_after_epoch(config, killed, kill_at) < epochs
    result = cli(config, "--resume", killed)
    assert result.returncode == 0, result.stderr
    return full, killed


def assert_same_checkpoint_arrays(a: Path, b: Path) -> list[str]:
    """Every array of two runs' checkpoints equal, bit for bit; returns the array names."""
    import numpy as np

    with np.load(a / "checkpoint.npz") as x, np.load(b / "checkpoint.npz") as y:
        assert x.files == y.files
        for key in x.files:
            if key != "__meta__":
                np.testing.assert_array_equal(x[key], y[key], err_msg=key)
        return list(x.files)
