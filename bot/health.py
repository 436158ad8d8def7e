"""Health of what the bot depends on, for /healthz (the master controller builds on it later)."""

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

CHECK_TIMEOUT = 3.0
BOT_CACHE_SECONDS = 30.0


@dataclass
class HealthChecker:
    engine: AsyncEngine
    bot: Bot
    metrics: Metrics
    redis: Redis | None = None
    mode: str = "polling"
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
        for name, part in (("database", database), ("redis", redis), ("telegram", bot)):
            self.metrics.component_up.labels(name).set(1 if part["ok"] else 0)
        ok = database["ok"] and redis["ok"] and bot["ok"]
        return {
            "status": "ok" if ok else "degraded",
            "version": __version__,
            "database": database,
            "redis": redis,
            "bot": bot,
        }
