"""The gradient checker's command line: ``python -m layers.gradcheck`` and ``chainrule gradcheck`` on the
built-ins, on user modules by name or file, its options and one-line errors, and a config's ``--gradcheck``."""

import json
import re
import subprocess
import sys

import pytest

from layers import REGISTRY
from tests.subprocess_runs import ROOT

BUILTINS = sorted(name for name, cls in REGISTRY.items() if cls.__module__.startswith("layers."))


ACTIVATION = """
import numpy as np
from layers import Layer


class Cube(Layer):
    \"\"\"out = x ** 3\"\"\"

    def forward(self, x):
        self.x = x
        return x ** 3

    def backward(self, dout):
        return 3 * self.x ** 2 * dout
"""


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "layers.gradcheck", *args], capture_output=True, text=True,
                          cwd=ROOT / "tests" / "userlayers")


def row(stdout, layer, tensor):
    return next(line for line in stdout.splitlines() if re.match(rf"{layer}\s+\(4, 3\)\s+{tensor}\s", line))


@pytest.fixture(scope="module")
def with_builtins(tmp_path_factory):
    """One run of every built-in and a module's broken layers, with its JSON (the built-ins' full run is the
    slowest thing the CLI does: the tests below share it)."""
    path = tmp_path_factory.mktemp("gradcheck") / "r.json"
    result = run_cli("broken_layers", "--builtins", "--json", str(path))
    return result, json.loads(path.read_text())


def test_cli_passes_builtin_layers_and_losses(with_builtins):
    result, data = with_builtins
    builtins = [d for d in data if d["layer"].split(" ")[0] in {*BUILTINS, "SoftmaxCrossEntropy", "SVMLoss",
                                                                "MSELoss", "HuberLoss"}]
    assert builtins and all(d["passed"] for d in builtins), [d["layer"] for d in builtins if not d["passed"]]
    assert {d["layer"].split(" ")[0] for d in builtins} >= set(BUILTINS)
    assert "(1, 2, 3)" in result.stdout  # a batch of 1, multi-dimensional
    assert re.search(r"^SoftmaxCrossEntropy\s+\(3, 4\)\s+dscores\s.*pass$", result.stdout, re.M)


def test_cli_checks_only_the_named_module_and_says_why_it_failed():
    result = run_cli("broken_layers")
    assert result.returncode == 1
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("4 layers, 0 losses, 14 cases")  # 8, and 6 with parameters drawn
    assert last.endswith("FAILED: NeedsArguments, WrongInputGradScale, WrongParamGradScale")
    assert "Affine" not in result.stdout
    assert row(result.stdout, "GoodScale", "dx").endswith("pass")
    assert row(result.stdout, "WrongInputGradScale", "dx").endswith("FAIL: 8 of 12 entries differ, the first at (0, 0)")
    assert row(result.stdout, "WrongParamGradScale", "dx").endswith("pass")
    assert row(result.stdout, "WrongParamGradScale", "w").endswith("FAIL: 1 of 3 entries differ, the first at (0,)")
    needs = next(line for line in result.stdout.splitlines() if line.startswith("NeedsArguments"))
    assert "cannot build an example (TypeError" in needs and "define a classmethod example(cls, rng, batch=3)" in needs


def test_cli_builtins_flag_adds_the_builtins_and_json_has_every_report(with_builtins):
    result, data = with_builtins
    assert f"{len(BUILTINS) + 4} layers, 4 losses" in result.stdout
    cases = int(re.search(r"(\d+) cases", result.stdout).group(1))
    assert len(data) == cases > 2 * (len(BUILTINS) + 4 + 2)  # and the cases with parameters drawn
    assert {"seed", "batch", "layer", "checks", "problems", "passed"} <= set(data[0])
    assert not next(d for d in data if d["layer"] == "WrongParamGradScale")["passed"]


def test_cli_seeds_repeats_and_prints_only_failures():
    once = run_cli(str(ROOT / "examples" / "custom" / "mylayers.py"))  # a module's layers: the built-ins' run
    result = run_cli(str(ROOT / "examples" / "custom" / "mylayers.py"), "--seeds", "3")  # is its own test
    assert once.returncode == result.returncode == 0, result.stdout
    assert "3 seeds" in result.stdout and "result" not in result.stdout  # no table when nothing failed
    cases = [int(re.search(r"(\d+) cases?", out.stdout).group(1)) for out in (once, result)]
    assert cases[1] == 3 * cases[0] > 0


def test_cli_unknown_module_is_one_line_and_status_2():
    result = run_cli("no_such_module_xyz")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "python -m layers.gradcheck: error: cannot import module 'no_such_module_xyz': ModuleNotFoundError: "
        "No module named 'no_such_module_xyz'"]


def test_cli_names_the_module_whose_import_failed(tmp_path):
    (tmp_path / "boom_module_xyz.py").write_text("raise RuntimeError('boom at import')\n")
    result = subprocess.run([sys.executable, "-m", "layers.gradcheck", "boom_module_xyz"], capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "python -m layers.gradcheck: error: cannot import module 'boom_module_xyz': RuntimeError: boom at import"]


def test_solver_gradcheck_flag_checks_the_config_model():
    result = subprocess.run([sys.executable, "-m", "solver", "examples/spiral.toml", "--gradcheck"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(
        "Sequential + SVMLoss + L2(0.001) on 4 rows of the training data, float64: 5 tensors, all passed")


@pytest.mark.parametrize("args, message", [
    (["--seeds", "abc"], "python -m layers.gradcheck: error: argument --seeds: invalid int value: 'abc' (see --help)"),
    (["--seeds", "0"], "python -m layers.gradcheck: error: --seeds must be at least 1"),
    (["--mode", "test"], "python -m layers.gradcheck: error: argument --mode: invalid choice: 'test' "),
    (["--json", "/nonexistent-dir/r.json"],
     "python -m layers.gradcheck: error: --json '/nonexistent-dir/r.json': No such file"),
])
def test_cli_bad_arguments_are_one_line_and_status_2(args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines


def test_cli_help_shows_examples():
    result = run_cli("--help")
    assert result.returncode == 0 and "python -m layers.gradcheck mylayers" in result.stdout


def test_chainrule_gradcheck_takes_a_module_file_and_says_its_own_name(tmp_path):
    (tmp_path / "mywork").mkdir()
    (tmp_path / "mywork" / "myact.py").write_text(ACTIVATION)
    result = subprocess.run([sys.executable, "-m", "chainrule", "gradcheck", "mywork/myact.py"], capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "1 layer, 0 losses, 2 cases, 2 tensors checked: all passed"
    help_text = subprocess.run([sys.executable, "-m", "chainrule", "gradcheck", "--help"], capture_output=True,
                               text=True, cwd=tmp_path).stdout
    assert help_text.startswith("usage: chainrule gradcheck") and "chainrule gradcheck mywork/myact.py" in help_text
    missing = subprocess.run([sys.executable, "-m", "chainrule", "gradcheck", "mywork/nothere.py"],
                             capture_output=True, text=True, cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.strip().splitlines() == [
        "chainrule gradcheck: error: cannot import module 'mywork/nothere.py': FileNotFoundError: "
        "no file 'mywork/nothere.py'"]


def test_the_summary_counts_in_words():
    from chainrule.cli.gradcheck import count

    assert [count(1, "layer"), count(2, "layer"), count(1, "loss", "losses"), count(0, "loss", "losses")] == [
        "1 layer", "2 layers", "1 loss", "0 losses"]
