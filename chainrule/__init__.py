"""chainrule's application layer: configs, data sources, run folders and checkpoints, trained models, and the
command lines (``chainrule train|predict|evaluate|sweep|gradcheck``, ``python -m solver``).

The framework itself is in the top-level packages ``layers``, ``losses``, ``optim`` and the module ``solver``.
"""

from chainrule.model import TrainedModel, load_run
from chainrule.sweeps import sweep

__all__ = ["TrainedModel", "load_run", "sweep"]
