"""The master controller: a registry of components, their periodic checks, the state of each one with
transition detection, and recovery.

State per component. Every check gives a raw result (up, degraded or down). The *confirmed* status, the
one shown, alerted and exported, changes with hysteresis so a flapping component does not flood admins:

* up or degraded -> down after ``down_after`` consecutive failing checks (default 2);
* down -> up or degraded after ``up_after`` consecutive passing checks (default 2);
* unknown (never checked) -> up or degraded at the first passing check, -> down like an up component;
* up <-> degraded at once (both serve requests; no alert).

A component alternating between failing and passing checks therefore keeps its confirmed status.
Evidence from elsewhere counts at once: an exchange's circuit breaker opening (it has already seen its own
run of consecutive failures) confirms the exchange down, and its half-open probe succeeding confirms it up.

Each change between down and not down is one :class:`Transition`, given to the ``on_transition`` callbacks
once, in order. A check that raises or does not answer within ``check_timeout`` seconds is a failing check.
A failing component that can recover gets a recovery attempt followed by one more check, at most once per
backoff delay (``recovery_base`` seconds, doubling up to ``recovery_max``, reset when it passes again).
Checks run concurrently; callers arriving while a round runs share its result.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.controller.base import Component, Health, Status
from services.controller.jobs import JobTracker
from services.exchanges.breaker import BreakerState
from services.exchanges.registry import ExchangeRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Transition:
    """A component went down (``new`` is down) or came back (``old`` was down)."""

    name: str
    kind: str
    label: str
    old: Status
    new: Status
    health: Health
    at: datetime
    down_for: timedelta | None = None  # on recovery: how long it was down

    @property
    def recovered(self) -> bool:
        return self.old is Status.DOWN and self.new.passing


@dataclass(frozen=True, slots=True)
class ComponentView:
    name: str
    kind: str
    label: str
    essential: bool
    status: Status  # confirmed
    last_status: Status  # the latest check's own result
    detail: str
    latency_ms: float | None
    checked_at: datetime | None
    since: datetime | None  # when the confirmed status began
    consecutive_failures: int
    checks: int
    failures: int
    recovery_attempts: int
    info: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "status": self.status.value,
            "last_status": self.last_status.value,
            "essential": self.essential,
            "detail": self.detail,
            "latency_ms": self.latency_ms,
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
            "since": self.since.isoformat() if self.since else None,
            "consecutive_failures": self.consecutive_failures,
            **dict(self.info),
        }


@dataclass(frozen=True, slots=True)
class Snapshot:
    components: tuple[ComponentView, ...]
    checked_at: datetime | None  # the end of the last round of checks

    def get(self, name: str) -> ComponentView | None:
        return next((c for c in self.components if c.name == name), None)

    @property
    def down(self) -> tuple[ComponentView, ...]:
        return tuple(c for c in self.components if c.status is Status.DOWN)

    @property
    def not_up(self) -> tuple[ComponentView, ...]:
        """Components confirmed down or degraded."""
        return tuple(c for c in self.components if c.status in (Status.DOWN, Status.DEGRADED))

    @property
    def essential_up(self) -> bool:
        return not any(c.essential and c.status is Status.DOWN for c in self.components)

    def to_dict(self) -> dict[str, Any]:
        return {c.name: c.to_dict() for c in self.components}


@dataclass
class _State:
    component: Component
    status: Status = Status.UNKNOWN
    last: Health | None = None
    checked_at: datetime | None = None
    since: datetime | None = None
    down_since: datetime | None = None
    failing: int = 0
    passing: int = 0
    checks: int = 0
    failures: int = 0
    recovery_attempts: int = 0
    next_recovery: float = 0.0
    last_recovery_error: str | None = field(default=None)


TransitionCallback = Callable[[Transition], Awaitable[Any] | Any]
CheckCallback = Callable[[Snapshot], Any]


class Controller:
    def __init__(
        self,
        *,
        check_timeout: float = 10.0,
        down_after: int = 2,
        up_after: int = 2,
        recovery_base: float = 5.0,
        recovery_max: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        jobs: JobTracker | None = None,
    ) -> None:
        if down_after < 1 or up_after < 1:
            raise ValueError("down_after and up_after must be >= 1")
        self.check_timeout = check_timeout
        self.down_after = down_after
        self.up_after = up_after
        self.recovery_base = recovery_base
        self.recovery_max = recovery_max
        self.jobs = jobs if jobs is not None else JobTracker(now)
        self._clock = clock
        self._now = now
        self._states: dict[str, _State] = {}
        self._transition_callbacks: list[TransitionCallback] = []
        self._check_callbacks: list[CheckCallback] = []
        self._round: asyncio.Future[Snapshot] | None = None
        self._checked_at: datetime | None = None
        self._deliveries: set[asyncio.Future[None]] = set()
        self._delivery_lock: asyncio.Lock | None = None
        self._breaker_unsubscribes: list[Callable[[], None]] = []

    # -- registry --------------------------------------------------------------------------------------------
    def register(self, component: Component) -> Component:
        if component.name in self._states:
            raise ValueError(f"component {component.name!r} is already registered")
        self._states[component.name] = _State(component)
        return component

    def unregister(self, name: str) -> None:
        self._states.pop(name, None)

    @property
    def components(self) -> tuple[Component, ...]:
        return tuple(state.component for state in self._states.values())

    def component(self, name: str) -> Component:
        return self._states[name].component

    def status(self, name: str) -> Status:
        return self._states[name].status

    # -- subscriptions ------------------------------------------------------------------------------------
    def on_transition(self, callback: TransitionCallback) -> Callable[[], None]:
        """``callback(transition)``, sync or async, once per transition, one at a time, in order."""
        return _subscribe(self._transition_callbacks, callback)

    def on_check(self, callback: CheckCallback) -> Callable[[], None]:
        """``callback(snapshot)`` after every round of checks and every outside observation (sync)."""
        return _subscribe(self._check_callbacks, callback)

    def watch_breakers(self, registry: ExchangeRegistry) -> None:
        """Let the exchanges' circuit breakers feed the exchange components of the same name."""
        for breaker in registry.breakers().values():
            self._breaker_unsubscribes.append(breaker.on_change(self._on_breaker))

    def close(self) -> None:
        for unsubscribe in self._breaker_unsubscribes:
            unsubscribe()
        self._breaker_unsubscribes.clear()

    def _on_breaker(self, name: str, old: BreakerState, new: BreakerState) -> None:
        if name not in self._states:
            return
        if new is BreakerState.OPEN:
            self.observe(name, Health.down("circuit breaker opened"), confirmed=True)
        elif new is BreakerState.CLOSED and old is BreakerState.HALF_OPEN:
            self.observe(name, Health.up("circuit breaker closed after a successful probe"), confirmed=True)
        else:
            self._notify_check()

    # -- checks -------------------------------------------------------------------------------------------
    async def check_all(self) -> Snapshot:
        """Check every component (concurrently) and apply the results; transitions are delivered before
        this returns."""
        task = self._round
        if task is None or task.done():
            task = self._round = asyncio.ensure_future(self._check_round())
        return await asyncio.shield(task)

    async def _check_round(self) -> Snapshot:
        states = list(self._states.values())
        results = await asyncio.gather(*(self._check_one(state) for state in states))
        for state, health in zip(states, results, strict=True):
            if self._states.get(state.component.name) is state:
                self._apply(state, health)
        self._checked_at = self._now()
        await self.drain()
        self._notify_check()
        return self.snapshot()

    async def _check_one(self, state: _State) -> Health:
        health = await self._probe(state.component)
        if health.status.passing or not state.component.recoverable or self._clock() < state.next_recovery:
            return health
        state.recovery_attempts += 1
        delay = min(self.recovery_base * 2 ** (state.recovery_attempts - 1), self.recovery_max)
        state.next_recovery = self._clock() + delay
        try:
            await asyncio.wait_for(state.component.recover(), self.check_timeout)
        except Exception as exc:
            state.last_recovery_error = type(exc).__name__
            log.warning("recovery of %s failed: %s", state.component.name, type(exc).__name__)
            return health
        state.last_recovery_error = None
        log.info("recovery of %s attempted (attempt %d)", state.component.name, state.recovery_attempts)
        return await self._probe(state.component)

    async def _probe(self, component: Component) -> Health:
        started = time.perf_counter()
        try:
            health = await asyncio.wait_for(component.check(), self.check_timeout)
        except TimeoutError:
            health = Health.down(f"no answer in {self.check_timeout:g}s")
        except Exception as exc:
            health = Health.down(type(exc).__name__)
        if not isinstance(health, Health):
            health = Health.down("invalid check result")
        if health.latency_ms is None:
            health = replace(health, latency_ms=round((time.perf_counter() - started) * 1000, 2))
        return health

    def observe(self, name: str, health: Health, *, confirmed: bool = False) -> None:
        """Evidence from outside a check (e.g. a circuit breaker). ``confirmed`` changes the confirmed status
        at once; otherwise it counts like a check."""
        state = self._states.get(name)
        if state is None:
            return
        self._apply(state, health, forced=confirmed)
        self._notify_check()

    def _apply(self, state: _State, health: Health, *, forced: bool = False) -> None:
        now = self._now()
        state.last = health
        state.checked_at = now
        state.checks += 1
        if health.status.passing:
            state.passing += 1
            state.failing = 0
            state.recovery_attempts = 0
            state.next_recovery = 0.0
        else:
            state.failing += 1
            state.passing = 0
            state.failures += 1
        old = state.status
        new = old
        if health.status.passing:
            if old is not Status.DOWN or forced or state.passing >= self.up_after:
                new = health.status
        elif old is not Status.DOWN and (forced or state.failing >= self.down_after):
            new = Status.DOWN
        if forced:
            # outside evidence stands for a whole run of results
            if health.status.passing:
                state.passing = max(state.passing, self.up_after)
            else:
                state.failing = max(state.failing, self.down_after)
        if new is old:
            return
        state.status = new
        state.since = now
        component = state.component
        if new is Status.DOWN:
            state.down_since = now
            self._emit(Transition(component.name, component.kind, component.label, old, new, health, now))
            log.warning("component %s is down: %s", component.name, health.detail)
        elif old is Status.DOWN:
            down_for = now - state.down_since if state.down_since else None
            state.down_since = None
            self._emit(
                Transition(component.name, component.kind, component.label, old, new, health, now, down_for)
            )
            log.info("component %s recovered", component.name)

    # -- transitions ---------------------------------------------------------------------------------------
    def _emit(self, transition: Transition) -> None:
        if not self._transition_callbacks:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.warning("transition of %s outside an event loop: not delivered", transition.name)
            return
        if self._delivery_lock is None:
            self._delivery_lock = asyncio.Lock()
        task = loop.create_task(self._deliver(transition, self._delivery_lock))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, transition: Transition, lock: asyncio.Lock) -> None:
        async with lock:  # FIFO: transitions reach the callbacks in the order they happened
            for callback in list(self._transition_callbacks):
                try:
                    result = callback(transition)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("transition callback failed for %s", transition.name)

    async def drain(self) -> None:
        """Wait until every transition so far has been delivered."""
        while self._deliveries:
            await asyncio.gather(*list(self._deliveries), return_exceptions=True)

    def _notify_check(self) -> None:
        if not self._check_callbacks:
            return
        snapshot = self.snapshot()
        for callback in list(self._check_callbacks):
            try:
                callback(snapshot)
            except Exception:
                log.exception("check callback failed")

    # -- views --------------------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        return Snapshot(tuple(self._view(state) for state in self._states.values()), self._checked_at)

    def _view(self, state: _State) -> ComponentView:
        component = state.component
        last = state.last
        info: dict[str, Any] = dict(last.info) if last is not None else {}
        try:
            info.update(component.describe())
        except Exception:
            log.exception("describing %s failed", component.name)
        if state.last_recovery_error:
            info["last_recovery_error"] = state.last_recovery_error
        return ComponentView(
            name=component.name,
            kind=component.kind,
            label=component.label,
            essential=component.essential,
            status=state.status,
            last_status=last.status if last is not None else Status.UNKNOWN,
            detail=last.detail if last is not None else "",
            latency_ms=last.latency_ms if last is not None else None,
            checked_at=state.checked_at,
            since=state.since,
            consecutive_failures=state.failing,
            checks=state.checks,
            failures=state.failures,
            recovery_attempts=state.recovery_attempts,
            info=info,
        )


def _subscribe(listeners: list[Any], callback: Any) -> Callable[[], None]:
    listeners.append(callback)

    def unsubscribe() -> None:
        with contextlib.suppress(ValueError):
            listeners.remove(callback)

    return unsubscribe
