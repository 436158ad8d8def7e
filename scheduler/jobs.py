"""Scheduled jobs: plain functions that call services and report through the notifier."""

from __future__ import annotations

from decimal import Decimal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify import Notifier
from services.trading.positions import watch_limit_orders, watch_protections
from services.trading.service import MarketData, TradingConfig

log = structlog.get_logger(__name__)
CENT = Decimal("0.01")


async def protections_job(
    session_factory: async_sessionmaker[AsyncSession],
    market_data: MarketData,
    config: TradingConfig,
    notifier: Notifier,
) -> int:
    """Fill crossed paper limit orders, then fire crossed stop-losses and take-profits; tell each user."""
    for filled in await watch_limit_orders(session_factory, market_data, config):
        trade = filled.execution
        await notifier.send(
            filled.telegram_id,
            filled.locale,
            f"trade.limit_filled.{trade.side}",
            symbol=trade.symbol,
            base=trade.symbol.split("/")[0],
            amount=trade.amount,
            price=trade.average_price,
            quote=trade.quote,
            fee=trade.fee.quantize(CENT) if trade.fee >= 1 else trade.fee,
        )
    triggers = await watch_protections(session_factory, market_data, config)
    for trigger in triggers:
        done = trigger.execution
        await notifier.send(
            trigger.telegram_id,
            trigger.locale,
            f"trade.triggered.{trigger.kind}",
            symbol=done.symbol,
            base=done.symbol.split("/")[0],
            amount=done.amount,
            price=done.average_price.quantize(CENT) if done.average_price >= 100 else done.average_price,
            level=trigger.trigger_price,
            quote=done.quote,
            pnl=(done.realized_pnl or Decimal(0)).quantize(CENT),
        )
    if triggers:
        log.info("protections.fired", count=len(triggers))
    return len(triggers)
