"""chainrule's application layer: configs, data sources, run folders and checkpoints, trained models, and the
command lines (``chainrule train|predict|evaluate|sweep|gradcheck``, ``python -m solver``).

The framework itself is in the top-level packages ``layers``, ``losses``, ``optim`` and the module ``solver``.
``chainrule.load_run``, ``chainrule.TrainedModel`` and ``chainrule.sweep`` import their modules on first use,
so that ``import chainrule`` alone (the command lines' first step, where Ctrl-C must already be one line) takes
0.03 s rather than the 0.4-0.5 s of importing them (``python -c "import chainrule"``, measured).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing takes long enough for a Ctrl-C to land in it
if TYPE_CHECKING:
    from typing import Any

    from chainrule.sweeps import sweep
    from chainrule.trained.model import TrainedModel, load_run

__version__ = "0.1.0"  # the one place the version is written: setup.cfg reads it from here
__all__ = ["TrainedModel", "load_run", "sweep", "__version__"]
HOMES = {"TrainedModel": "chainrule.trained.model", "load_run": "chainrule.trained.model", "sweep": "chainrule.sweeps"}


def __getattr__(name: str) -> Any:
    if name not in HOMES:
        raise AttributeError(f"module 'chainrule' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(HOMES[name]), name)
    globals()[name] = value
    return value
