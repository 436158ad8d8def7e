"""The components the bot depends on: database, Redis, Telegram, each exchange, each LLM provider, the
scheduler. Each one probes cheaply; the controller bounds the time and decides what a result means."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.controller.base import Component, Health
from services.controller.jobs import JobTracker
from services.exchanges.breaker import BreakerState
from services.exchanges.errors import ExchangeError, ExchangeTemporaryError, ExchangeUnavailable
from services.exchanges.registry import ExchangeRegistry
from services.exchanges.types import exchange_name

Probe = Callable[[], Awaitable[None]]


async def ping_database(engine: AsyncEngine) -> None:
    """``SELECT 1`` on a pooled connection. On SQLite the statement goes through the driver: through
    SQLAlchemy it would begin a transaction, which this project's SQLite engine makes a write-locking
    ``BEGIN IMMEDIATE`` (it would wait behind every writer, and block them)."""
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            raw = await connection.get_raw_connection()
            cursor = await raw.driver_connection.execute("SELECT 1")  # type: ignore[union-attr]
            await cursor.close()
        else:
            await connection.execute(text("SELECT 1"))


class DatabaseComponent(Component):
    """``SELECT 1`` through the engine's pool; recovery drops the pooled connections (new ones are opened
    on demand)."""

    kind = "database"
    essential = True
    recoverable = True

    def __init__(self, engine: AsyncEngine, name: str = "database") -> None:
        self.engine = engine
        self.name = name
        self.label = name

    async def check(self) -> Health:
        await ping_database(self.engine)
        return Health.up(backend=self.engine.dialect.name)

    async def recover(self) -> None:
        await self.engine.dispose()

    def describe(self) -> Mapping[str, Any]:
        return {"backend": self.engine.dialect.name}


class RedisComponent(Component):
    """``PING``; recovery disconnects the pool so the next command reconnects. Essential when configured:
    the conversation state and the rate limiter live there."""

    kind = "redis"
    essential = True
    recoverable = True

    def __init__(self, redis: Redis, name: str = "redis") -> None:
        self.redis = redis
        self.name = name
        self.label = "Redis"

    async def check(self) -> Health:
        if not await self.redis.ping():
            return Health.down("no PONG")
        return Health.up()

    async def recover(self) -> None:
        await self.redis.connection_pool.disconnect()


class ProbeComponent(Component):
    """A component checked by calling an async probe (returns when healthy, raises when not), with an
    optional reset used to recover. Telegram (``getMe``) and LLM providers are of this kind."""

    def __init__(
        self,
        name: str,
        kind: str,
        probe: Probe,
        *,
        reset: Probe | None = None,
        label: str | None = None,
        essential: bool = False,
    ) -> None:
        self.name = name
        self.kind = kind
        self.label = label or name
        self.essential = essential
        self.recoverable = reset is not None
        self._probe = probe
        self._reset = reset

    async def check(self) -> Health:
        await self._probe()
        return Health.up()

    async def recover(self) -> None:
        if self._reset is None:
            await super().recover()  # not recoverable: the base says so
            return
        await self._reset()


def telegram_component(get_me: Probe, *, reset: Probe | None = None) -> ProbeComponent:
    """The Telegram Bot API, probed with ``getMe`` (the caller wraps its bot: services know no aiogram)."""
    return ProbeComponent("telegram", "telegram", get_me, reset=reset, label="Telegram", essential=True)


def llm_component(provider: str, probe: Probe, *, reset: Probe | None = None) -> ProbeComponent:
    """One LLM provider, probed by a cheap call of the caller's choosing (a model list, a tiny prompt)."""
    return ProbeComponent(f"llm:{provider}", "llm", probe, reset=reset, label=provider)


class ExchangeComponent(Component):
    """One exchange: a public request through the registry's shared client and the exchange's circuit
    breaker. While the breaker is open no request is sent (the breaker already knows); once its pause is
    over the check's request is the half-open probe, and its success closes the breaker."""

    kind = "exchange"

    def __init__(self, registry: ExchangeRegistry, exchange_id: str, symbol: str = "BTC/USDT") -> None:
        registry.config(exchange_id)  # raises for an exchange the registry does not serve
        self.registry = registry
        self.exchange_id = exchange_id
        self.symbol = symbol
        self.name = exchange_id
        self.label = exchange_name(exchange_id)

    @property
    def breaker_state(self) -> BreakerState:
        return self.registry.breaker(self.exchange_id).state

    async def check(self) -> Health:
        breaker = self.registry.breaker(self.exchange_id)
        if breaker.state is BreakerState.OPEN and breaker.retry_in() > 0:
            return Health.down(f"circuit open, next probe in {math.ceil(breaker.retry_in())}s")
        try:
            await self.registry.public(self.exchange_id).fetch_ticker(self.symbol)
        except ExchangeUnavailable as exc:
            return Health.down(f"circuit open, next probe in {exc.retry_in}s")
        except ExchangeTemporaryError as exc:
            return Health.down(_exchange_detail(exc))
        except ExchangeError as exc:
            # the exchange answered, but refused: reachable, not serving this request
            return Health.degraded(_exchange_detail(exc))
        return Health.up()

    def describe(self) -> Mapping[str, Any]:
        breaker = self.registry.breaker(self.exchange_id)
        facts: dict[str, Any] = {"breaker": breaker.state.value}
        if breaker.consecutive_failures:
            facts["breaker_failures"] = breaker.consecutive_failures
        if breaker.state is BreakerState.OPEN:
            facts["retry_in"] = math.ceil(breaker.retry_in())
        return facts


def _exchange_detail(exc: ExchangeError) -> str:
    reason = exc.params.get("reason")
    code = exc.message_key.removeprefix("exchange.")
    detail = f"{code} ({reason})" if reason else code
    return f"{detail}: {exc.detail}" if exc.detail else detail


class SchedulerComponent(Component):
    """The job scheduler: running or not; degraded while a job's last run failed."""

    kind = "scheduler"

    def __init__(self, tracker: JobTracker, name: str = "scheduler") -> None:
        self.tracker = tracker
        self.name = name
        self.label = name

    async def check(self) -> Health:
        if not self.tracker.attached:
            return Health.down("not started")
        if not self.tracker.running():
            return Health.down("stopped")
        if self.tracker.paused():
            return Health.up("standby: another process runs the jobs")
        stats = self.tracker.stats()
        failing = sorted(job_id for job_id, job in stats.items() if job.failing)
        if failing:
            return Health.degraded("failing: " + ", ".join(failing))
        return Health.up(f"{len(stats)} jobs")

    def describe(self) -> Mapping[str, Any]:
        schedules = {s.id: s for s in self.tracker.schedules()}
        jobs = []
        for job_id, stats in self.tracker.stats().items():
            schedule = schedules.get(job_id)
            jobs.append(
                {
                    "id": job_id,
                    "runs": stats.runs,
                    "failures": stats.failures,
                    "missed": stats.missed,
                    "failing": stats.failing,
                    "last_run_at": stats.last_run_at.isoformat() if stats.last_run_at else None,
                    "last_error": stats.last_error,
                    "next_run_at": schedule.next_run_at.isoformat()
                    if schedule and schedule.next_run_at
                    else None,
                }
            )
        return {"running": self.tracker.running(), "paused": self.tracker.paused(), "jobs": jobs}
