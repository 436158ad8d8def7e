"""Price alerts: `/alert BTC > 70000`, `/alert ETH < 3000`, `/alert SOL +5%` (a move within 24h).

An alert is a row, so it survives restarts. The watcher reads the active ones, fetches the tickers of
their symbols in one request per exchange, and fires each crossed alert once: the row flips from
``active`` to ``fired`` with a guarded UPDATE, and only the process whose update won tells the user.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import PriceAlert, User
from db.scoping import of_tenant
from db.types import utcnow
from services.errors import AppError, NotFoundError, ValidationError
from services.exchanges.types import Ticker
from services.market.data import MarketDataService
from services.trading.parser import TradeParseError, parse_number

log = structlog.get_logger(__name__)

ABOVE, BELOW, RISE, FALL = "above", "below", "rise", "fall"
_ALERT = re.compile(r"^\s*(\S+)\s*(>=|<=|>|<|\+|-)\s*([0-9][0-9.,]*\s*[kKmM]?)\s*(%?)\s*$")
MAX_ACTIVE = 50


class AlertError(ValidationError):
    message_key = "alerts.errors.usage"


@dataclass(frozen=True, slots=True)
class AlertRequest:
    symbol: str  # as typed; resolved against the exchange's markets by the service
    kind: str  # above | below | rise | fall
    threshold: Decimal  # a price, or a percentage for rise/fall


@dataclass(frozen=True, slots=True)
class AlertView:
    id: int
    symbol: str
    kind: str
    threshold: Decimal
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FiredAlert:
    telegram_id: int
    locale: str | None
    alert: AlertView
    price: Decimal
    change_pct: Decimal | None


def parse_alert(text: str) -> AlertRequest:
    """``BTC > 70000``, ``eth<3000``, ``SOL +5%``, ``SOL -5%``, ``BTC > 70k``."""
    match = _ALERT.match(text or "")
    if match is None:
        raise AlertError()
    symbol, op, number, percent = match.groups()
    try:
        value = parse_number(number.replace(" ", ""), allow_suffix=not percent)
    except TradeParseError as exc:
        raise AlertError("alerts.errors.bad_number", token=number.strip()) from exc
    if op in ("+", "-"):
        if not percent:
            raise AlertError("alerts.errors.percent_needed", symbol=symbol.upper())
        if value > 1000:
            raise AlertError("alerts.errors.bad_number", token=number.strip() + "%")
        return AlertRequest(symbol, RISE if op == "+" else FALL, value)
    if percent:
        raise AlertError("alerts.errors.usage")
    return AlertRequest(symbol, ABOVE if op in (">", ">=") else BELOW, value)


def crossed(kind: str, threshold: Decimal, ticker: Ticker) -> bool:
    if kind == ABOVE:
        return ticker.last >= threshold
    if kind == BELOW:
        return ticker.last <= threshold
    if ticker.change_pct is None:
        return False
    return ticker.change_pct >= threshold if kind == RISE else ticker.change_pct <= -threshold


class AlertService:
    def __init__(
        self, session: AsyncSession, market: MarketDataService, clock: Callable[[], datetime] = utcnow
    ):
        self.session = session
        self.market = market
        self.clock = clock

    async def create(self, user_id: int, request: AlertRequest) -> tuple[AlertView, Ticker]:
        market = await self.market.market(request.symbol)
        ticker = await self.market.ticker(market.symbol)
        if crossed(request.kind, request.threshold, ticker):
            key = (
                "alerts.errors.already_above"
                if request.kind in (ABOVE, RISE)
                else "alerts.errors.already_below"
            )
            raise ValidationError(key, symbol=market.symbol, price=ticker.last, change=ticker.change_pct)
        active = await self.session.scalar(
            select(func.count(PriceAlert.id)).where(
                PriceAlert.user_id == user_id, PriceAlert.status == "active"
            )
        )
        if (active or 0) >= MAX_ACTIVE:
            raise ValidationError("alerts.errors.too_many", limit=MAX_ACTIVE)
        alert = PriceAlert(
            user_id=user_id,
            exchange=self.market.default_exchange,
            symbol=market.symbol,
            kind=request.kind,
            threshold=request.threshold,
            reference_price=ticker.last,
            status="active",
            created_at=self.clock(),
        )
        self.session.add(alert)
        await self.session.flush()
        await self.session.commit()
        return _view(alert), ticker

    async def active(self, user_id: int) -> list[AlertView]:
        rows = await self.session.scalars(
            select(PriceAlert)
            .where(PriceAlert.user_id == user_id, PriceAlert.status == "active")
            .order_by(PriceAlert.id)
        )
        return [_view(a) for a in rows]

    async def delete(self, user_id: int, alert_id: int) -> AlertView:
        alert = await self.session.get(PriceAlert, alert_id)
        if alert is None or alert.user_id != user_id or alert.status != "active":
            raise NotFoundError("alerts.errors.not_found", id=alert_id)
        alert.status, alert.closed_at = "deleted", self.clock()
        await self.session.commit()
        return _view(alert)


def _view(alert: PriceAlert) -> AlertView:
    return AlertView(alert.id, alert.symbol, alert.kind, alert.threshold, alert.created_at)


async def watch_alerts(
    session_factory: async_sessionmaker[AsyncSession], market: MarketDataService, tenant_id: int | None = None
) -> list[FiredAlert]:
    """One pass: fire every active alert its market has crossed (each exactly once)."""
    async with session_factory() as session:
        rows = (
            await session.execute(
                select(
                    PriceAlert.id,
                    PriceAlert.exchange,
                    PriceAlert.symbol,
                    PriceAlert.kind,
                    PriceAlert.threshold,
                ).where(PriceAlert.status == "active", of_tenant(PriceAlert.user_id, tenant_id))
            )
        ).all()
    if not rows:
        return []
    by_exchange: dict[str, set[str]] = {}
    for row in rows:
        by_exchange.setdefault(row.exchange, set()).add(row.symbol)
    tickers: dict[tuple[str, str], Ticker] = {}
    for exchange, symbols in by_exchange.items():
        try:
            fetched = await market.exchanges.public(exchange).fetch_tickers(sorted(symbols))
        except AppError as exc:
            log.warning("alerts.tickers_failed", exchange=exchange, error=exc.message_key)
            continue
        tickers.update({(exchange, s): t for s, t in fetched.items()})
    fired: list[FiredAlert] = []
    for row in rows:
        ticker = tickers.get((row.exchange, row.symbol))
        if ticker is None or not crossed(row.kind, row.threshold, ticker):
            continue
        async with session_factory() as session:
            now = utcnow()
            won = await session.execute(
                update(PriceAlert)
                .where(PriceAlert.id == row.id, PriceAlert.status == "active")
                .values(status="fired", closed_at=now, fired_price=ticker.last)
            )
            if won.rowcount != 1:  # type: ignore[attr-defined]
                await session.rollback()
                continue  # deleted meanwhile, or fired by another process
            alert = await session.get(PriceAlert, row.id)
            user = await session.get(User, alert.user_id) if alert is not None else None
            await session.commit()
        if alert is None or user is None:
            continue
        fired.append(
            FiredAlert(
                user.telegram_id,
                user.locale or user.language_code,
                _view(alert),
                ticker.last,
                ticker.change_pct,
            )
        )
    return fired


__all__ = [
    "ABOVE",
    "BELOW",
    "FALL",
    "RISE",
    "AlertRequest",
    "AlertService",
    "AlertView",
    "FiredAlert",
    "crossed",
    "parse_alert",
    "watch_alerts",
]
