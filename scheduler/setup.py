"""One AsyncIOScheduler per bot process, started and stopped with it."""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from scheduler.jobs import protections_job
from services.notify import Notifier
from services.trading.service import MarketData, TradingConfig


def build_scheduler(
    *,
    session_factory: async_sessionmaker[AsyncSession],
    market_data: MarketData,
    trading: TradingConfig,
    notifier: Notifier,
    protections_interval: float,
) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
    )
    scheduler.add_job(
        protections_job,
        "interval",
        seconds=protections_interval,
        args=(session_factory, market_data, trading, notifier),
        id="protections",
        name="stop-loss and take-profit watcher",
    )
    return scheduler
