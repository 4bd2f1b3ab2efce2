"""The documentation: the site builds strictly, and every Python and shell example in the README and in docs/
runs as written, page by page in a temporary folder (with a copy of examples/), writing nothing into the
repository. A block that cannot run here says why in an HTML comment just above it (``<!-- not executed:
... -->``); the README's test command is the one that runs these tests."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.subprocess_runs import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"(?:<!--(?P<note>[^>]*)-->\n)?```(?P<lang>python|sh|bash)\n(?P<code>.*?)```", re.S)


def blocks(page: Path) -> list[tuple[str, str, str | None]]:
    """(language, code, the note above it or None) for each Python and shell block of a page."""
    return [(m["lang"], m["code"], m["note"].strip() if m["note"] else None) for m in FENCE.finditer(page.read_text())]


def runnable(page: Path) -> list[tuple[str, str]]:
    found = []
    for lang, code, note in blocks(page):
        if note and (note.startswith("not executed:") or note == "test-command"):
            continue
        found.append((lang, code))
    return found


INTRO_README = ("The guides and the API reference are in `docs/`, a site built with MkDocs (`pip install -e "
                "'.[docs]'`, then\n`mkdocs serve`; the tests build it with `mkdocs build --strict`):")
INTRO_SITE = ("The guides, and the API reference generated from the docstrings (`pip install -e '.[docs]'`, "
              "then `mkdocs\nserve` in the repository to read this site locally):")


def home_page(readme: str) -> str:
    """docs/index.md is the README with its links pointing inside the site."""
    text = readme.replace("](docs/", "](").replace("](examples/pictures/", "](images/")
    text = text.replace(INTRO_README, INTRO_SITE)
    api = ", ".join(f"[{name}](reference/{name}.md)" for name in ("layers", "losses", "optim", "solver", "chainrule"))
    return text.replace("\nchainrule is MIT-licensed", f"- API reference: {api}.\n\nchainrule is MIT-licensed")


def test_the_site_home_page_is_the_readme():
    assert (ROOT / "docs" / "index.md").read_text() == home_page((ROOT / "README.md").read_text())


def test_every_block_not_run_says_why():
    skipped = [(p.name, note) for p in PAGES for _, _, note in blocks(p) if note]
    assert skipped, "the README's test command at least"
    for page, note in skipped:
        assert note == "test-command" or re.match(r"not executed: \w.{10,}", note), (page, note)


def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            capture_output=True, text=True, cwd=ROOT, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    layers_page = (tmp_path / "site" / "reference" / "layers" / "index.html").read_text()
    assert layers_page.count("Conv2D") > 3
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", layers_page))  # constructors show their arguments
    assert re.search(r"Affine\(\s*in_features: int,\s*out_features: int,\s*\*,\s*init: str", text)
    solver_page = re.sub(r"<[^>]+>", "", (tmp_path / "site" / "reference" / "solver" / "index.html").read_text())
    assert re.search(r"batch_size: int\s*=\s*100", solver_page)


def repository_files() -> set[str]:
    ignored = {".git", ".venv", "runs", "site", ".pytest_cache", ".mypy_cache", ".ruff_cache", "__pycache__",
               ".hypothesis", "chainrule.egg-info"}
    found = set()
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in ignored]
        found.update(os.path.relpath(os.path.join(folder, f), ROOT) for f in files)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if runnable(p) and p.name != "index.md"],  # = the README's
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_examples_of_a_page_run_as_written(page, tmp_path, monkeypatch):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    (tmp_path / "benchmarks").symlink_to(ROOT / "benchmarks")
    before = repository_files()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MPLBACKEND": "Agg"}
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__"}
    for i, (lang, code) in enumerate(runnable(page)):
        where = f"{page.relative_to(ROOT)} block {i + 1}"
        if lang == "python":
            exec(compile(code, where, "exec"), namespace)
        else:
            result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", code], capture_output=True, text=True,
                                    env=env, cwd=tmp_path, timeout=600)
            assert result.returncode == 0, f"{where}:\n{code}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert repository_files() == before, "an example wrote into the repository"
