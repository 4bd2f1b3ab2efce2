"""The Optimizer contract and its registry."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from layers.registry import Registry

OPTIMIZERS = Registry("optimizer")
Params = dict[str, NDArray[np.floating]]


class Optimizer:
    """Updates parameters in place: ``step(params, grads)`` with dicts keyed by qualified name.

    Per-parameter state (velocities, moment estimates) lives in ``state[name]``,
    a dict of arrays shaped like the parameter. ``lr`` may be changed between
    steps (the Solver's schedule does). Subclasses register by class name and aliases.
    """

    aliases: tuple[str, ...] = ()
    slots: tuple[str, ...] = ()  # names of the per-parameter state arrays

    def __init_subclass__(cls, register: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if register:
            OPTIMIZERS.add(cls)

    def __init__(self, lr: float) -> None:
        check_positive(self, lr=lr)
        self.lr = float(lr)
        self.t = 0
        self.state: dict[str, dict[str, NDArray[np.floating]]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr})"

    def step(self, params: Params, grads: Params) -> None:
        self.t += 1
        for name, p in params.items():
            self.update(p, grads[name], self.slots_for(name, p))

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
        return {"lr": self.lr, "t": self.t}, arrays

    def load_state_dict(self, scalars: dict[str, Any], arrays: dict[str, NDArray[np.floating]]) -> None:
        self.lr, self.t = float(scalars["lr"]), int(scalars["t"])
        self.state = {}
        for key, a in arrays.items():
            slot, name = key.split("/", 1)
            self.state.setdefault(name, {})[slot] = np.array(a)


def check_positive(owner: object, **values: float) -> None:
    for key, v in values.items():
        if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
            raise ValueError(f"{type(owner).__name__}: {key} must be a positive number, got {v!r}")


def check_fraction(owner: object, **values: float) -> None:
    for key, v in values.items():
        if not (isinstance(v, (int, float)) and 0 <= v < 1):
            raise ValueError(f"{type(owner).__name__}: {key} must be in [0, 1), got {v!r}")
