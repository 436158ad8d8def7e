"""Health of what the bot depends on: the live checks of /healthz, and the master controller's wiring
(its components, and its state in the Prometheus metrics)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import __version__
from bot.metrics import Metrics
from services.controller import (
    Controller,
    DatabaseComponent,
    ExchangeComponent,
    RedisComponent,
    SchedulerComponent,
    Snapshot,
    Status,
    Transition,
    telegram_component,
)
from services.exchanges.breaker import BreakerState
from services.exchanges.registry import ExchangeRegistry

CHECK_TIMEOUT = 3.0
BOT_CACHE_SECONDS = 30.0
BREAKER_VALUES = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


@dataclass
class HealthChecker:
    """``report()`` is /healthz. The process is healthy ("ok", HTTP 200) when its essential components
    answer: the database, Telegram, and Redis when one is configured (conversation state and throttling
    live there). Every component of the master controller (exchanges, LLM providers, the scheduler)
    is listed under ``components`` with its confirmed status; those down or degraded are named in
    ``degraded`` without failing the process's health."""

    engine: AsyncEngine
    bot: Bot
    metrics: Metrics
    redis: Redis | None = None
    mode: str = "polling"
    controller: Controller | None = None
    _bot_cache: tuple[float, dict[str, Any]] | None = field(default=None, init=False)

    async def _timed(self, probe: Any) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            await asyncio.wait_for(probe(), CHECK_TIMEOUT)
            return {"ok": True, "latency_ms": round((time.perf_counter() - start) * 1000, 2)}
        except Exception as exc:
            return {"ok": False, "error": type(exc).__name__}

    async def database(self) -> dict[str, Any]:
        async def probe() -> None:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))

        result = await self._timed(probe)
        result["backend"] = self.engine.dialect.name
        return result

    async def redis_status(self) -> dict[str, Any]:
        if self.redis is None:
            return {"ok": True, "enabled": False}
        redis = self.redis

        async def probe() -> None:
            await redis.ping()

        return {**await self._timed(probe), "enabled": True}

    async def bot_status(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._bot_cache and now - self._bot_cache[0] < BOT_CACHE_SECONDS:
            return self._bot_cache[1]
        me: dict[str, Any] = {}

        async def probe() -> None:
            user = await self.bot.get_me()
            me["username"] = user.username

        result = {**await self._timed(probe), **me, "mode": self.mode}
        self._bot_cache = (now, result)
        return result

    async def report(self) -> dict[str, Any]:
        database, redis, bot = await asyncio.gather(self.database(), self.redis_status(), self.bot_status())
        if self.controller is None:
            # without a controller these live checks are the only source of the gauges
            for name, part in (("database", database), ("redis", redis), ("telegram", bot)):
                self.metrics.component_up.labels(name, name).set(1 if part["ok"] else 0)
        ok = database["ok"] and redis["ok"] and bot["ok"]
        report: dict[str, Any] = {
            "status": "ok" if ok else "down",
            "version": __version__,
            "database": database,
            "redis": redis,
            "bot": bot,
        }
        if self.controller is not None:
            snapshot = self.controller.snapshot()
            report["components"] = snapshot.to_dict()
            report["degraded"] = [c.name for c in snapshot.not_up]
            report["checked_at"] = snapshot.checked_at.isoformat() if snapshot.checked_at else None
        return report


def build_controller(
    *,
    engine: AsyncEngine,
    bot: Bot,
    redis: Redis | None,
    exchanges: ExchangeRegistry,
    check_timeout: float = 10.0,
    down_after: int = 2,
    up_after: int = 2,
    recovery_base: float = 5.0,
    recovery_max: float = 300.0,
    probe_symbol: str = "BTC/USDT",
) -> Controller:
    """The controller with the bot's components: database, Redis (when configured), Telegram, each exchange
    (fed by its circuit breaker) and the scheduler (attached when it starts). LLM providers register
    themselves with ``controller.register(llm_component(...))``."""
    controller = Controller(
        check_timeout=check_timeout,
        down_after=down_after,
        up_after=up_after,
        recovery_base=recovery_base,
        recovery_max=recovery_max,
    )
    controller.register(DatabaseComponent(engine))
    if redis is not None:
        controller.register(RedisComponent(redis))

    async def get_me() -> None:
        await bot.get_me()

    async def reset_session() -> None:
        await bot.session.close()  # the next request opens a new connection pool

    controller.register(telegram_component(get_me, reset=reset_session))
    for exchange_id in exchanges.exchanges:
        controller.register(ExchangeComponent(exchanges, exchange_id, probe_symbol))
    controller.watch_breakers(exchanges)
    controller.register(SchedulerComponent(controller.jobs))
    return controller


def bind_metrics(controller: Controller, metrics: Metrics, exchanges: ExchangeRegistry | None = None) -> None:
    """Export the controller's state: component_up, check latency, transitions, breaker states, job runs."""

    def on_check(snapshot: Snapshot) -> None:
        for component in snapshot.components:
            if component.status is not Status.UNKNOWN:
                up = 0 if component.status is Status.DOWN else 1
                metrics.component_up.labels(component.name, component.kind).set(up)
            if component.latency_ms is not None:
                metrics.component_latency.labels(component.name).set(component.latency_ms / 1000)
        if exchanges is not None:
            for name, breaker in exchanges.breakers().items():
                metrics.breaker_state.labels(name).set(BREAKER_VALUES[breaker.state])

    def on_transition(transition: Transition) -> None:
        to = "up" if transition.recovered else "down"
        metrics.component_transitions.labels(transition.name, to).inc()

    def on_job(job_id: str, ok: bool) -> None:
        metrics.job_runs.labels(job_id).inc()
        if not ok:
            metrics.job_failures.labels(job_id).inc()

    def on_breaker(name: str, old: BreakerState, new: BreakerState) -> None:
        metrics.breaker_state.labels(name).set(BREAKER_VALUES[new])

    controller.on_check(on_check)
    controller.on_transition(on_transition)
    controller.jobs.on_record(on_job)
    if exchanges is not None:
        for name, breaker in exchanges.breakers().items():
            breaker.on_change(on_breaker)
            metrics.breaker_state.labels(name).set(BREAKER_VALUES[breaker.state])
