"""What the master controller watches: components that can check their own health (and maybe recover)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    UP = "up"
    DEGRADED = "degraded"  # works, partly: answered with an error, a job failing, a slow probe
    DOWN = "down"
    UNKNOWN = "unknown"  # not checked yet

    @property
    def passing(self) -> bool:
        """Up or degraded: the component serves requests."""
        return self in (Status.UP, Status.DEGRADED)


@dataclass(frozen=True, slots=True)
class Health:
    """The result of one check. ``detail`` is short, plain text without secrets (it reaches /healthz)."""

    status: Status
    detail: str = ""
    latency_ms: float | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def up(cls, detail: str = "", **info: Any) -> Health:
        return cls(Status.UP, detail, info=info)

    @classmethod
    def degraded(cls, detail: str, **info: Any) -> Health:
        return cls(Status.DEGRADED, detail, info=info)

    @classmethod
    def down(cls, detail: str, **info: Any) -> Health:
        return cls(Status.DOWN, detail, info=info)


class Component(ABC):
    """One thing the bot depends on.

    ``name`` is unique in a controller (also the ``component`` metrics label); ``kind`` groups components
    (database, redis, telegram, exchange, llm, scheduler); ``label`` is how people call it; ``essential``
    components decide whether the process is healthy (/healthz answers 503 when one is down).
    A component that can repair itself sets ``recoverable = True`` and implements :meth:`recover`.
    """

    name: str
    kind: str
    label: str
    essential: bool = False
    recoverable: bool = False

    @abstractmethod
    async def check(self) -> Health:
        """Probe the component. Raising counts as down; the controller bounds the time it may take."""

    async def recover(self) -> None:
        """Try to repair the component (reconnect, reset a client). Only called when ``recoverable``;
        a component without a way to repair itself says so."""
        raise RuntimeError(f"{self.label} has no recovery")

    def describe(self) -> Mapping[str, Any]:
        """Live facts shown with the last check (a circuit breaker's state, the scheduler's jobs)."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
