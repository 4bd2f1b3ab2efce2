"""Learning-rate schedules: the lr for an epoch from the base lr. Registered by class name and alias."""

from __future__ import annotations

import math
from typing import Any

from layers.registry import Registry

SCHEDULES = Registry("schedule")


class Schedule:
    """``schedule(base_lr, epoch) -> lr``, epoch counted from 0."""

    aliases: tuple[str, ...] = ()

    def __init_subclass__(cls, register: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if register:
            SCHEDULES.add(cls)

    def __call__(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError


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
