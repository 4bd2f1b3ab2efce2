"""User code: the modules a config names (``model.imports``), and those the gradient checker is given by name or
file. This module alone changes ``sys.path``, and only while it imports.

A config's modules are imported once per process at each entry point that reads a config (a run's setup, a
loaded run, a sweep's plan and its trials, ``--gradcheck``); the builders in ``chainrule.build`` then find
their classes in the registries.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from chainrule.config import ConfigError


@contextmanager
def searched(*folders: str) -> Iterator[None]:
    """``folders`` first on ``sys.path`` for the block, then ``sys.path`` as it was."""
    saved = list(sys.path)
    sys.path[:0] = list(folders)
    try:
        yield
    finally:
        sys.path[:] = saved


def import_config_modules(cfg: dict[str, Any]) -> None:
    """Import the modules a (self-contained) config names in ``model.imports``, looked for in its
    ``model.import_dirs`` and then the working directory. A config with imports runs code, like a Python
    script; one without runs none. A module that cannot be imported, or whose code fails, is a ConfigError
    naming it."""
    model = cfg.get("model", {})
    names = model.get("imports", [])
    if not names:
        return
    with searched(*model.get("import_dirs", []), ""):
        for i, name in enumerate(names):
            try:
                importlib.import_module(name)
            except ImportError as e:
                raise ConfigError(f"model.imports[{i}]: cannot import {name!r}: {e}") from None
            except Exception as e:  # the module's own code failed: name it and where
                where = f" ({e.filename}, line {e.lineno})" if isinstance(e, SyntaxError) else ""
                raise ConfigError(f"model.imports[{i}]: importing {name!r} raised {type(e).__name__}{where}: "
                                  f"{str(e).splitlines()[0] if str(e) else ''}") from None


def import_named(name: str) -> ModuleType:
    """A module by name, importable from the working directory (``mylayers``, ``mywork.mylayers``)."""
    with searched(""):
        return importlib.import_module(name)


def import_file(path: Path) -> ModuleType:
    """A module from its file, under its file name; its folder is searched for the modules it imports."""
    if not path.is_file():
        raise FileNotFoundError(f"no file {str(path)!r}")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{str(path)!r} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    try:
        with searched(str(path.resolve().parent)):
            spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[path.stem]
        raise
    return module
