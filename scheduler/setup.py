"""One AsyncIOScheduler per bot process, started and stopped with it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from scheduler.jobs import live_orders_job, protections_job
from services.notify import Notifier
from services.trading.service import TradingService


def build_scheduler(
    *,
    session_factory: async_sessionmaker[AsyncSession],
    trading_factory: Callable[[AsyncSession], TradingService],
    notifier: Notifier,
    protections_interval: float,
    live_orders_interval: float,
    live_order_settle: float,
    live_order_give_up: float,
) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
    )
    scheduler.add_job(
        protections_job,
        "interval",
        seconds=protections_interval,
        args=(session_factory, trading_factory, notifier),
        id="protections",
        name="limit orders, stop-loss and take-profit watcher",
    )
    scheduler.add_job(
        live_orders_job,
        "interval",
        seconds=live_orders_interval,
        args=(
            session_factory,
            trading_factory,
            notifier,
            timedelta(seconds=live_order_settle),
            timedelta(seconds=live_order_give_up),
        ),
        id="live_orders",
        name="live order follower and reconciler",
    )
    return scheduler
