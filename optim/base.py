"""The Optimizer contract and its registry."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from layers.registry import Registry

OPTIMIZERS = Registry("optimizer")
Params = dict[str, NDArray[np.floating]]


def global_norm(grads: Params) -> float:
    """The L2 norm of all gradients together; where float32 squares overflow, taken in float64 with each
    tensor scaled by its largest entry first, so a large but finite gradient is clipped, not dropped."""
    with np.errstate(over="ignore"):
        norm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values())))
    if np.isfinite(norm) or not all(np.isfinite(g).all() for g in grads.values()):
        return norm
    total = 0.0
    for g in grads.values():
        top = float(np.abs(g).max(initial=0))
        if top:
            scaled = g.astype(np.float64) / top
            total += top * top * float(np.vdot(scaled, scaled))
    return float(np.sqrt(total))


class Optimizer:
    """Updates parameters in place: ``step(params, grads)`` with dicts keyed by qualified name.

    Per-parameter state (velocities, moment estimates) lives in ``state[name]``,
    a dict of arrays shaped like the parameter. ``lr`` is the rate the next step
    uses; ``initial_lr`` the rate the optimizer was made with, from which the Solver's
    schedule sets ``lr`` each epoch (as PyTorch's schedulers keep ``initial_lr``).
    With ``clip_norm``, every optimizer first scales all gradients together so their
    global L2 norm is at most ``clip_norm``
    (``clipped`` counts the steps it did). Subclasses register by class name and aliases.
    """

    aliases: tuple[str, ...] = ()
    slots: tuple[str, ...] = ()  # names of the per-parameter state arrays

    def __init_subclass__(cls, register: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if register:
            OPTIMIZERS.add(cls)

    def __init__(self, lr: float, clip_norm: float | None = None) -> None:
        check_positive(self, lr=lr)
        if clip_norm is not None:
            check_positive(self, clip_norm=clip_norm)
        self.lr = self.initial_lr = float(lr)
        self.clip_norm = None if clip_norm is None else float(clip_norm)
        self.t = 0
        self.clipped = 0  # steps whose gradients were scaled down to clip_norm
        self.grad_norm: float | None = None  # with clip_norm: the last step's global gradient norm, unclipped
        self.state: dict[str, dict[str, NDArray[np.floating]]] = {}

    def __repr__(self) -> str:
        clip = "" if self.clip_norm is None else f", clip_norm={self.clip_norm}"
        return f"{type(self).__name__}(lr={self.lr}{clip})"

    def step(self, params: Params, grads: Params) -> None:
        self.t += 1
        scale = self.clip_scale(grads) if self.clip_norm is not None else None
        for name, p in params.items():
            g = grads[name] if scale is None else grads[name] * scale
            self.update(p, g, self.slots_for(name, p))

    def clip_scale(self, grads: Params) -> Any:
        """With ``clip_norm``: the factor that brings the global L2 norm of all gradients down to it (PyTorch's
        ``clip_grad_norm_``: clip_norm / (norm + 1e-6)), or None when the norm is within it."""
        assert self.clip_norm is not None
        norm = self.grad_norm = global_norm(grads)
        if not norm > self.clip_norm:  # NaN too: a non-finite loss is the Solver's to report
            return None
        self.clipped += 1
        dtype = next(iter(grads.values())).dtype
        return dtype.type(self.clip_norm / (norm + 1e-6))

    def update(self, p: NDArray[np.floating], g: NDArray[np.floating], state: dict[str, Any]) -> None:
        raise NotImplementedError

    def slots_for(self, name: str, p: NDArray[np.floating]) -> dict[str, NDArray[np.floating]]:
        state = self.state.get(name)
        if state is None:
            state = self.state[name] = {slot: np.zeros_like(p) for slot in self.slots}
        return state

    def state_dict(self) -> tuple[dict[str, Any], dict[str, NDArray[np.floating]]]:
        """Scalars (JSON-able) and arrays keyed "slot/param", for checkpoints."""
        arrays = {f"{slot}/{name}": a for name, st in self.state.items() for slot, a in st.items()}
        return {"lr": self.lr, "initial_lr": self.initial_lr, "t": self.t, "clipped": self.clipped}, arrays

    def load_state_dict(self, scalars: dict[str, Any], arrays: dict[str, NDArray[np.floating]]) -> None:
        self.lr, self.initial_lr = float(scalars["lr"]), float(scalars["initial_lr"])
        self.t, self.clipped = int(scalars["t"]), int(scalars["clipped"])
        self.state = {}
        for key, a in arrays.items():
            slot, name = key.split("/", 1)
            self.state.setdefault(name, {})[slot] = np.array(a)


def check_positive(owner: object, **values: float) -> None:
    for key, v in values.items():
        if not (isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and v > 0):
            raise ValueError(f"{type(owner).__name__}: {key} must be a positive number, got {v!r}")


def check_fraction(owner: object, **values: float) -> None:
    for key, v in values.items():
        if not (isinstance(v, (int, float)) and 0 <= v < 1):
            raise ValueError(f"{type(owner).__name__}: {key} must be in [0, 1), got {v!r}")
