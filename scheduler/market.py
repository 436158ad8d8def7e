"""Market jobs: price alerts and the scanner, reporting through the notifier."""

from __future__ import annotations

from decimal import Decimal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.i18n import Msg, MsgList
from services.market.alerts import RISE, watch_alerts
from services.market.data import MarketDataService
from services.market.scanner import Scanner
from services.notify import Notifier

log = structlog.get_logger(__name__)


def _price(value: Decimal) -> str:
    if value >= 100:
        return f"{value.quantize(Decimal('0.01')):,f}"
    return f"{value.normalize():f}"


async def alerts_job(
    session_factory: async_sessionmaker[AsyncSession],
    market: MarketDataService,
    notifier: Notifier,
    tenant_id: int | None = None,
) -> int:
    fired = await watch_alerts(session_factory, market, tenant_id)
    for item in fired:
        alert = item.alert
        if alert.kind in ("rise", "fall"):
            value = f"{'+' if alert.kind == RISE else '-'}{alert.threshold.normalize():f}%"
        else:
            value = _price(alert.threshold)
        change = item.change_pct.quantize(Decimal("0.01")) if item.change_pct is not None else "—"
        await notifier.send(
            item.telegram_id,
            item.locale,
            f"alerts.fired.{alert.kind}",
            symbol=alert.symbol,
            value=value,
            price=_price(item.price),
            change=change,
        )
    if fired:
        log.info("alerts.fired", count=len(fired))
    return len(fired)


async def scan_job(
    session_factory: async_sessionmaker[AsyncSession],
    scanner: Scanner,
    notifier: Notifier,
    timeframe: str,
    tenant_id: int | None = None,
) -> int:
    """Scan the universe on the candle that just closed and tell each matching subscriber once."""
    found = await scanner.scan(session_factory, timeframe)
    deliveries = await scanner.deliver(session_factory, found, tenant_id)
    for delivery in deliveries:
        opp = delivery.opportunity
        await notifier.send(
            delivery.telegram_id,
            delivery.locale,
            "scan.notify",
            symbol=opp.symbol,
            base=opp.symbol.split("/")[0],
            timeframe=opp.timeframe,
            score=opp.score,
            direction=Msg(f"market.summary.direction.{opp.direction}"),
            price=_price(opp.price),
            events=MsgList(tuple(Msg(f"market.events.{key}") for key in opp.events[:3])),
        )
    log.info("scanner.done", timeframe=timeframe, found=len(found), delivered=len(deliveries))
    return len(deliveries)
