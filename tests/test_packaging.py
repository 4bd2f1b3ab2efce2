"""The distribution: a wheel and an sdist build from the tree, install into a fresh environment, and run the main
job there; one version, a license, type information."""

import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import chainrule
from tests.subprocess_runs import ROOT

pytestmark = pytest.mark.slow


def fresh_environment(folder: Path) -> Path:
    """A new virtual environment whose only packages beyond the standard library are this environment's
    dependencies (numpy, scipy, ...), seen through a .pth file: chainrule is not importable in it until it is
    installed there. Returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    assert subprocess.run([python, "-c", "import chainrule"], capture_output=True, cwd=folder).returncode == 1
    return python


def pip(*args: object) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *map(str, args)],
                   check=True)


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_the_distribution_installs_into_a_fresh_environment_and_trains(kind, tmp_path):
    dist = tmp_path / "dist"
    if kind == "wheel":
        pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", dist, ROOT)
        (built,) = dist.glob("chainrule-*.whl")
        names = zipfile.ZipFile(built).namelist()
        assert {f"{p}/py.typed" for p in ("layers", "losses", "optim", "chainrule")} <= set(names)
        assert "solver.py" in names and any(n.endswith(".dist-info/licenses/LICENSE") or
                                            n.endswith(".dist-info/LICENSE") for n in names), names
    else:
        subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta; "
                        f"build_meta.build_sdist({str(dist)!r})"], cwd=ROOT, check=True, capture_output=True)
        (built,) = dist.glob("chainrule-*.tar.gz")
        names = tarfile.open(built).getnames()
        assert any(n.endswith("/LICENSE") for n in names) and any(n.endswith("/README.md") for n in names)
    assert built.name.startswith(f"chainrule-{chainrule.__version__}")
    python = fresh_environment(tmp_path / "env")
    pip("--python", python, "install", "--no-deps", "--no-build-isolation", built)
    where = subprocess.run([python, "-c", "import chainrule, solver; print(chainrule.__file__, solver.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert str(ROOT) not in where and str(tmp_path / "env") in where
    chainrule_script = tmp_path / "env" / "bin" / "chainrule"
    version = subprocess.run([chainrule_script, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"chainrule {chainrule.__version__}"
    result = subprocess.run([chainrule_script, "train", ROOT / "examples" / "spiral.toml", "--set", "solver.epochs=3",
                             "--set", "solver.verbose=false", "--set", f"output.dir='{tmp_path / 'run'}'"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "checkpoint.npz").exists() and "best_val_acc" in result.stdout
