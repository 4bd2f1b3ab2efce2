"""Learning-rate schedules: the lr for an epoch (and, for a warmup, for a step) from the base lr. Registered by
class name and alias."""

from __future__ import annotations

import math
from typing import Any

from layers.registry import Registry

SCHEDULES = Registry("schedule")


class Schedule:
    """``schedule(base_lr, epoch) -> lr``, epoch counted from 0; the Solver asks ``at_step(base_lr, epoch, step)``
    before every optimizer step (step counted from 0 over the whole run), which is the epoch's lr unless a
    schedule changes within epochs (a warmup). A schedule that follows the validation loss takes it in
    ``observe`` after each epoch and keeps what it learned in ``state_dict()``, which the Solver saves and
    restores with its own."""

    aliases: tuple[str, ...] = ()

    def __init_subclass__(cls, register: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if register:
            SCHEDULES.add(cls)

    def __call__(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError

    def at_step(self, base_lr: float, epoch: int, step: int) -> float:
        return self(base_lr, epoch)

    def observe(self, val_loss: float) -> None:
        """The validation loss of the epoch just ended; nothing by default."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore by default."""


class ExponentialDecay(Schedule):
    """lr = base_lr * decay**epoch (the classic Solver's lr_decay, applied after each epoch)."""

    aliases = ("exponential",)

    def __init__(self, decay: float = 1.0) -> None:
        if not 0 < decay <= 1:
            raise ValueError(f"ExponentialDecay: decay must be in (0, 1], got {decay!r}")
        self.decay = float(decay)

    def __call__(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.decay**epoch


class StepDecay(Schedule):
    """lr = base_lr * gamma**(epoch // step_size)."""

    aliases = ("step",)

    def __init__(self, step_size: int = 10, gamma: float = 0.1) -> None:
        if not (isinstance(step_size, int) and step_size >= 1) or not 0 < gamma <= 1:
            raise ValueError(f"StepDecay: need step_size >= 1 and 0 < gamma <= 1, got {step_size!r}, {gamma!r}")
        self.step_size, self.gamma = step_size, float(gamma)

    def __call__(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class CosineDecay(Schedule):
    """lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * epoch / epochs)) / 2."""

    aliases = ("cosine",)

    def __init__(self, epochs: int = 10, min_lr: float = 0.0) -> None:
        if not (isinstance(epochs, int) and epochs >= 1) or min_lr < 0:
            raise ValueError(f"CosineDecay: need epochs >= 1 and min_lr >= 0, got {epochs!r}, {min_lr!r}")
        self.epochs, self.min_lr = epochs, float(min_lr)

    def __call__(self, base_lr: float, epoch: int) -> float:
        frac = min(epoch, self.epochs) / self.epochs
        return self.min_lr + (base_lr - self.min_lr) * (1 + math.cos(math.pi * frac)) / 2


class Warmup(Schedule):
    """A linear warmup over the first ``steps`` optimizer steps, lr = base_lr * (step + 1) / steps, then the
    schedule ``after`` (a Schedule, or a config table such as ``{ type = "cosine", epochs = 20 }``; none keeps
    base_lr), as PyTorch's ``LinearLR`` chained with another scheduler. Steps count over the whole run (the
    optimizer's), so a resumed run goes on where it was."""

    aliases = ("warmup",)

    def __init__(self, steps: int = 100, after: Schedule | dict[str, Any] | None = None) -> None:
        if not (isinstance(steps, int) and not isinstance(steps, bool) and steps >= 1):
            raise ValueError(f"Warmup: steps must be an integer >= 1, got {steps!r}")
        if isinstance(after, dict):
            spec = dict(after)
            after = SCHEDULES.lookup(str(spec.pop("type", "")))(**spec)
        if after is not None and not isinstance(after, Schedule):
            raise ValueError(f"Warmup: after must be a schedule or a table naming one, got {after!r}")
        self.steps, self.after = steps, after

    def __call__(self, base_lr: float, epoch: int) -> float:
        return base_lr if self.after is None else self.after(base_lr, epoch)

    def at_step(self, base_lr: float, epoch: int, step: int) -> float:
        if step < self.steps:
            return base_lr * (step + 1) / self.steps
        return self.after.at_step(base_lr, epoch, step) if self.after is not None else base_lr

    def observe(self, val_loss: float) -> None:
        if self.after is not None:
            self.after.observe(val_loss)

    def state_dict(self) -> dict[str, Any]:
        return {} if self.after is None else self.after.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.after is not None:
            self.after.load_state_dict(state)


class ReduceOnPlateau(Schedule):
    """Multiplies the lr by ``factor`` once the validation loss has not improved for more than ``patience``
    epochs, as PyTorch's ``ReduceLROnPlateau(mode="min", threshold_mode="rel")``: an epoch improves when its
    loss is below best * (1 - threshold); after a reduction, ``cooldown`` epochs pass before counting again;
    the lr never goes below ``min_lr``. Keeps the best loss, the counts and the current scale (``state_dict``).
    """

    aliases = ("plateau",)

    def __init__(self, factor: float = 0.1, patience: int = 10, threshold: float = 1e-4, cooldown: int = 0,
                 min_lr: float = 0.0) -> None:
        if not (isinstance(factor, (int, float)) and 0 < factor < 1):
            raise ValueError(f"ReduceOnPlateau: factor must be in (0, 1), got {factor!r}")
        for key, value in (("patience", patience), ("cooldown", cooldown)):
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
                raise ValueError(f"ReduceOnPlateau: {key} must be an integer >= 0, got {value!r}")
        if not (isinstance(threshold, (int, float)) and threshold >= 0) or not (isinstance(min_lr, (int, float))
                                                                               and min_lr >= 0):
            raise ValueError(f"ReduceOnPlateau: threshold and min_lr must be numbers >= 0, got {threshold!r}, "
                             f"{min_lr!r}")
        self.factor, self.patience, self.threshold, self.cooldown, self.min_lr = \
            float(factor), patience, float(threshold), cooldown, float(min_lr)
        self.best, self.bad_epochs, self.cooling, self.scale = math.inf, 0, 0, 1.0

    def __call__(self, base_lr: float, epoch: int) -> float:
        return max(base_lr * self.scale, self.min_lr)

    def observe(self, val_loss: float) -> None:
        if val_loss < self.best * (1 - self.threshold):
            self.best, self.bad_epochs = val_loss, 0
        else:
            self.bad_epochs += 1
        if self.cooling:
            self.cooling -= 1
            self.bad_epochs = 0
        if self.bad_epochs > self.patience:
            self.scale *= self.factor
            self.cooling, self.bad_epochs = self.cooldown, 0

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best if math.isfinite(self.best) else None, "bad_epochs": self.bad_epochs,
                "cooling": self.cooling, "scale": self.scale}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        best = state.get("best")
        self.best = math.inf if best is None else float(best)
        self.bad_epochs, self.cooling = int(state.get("bad_epochs", 0)), int(state.get("cooling", 0))
        self.scale = float(state.get("scale", 1.0))
