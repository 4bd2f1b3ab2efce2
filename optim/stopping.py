"""Why training ended before its last epoch: the kinds of stop, as a type that carries each one's exit status."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Stop(enum.Enum):
    """Why training ended before its last epoch, with the exit status a command reports for it."""

    EARLY = "early stop"
    MEDIAN = "median stop"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    TERMINATED = "terminated"

    @property
    def exit_code(self) -> int:
        return {Stop.DIVERGED: 1, Stop.INTERRUPTED: 130, Stop.TERMINATED: 143}.get(self, 0)

    @property
    def by_signal(self) -> bool:
        return self in (Stop.INTERRUPTED, Stop.TERMINATED)


@dataclass(frozen=True)
class StopReason:
    """A stop's kind and its message in words ("early stop: no better validation accuracy for 5 epochs")."""

    kind: Stop
    message: str

    def __str__(self) -> str:
        return self.message

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind.value, "message": self.message}

    @classmethod
    def from_json(cls, value: dict[str, str] | None) -> StopReason | None:
        """The saved form (``as_json``) back; None for none."""
        return None if value is None else cls(Stop(value["kind"]), str(value["message"]))
