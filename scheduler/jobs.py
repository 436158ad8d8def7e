"""Scheduled jobs: plain functions that call services and report through the notifier."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify import Notifier
from services.trading.live import watch_live_orders
from services.trading.positions import watch_limit_orders, watch_protections
from services.trading.service import Execution, TradingService

log = structlog.get_logger(__name__)
CENT = Decimal("0.01")
TradingFactory = Callable[[AsyncSession], TradingService]


def _price(value: Decimal) -> Decimal:
    return value.quantize(CENT) if value >= 100 else value


async def _tell_filled(notifier: Notifier, telegram_id: int, locale: str | None, trade: Execution) -> None:
    await notifier.send(
        telegram_id,
        locale,
        f"trade.limit_filled.{trade.side}",
        symbol=trade.symbol,
        base=trade.symbol.split("/")[0],
        amount=trade.amount,
        price=_price(trade.average_price),
        quote=trade.quote,
        fee=trade.fee.quantize(CENT) if trade.fee >= 1 else trade.fee,
    )


async def protections_job(
    session_factory: async_sessionmaker[AsyncSession],
    trading_factory: TradingFactory,
    notifier: Notifier,
    tenant_id: int | None = None,
) -> int:
    """Fill crossed paper limit orders, then fire crossed stop-losses and take-profits; tell each user."""
    for filled in await watch_limit_orders(session_factory, trading_factory, tenant_id):
        await _tell_filled(notifier, filled.telegram_id, filled.locale, filled.execution)
    triggers = await watch_protections(session_factory, trading_factory, tenant_id)
    for trigger in triggers:
        done = trigger.execution
        await notifier.send(
            trigger.telegram_id,
            trigger.locale,
            f"trade.triggered.{trigger.kind}",
            symbol=done.symbol,
            base=done.symbol.split("/")[0],
            amount=done.amount,
            price=_price(done.average_price),
            level=trigger.trigger_price,
            quote=done.quote,
            pnl=(done.realized_pnl or Decimal(0)).quantize(CENT),
        )
    if triggers:
        log.info("protections.fired", count=len(triggers))
    return len(triggers)


async def live_orders_job(
    session_factory: async_sessionmaker[AsyncSession],
    trading_factory: TradingFactory,
    notifier: Notifier,
    settle_after: timedelta,
    give_up_after: timedelta,
    tenant_id: int | None = None,
) -> int:
    """Follow live orders that have not ended (resting limits, outcomes unknown after a timeout)."""
    updates = await watch_live_orders(
        session_factory,
        trading_factory,
        settle_after=settle_after,
        give_up_after=give_up_after,
        tenant_id=tenant_id,
    )
    for update in updates:
        if update.partial is not None:  # a resting order filled in part (that part is booked)
            part = update.partial
            await notifier.send(
                update.telegram_id,
                update.locale,
                f"trade.partial_fill.{update.side}",
                id=update.order_id,
                symbol=update.symbol,
                filled=part.filled,
                amount=part.amount,
                base=part.base,
                price=_price(part.average_price),
                quote=part.quote,
            )
        elif update.execution is not None:
            await _tell_filled(notifier, update.telegram_id, update.locale, update.execution)
        else:
            await notifier.send(
                update.telegram_id,
                update.locale,
                f"trade.order_ended.{update.kind}",
                id=update.order_id,
                symbol=update.symbol,
                side=update.side,
            )
    if updates:
        log.info("live_orders.settled", count=len(updates))
    return len(updates)
