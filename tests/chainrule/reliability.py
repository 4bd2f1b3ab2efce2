"""What the reliability tests share: a small config, the Solver's command line run in-process, and checks that
an error is one clean line and that nothing on disk changed."""

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np
import tomli_w
from hypothesis import HealthCheck, settings

from chainrule.cli import solver_main

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



def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def fresh(tmp_path: Path) -> Path:
    """A new folder per generated example (hypothesis reuses the function's tmp_path)."""
    return Path(tempfile.mkdtemp(dir=tmp_path))
