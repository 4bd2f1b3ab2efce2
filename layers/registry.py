"""Registries: a name -> class table per kind (layers, losses, optimizers, schedules), filled by subclassing.

A class registers under its class name and under each name in its ``aliases``; ``lookup`` finds it by either
and, for a name it does not know, says which known names come close ("did you mean 'ReLU'?"). This module is
the bottom floor: ``layers``, ``losses`` and ``optim`` all register through it.
"""

from __future__ import annotations

import difflib
from typing import Any


class Registry(dict[str, type]):
    """The registered classes of one ``kind`` ("layer", "loss", ...), keyed by class name."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def add(self, cls: type) -> None:
        """Register ``cls`` by class name; a different class may not take a used name."""
        name = cls.__name__
        old = self.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(
                f"{self.kind} name {name!r} is already registered by {old.__module__}.{old.__qualname__}; "
                f"rename {cls.__module__}.{cls.__qualname__} or pass register=False"
            )
        self[name] = cls

    def names(self) -> list[str]:
        """Every name a lookup accepts: class names and aliases, sorted."""
        return sorted({*self, *(alias for cls in self.values() for alias in getattr(cls, "aliases", ()))})

    def lookup(self, name: Any) -> type:
        """The class registered as ``name`` (class name or alias), or a KeyError naming close matches."""
        if isinstance(name, str):
            if name in self:
                return self[name]
            for cls in self.values():
                if name in getattr(cls, "aliases", ()):
                    return cls
        known = self.names()
        raise KeyError(f"unknown {self.kind} {name!r}; {did_you_mean(str(name), known)}known: {', '.join(known)}")


def did_you_mean(name: str, known: list[str]) -> str:
    """'did you mean 'X'? ' for the known names closest to ``name`` (case ignored), or ''."""
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3)
    return f"did you mean {' or '.join(repr(by_lower[c]) for c in close)}? " if close else ""
