"""Whether a Solver's saved state fits a Solver: checked whole before anything is set (``Solver.load_state_dict``)."""

from __future__ import annotations

from typing import Any

from numpy.typing import NDArray


def check_state(solver: Any, scalars: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> None:
    """A Solver state fits ``solver``: every key present, the epoch a count, the history as long as the epochs,
    the best arrays named and shaped as the model's, the optimizer's state on the model's parameters, the same
    Generators."""
    s = solver.task.score_name
    wanted = ("epoch", "optimizer", "rng", "sample_rng", "generators", "best_epoch", f"best_val_{s}",
              "best_val_loss", "bad_epochs", "stop_reason", "schedule", "history")
    missing = [k for k in wanted if k not in scalars]
    if missing:
        raise ValueError(f"Solver state: missing {', '.join(missing)} (a {solver.task.name} run's state has "
                         f"{', '.join(wanted)})")
    epoch = scalars["epoch"]
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise ValueError(f"Solver state: epoch {epoch!r}; expected a whole number of epochs")
    history, columns = scalars["history"], ["loss", *solver.epoch_lists()]
    lengths = {c: len(history[c]) if isinstance(history.get(c), list) else None for c in columns}
    if any(lengths[c] != epoch for c in columns[1:]) or (lengths["loss"] or 0) < epoch * solver.steps_per_epoch:
        raise ValueError(f"Solver state: epoch {epoch} but a history of lengths {lengths} (expected {epoch} per "
                         f"column and {epoch * solver.steps_per_epoch} step losses)")
    model = solver.model
    for kind, prefix, target in (("best parameters", "best/", model.params),
                                 ("best buffers", "best_buffer/", model.buffers)):
        saved = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        if set(saved) != set(target) or any(saved[k].shape != v.shape for k, v in target.items()):
            raise ValueError(f"Solver state: its {kind} do not match the model's (names or shapes differ)")
    for key, value in arrays.items():
        name = key.split("/", 2)[-1]
        if key.startswith("optim/") and (name not in model.params or value.shape != model.params[name].shape):
            raise ValueError(f"Solver state: optimizer state {key!r} matches no parameter of the model")
    if set(scalars["generators"]) != set(model.generators()):
        raise ValueError(f"Solver state: Generators {sorted(scalars['generators'])} do not match the model's "
                         f"{sorted(model.generators())}")
