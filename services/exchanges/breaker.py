"""Circuit breaker per exchange: after ``failure_threshold`` consecutive temporary failures calls are refused
at once (:class:`ExchangeUnavailable`) for ``reset_seconds``; then ONE probe call is let through (half-open):
success closes the circuit, a temporary failure reopens it."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from services.exchanges.errors import ExchangeError, ExchangeTemporaryError, ExchangeUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


Listener = Callable[[str, BreakerState, BreakerState], Any]
"""``listener(name, old_state, new_state)``; may be sync or return an awaitable (scheduled as a task)."""


@dataclass(frozen=True, slots=True)
class BreakerStats:
    name: str
    state: BreakerState
    consecutive_failures: int
    calls: int  # calls let through (including probes)
    successes: int  # the exchange answered (including refusals such as an auth error)
    failures: int  # temporary failures
    rejected: int  # refused at once while open / half-open
    opened: int  # times the circuit opened
    retry_in: float  # seconds until a probe is allowed (0 unless open)


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        reset_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._listeners: list[Listener] = []
        self._tasks: set[asyncio.Future[Any]] = set()
        self.consecutive_failures = 0
        self.calls = 0
        self.successes = 0
        self.failures = 0
        self.rejected = 0
        self.opened = 0

    # -- observation -------------------------------------------------------------------------------------
    @property
    def state(self) -> BreakerState:
        """The current state. OPEN turns HALF_OPEN only when a call arrives after ``reset_seconds``."""
        return self._state

    def retry_in(self) -> float:
        if self._state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.reset_seconds - self._clock())

    def stats(self) -> BreakerStats:
        return BreakerStats(
            name=self.name,
            state=self._state,
            consecutive_failures=self.consecutive_failures,
            calls=self.calls,
            successes=self.successes,
            failures=self.failures,
            rejected=self.rejected,
            opened=self.opened,
            retry_in=self.retry_in(),
        )

    def on_change(self, listener: Listener) -> Callable[[], None]:
        """Subscribe to state transitions; returns a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    # -- use -----------------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """``async with breaker.guard(): ...`` Raises :class:`ExchangeUnavailable` at once when open.
        Inside, an :class:`ExchangeTemporaryError` counts as a failure, any other :class:`ExchangeError` as a
        success (the exchange answered); other exceptions (bugs, cancellation) count as neither."""
        probe = self._admit()
        try:
            yield
        except ExchangeUnavailable:
            self._neutral(probe)
            raise
        except ExchangeTemporaryError:
            self._failure(probe)
            raise
        except ExchangeError:
            self._success(probe)
            raise
        except BaseException:
            self._neutral(probe)
            raise
        else:
            self._success(probe)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        async with self.guard():
            return await fn()

    def reset(self) -> None:
        """Close the circuit by hand (admin action)."""
        self.consecutive_failures = 0
        self._probe_in_flight = False
        self._set(BreakerState.CLOSED)

    # -- state machine -----------------------------------------------------------------------------------
    def _admit(self) -> bool:
        """Let a call through (returns whether it is the half-open probe) or raise ExchangeUnavailable."""
        if self._state is BreakerState.OPEN:
            remaining = self._opened_at + self.reset_seconds - self._clock()
            if remaining > 0:
                self.rejected += 1
                raise ExchangeUnavailable(self.name, remaining)
            self._set(BreakerState.HALF_OPEN)
        if self._state is BreakerState.HALF_OPEN:
            if self._probe_in_flight:
                self.rejected += 1
                raise ExchangeUnavailable(self.name, 1)
            self._probe_in_flight = True
            self.calls += 1
            return True
        self.calls += 1
        return False

    def _success(self, probe: bool) -> None:
        self.successes += 1
        if probe:
            self._probe_in_flight = False
            self.consecutive_failures = 0
            self._set(BreakerState.CLOSED)
        elif self._state is BreakerState.CLOSED:
            self.consecutive_failures = 0
        # a late answer to a call started before the circuit opened does not close it

    def _failure(self, probe: bool) -> None:
        self.failures += 1
        if probe:
            self._probe_in_flight = False
            self._open()
        elif self._state is BreakerState.CLOSED:
            self.consecutive_failures += 1
            if self.consecutive_failures >= self.failure_threshold:
                self._open()

    def _neutral(self, probe: bool) -> None:
        if probe:
            self._probe_in_flight = False  # the next call probes instead

    def _open(self) -> None:
        self._opened_at = self._clock()
        self.opened += 1
        self._set(BreakerState.OPEN)

    def _set(self, new: BreakerState) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        log.info("circuit %s: %s -> %s", self.name, old.value, new.value)
        for listener in list(self._listeners):
            try:
                result = listener(self.name, old, new)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            except Exception:
                log.exception("circuit %s: listener failed", self.name)

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker({self.name!r}, state={self._state.value}, failures={self.consecutive_failures})"
        )
