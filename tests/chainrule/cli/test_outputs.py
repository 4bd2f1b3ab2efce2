"""Outputs never replace what is not theirs: --out through a link writes the linked file, a name ending in /
is a folder, a device or any other non-regular file is refused, and what a killed write left is cleaned up."""

import contextlib
import io
import os
from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import main


def chainrule(*args):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([str(a) for a in args])
    return code, err.getvalue()


@pytest.fixture
def inputs(tmp_path):
    np.savez(tmp_path / "new.npz", X=np.random.default_rng(0).uniform(-1, 1, (4, 2)))
    return tmp_path / "new.npz"


def test_out_through_a_link_writes_the_linked_file_and_keeps_the_link(finished_run, inputs, tmp_path):
    (tmp_path / "real.csv").write_text("old\n")
    (tmp_path / "link.csv").symlink_to(tmp_path / "real.csv")
    assert chainrule("predict", finished_run, inputs, "--out", tmp_path / "link.csv")[0] == 0
    assert (tmp_path / "link.csv").is_symlink()
    assert (tmp_path / "real.csv").read_text().startswith("index,label")


def test_a_trailing_slash_names_a_folder(finished_run, inputs, tmp_path):
    (tmp_path / "out").mkdir()
    assert chainrule("predict", finished_run, inputs, "--out", f"{tmp_path / 'out'}/")[0] == 0
    assert (tmp_path / "out" / "predictions.csv").is_file()
    code, err = chainrule("predict", finished_run, inputs, "--out", f"{tmp_path / 'newdir'}/")
    assert code == 2 and "names a folder (it ends in /), which does not exist" in err
    assert not (tmp_path / "newdir").exists()


def test_a_device_or_a_pipe_is_refused(finished_run, inputs, tmp_path):
    os.mkfifo(tmp_path / "pipe")
    for target in (Path(os.devnull), tmp_path / "pipe"):
        code, err = chainrule("predict", finished_run, inputs, "--out", target)
        assert code == 2 and "is not a regular file" in err and len(err.strip().splitlines()) == 1
    assert Path(os.devnull).is_char_device() and (tmp_path / "pipe").is_fifo()


def test_what_a_killed_write_left_is_removed(finished_run, inputs, tmp_path):
    stale = tmp_path / ".p.csv.abc123.tmp"
    stale.write_bytes(b"x" * 1000)
    other = tmp_path / ".other.csv.abc123.tmp"
    other.write_bytes(b"y")
    assert chainrule("predict", finished_run, inputs, "--out", tmp_path / "p.csv")[0] == 0
    assert not stale.exists() and other.exists()  # only the temporaries of the file being written


def test_evaluate_is_refused_while_another_process_trains_the_run(finished_run):
    from chainrule.files import RunLock

    before = sorted(p.name for p in finished_run.iterdir())
    with RunLock(finished_run):  # as a training process holds it
        code, err = chainrule("evaluate", finished_run)
    assert code == 2 and "is in use by" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in finished_run.iterdir()) == before  # no report of a checkpoint about to change


def test_evaluate_on_a_read_only_run_prints_its_report_and_says_what_it_could_not_write(finished_run, monkeypatch,
                                                                                     capsys):
    from chainrule.cli import commands
    from chainrule.files import RunLock

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(RunLock, "acquire", refused)  # what a read-only folder does (root ignores chmod)
    monkeypatch.setattr(commands, "write_json", refused)
    assert main(["evaluate", str(finished_run)]) == 0
    out, err = capsys.readouterr()
    assert "accuracy" in out and "wrote" not in out
    assert "could not write into" in err and "Permission denied" in err and "printed, not saved" in err
