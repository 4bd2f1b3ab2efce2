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
