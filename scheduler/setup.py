"""One AsyncIOScheduler per bot process, started and stopped with it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from scheduler.autotrade import autotrade_job
from scheduler.billing import renewals_job
from scheduler.consensus import resolve_signals_job
from scheduler.copytrading import copy_drawdowns_job, copy_fan_out_sweep_job
from scheduler.health import HEALTH_JOB_ID, health_job, track_jobs
from scheduler.jobs import live_orders_job, protections_job
from scheduler.market import alerts_job, scan_job
from services.billing.renewals import RenewalService
from services.consensus.autotrade import TIMEFRAMES as AUTO_TIMEFRAMES
from services.consensus.service import ConsensusService
from services.controller import Controller
from services.copytrading.queue import FanOutQueue
from services.copytrading.relay import CopyRelay
from services.market.data import MarketDataService
from services.market.scanner import Scanner
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
    market: MarketDataService | None = None,
    scanner: Scanner | None = None,
    alerts_interval: float = 5.0,
    scan_delay_seconds: int = 5,
    renewals: RenewalService | None = None,
    renewals_interval: float = 900.0,
    controller: Controller | None = None,
    health_interval: float = 30.0,
    consensus: ConsensusService | None = None,
    consensus_resolve_interval: float = 300.0,
    copy_relay: CopyRelay | None = None,
    copy_drawdown_interval: float = 180.0,
    copy_queue: FanOutQueue | None = None,
    copy_sweep_interval: float = 60.0,
    tenant_id: int | None = None,  # the jobs see only this tenant's users
) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
    )
    scheduler.add_job(
        protections_job,
        "interval",
        seconds=protections_interval,
        args=(session_factory, trading_factory, notifier, tenant_id),
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
            tenant_id,
        ),
        id="live_orders",
        name="live order follower and reconciler",
    )
    if market is not None:
        scheduler.add_job(
            alerts_job,
            "interval",
            seconds=alerts_interval,
            args=(session_factory, market, notifier, tenant_id),
            id="alerts",
            name="price alerts",
        )
    if scanner is not None:
        for timeframe in scanner.config.timeframes:
            scheduler.add_job(
                scan_job,
                candle_close_trigger(timeframe, scan_delay_seconds),
                args=(session_factory, scanner, notifier, timeframe, tenant_id),
                id=f"scan_{timeframe}",
                name=f"market scanner {timeframe}",
            )
    if renewals is not None:
        scheduler.add_job(
            renewals_job,
            "interval",
            seconds=renewals_interval,
            args=(renewals, notifier),
            id="billing_renewals",
            name="plan expiry and reminders",
        )
    if controller is not None:
        track_jobs(scheduler, controller.jobs)
        scheduler.add_job(
            health_job,
            "interval",
            seconds=health_interval,
            args=(controller,),
            id=HEALTH_JOB_ID,
            name="master controller: component health checks",
        )
    if consensus is not None:
        for timeframe in AUTO_TIMEFRAMES:
            scheduler.add_job(
                autotrade_job,
                candle_close_trigger(timeframe, scan_delay_seconds + 5),
                args=(session_factory, trading_factory, consensus, notifier, timeframe, tenant_id),
                id=f"autotrade_{timeframe}",
                name=f"auto-trade {timeframe}",
            )
    if consensus is not None:
        scheduler.add_job(
            resolve_signals_job,
            "interval",
            seconds=consensus_resolve_interval,
            args=(consensus,),
            id="consensus_resolve",
            name="AI signal resolution",
        )
    if copy_relay is not None:
        scheduler.add_job(
            copy_drawdowns_job,
            "interval",
            seconds=copy_drawdown_interval,
            args=(copy_relay, tenant_id),
            id="copy_drawdowns",
            name="copy trading: stop-copy drawdowns",
        )
    if copy_queue is not None:
        scheduler.add_job(
            copy_fan_out_sweep_job,
            "interval",
            seconds=copy_sweep_interval,
            args=(copy_queue, tenant_id),
            id="copy_fan_out_sweep",
            name="copy trading: unfinished fan-outs",
        )
    return scheduler


def candle_close_trigger(timeframe: str, delay_seconds: int) -> CronTrigger:
    """Fires as each candle of `timeframe` closes (UTC), `delay_seconds` later."""
    unit, count = timeframe[-1], int(timeframe[:-1])
    second = str(delay_seconds % 60)
    if unit == "m":
        return CronTrigger(minute=f"*/{count}", second=second, timezone="UTC")
    if unit == "h":
        return CronTrigger(hour=f"*/{count}", minute="0", second=second, timezone="UTC")
    if unit == "d":
        return CronTrigger(hour="0", minute="0", second=second, timezone="UTC")
    raise ValueError(f"no schedule for timeframe {timeframe!r}")
