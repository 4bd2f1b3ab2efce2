"""A finished run, made once per module, for the tests that probe what a trained run reads."""

import pytest

from tests.chainrule.reliability import BASE, run, write_config


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("finished")
    cfg = write_config(folder, BASE)
    assert run(cfg, "--set", f"output.dir='{folder / 'run'}'")[0] == 0
    return folder / "run"
