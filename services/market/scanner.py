"""The market scanner: on each timeframe's close, score every symbol of a universe and tell subscribers.

The universe is a configured symbol list, or the top pairs of the quote currency by 24h volume on the
default exchange (stablecoin pairs and leveraged tokens left out). Candles come from the market data
cache, so a scan fetches only the candle that just closed per symbol. Each result is stored once per
(exchange, symbol, timeframe, candle): a second scan of the same candle, in this process or another,
finds it stored. A subscriber receives an opportunity once, and the same symbol, timeframe and direction
not again within a cool-down of a few candles.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ScanDelivery, ScanOpportunity, ScanSubscription, User
from db.scoping import of_tenant
from db.types import utcnow
from services.errors import AppError, ValidationError
from services.market.analysis import analyze
from services.market.data import TIMEFRAME_MS, MarketDataService, Series
from services.market.ohlcv import OHLCV

log = structlog.get_logger(__name__)

STABLE = frozenset({"USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "USDP", "USDD", "EUR", "PYUSD"})
LEVERAGED_SUFFIXES = ("UP", "DOWN", "BULL", "BEAR", "3L", "3S", "5L", "5S")
COOLDOWN_CANDLES = 3
TOP_LIST = 10


@dataclass(frozen=True, slots=True)
class ScannerConfig:
    timeframes: tuple[str, ...] = ("1h", "4h")
    universe_size: int = 30
    symbols: tuple[str, ...] = ()  # a fixed universe instead of the top pairs by volume
    min_score: int = 60  # what is stored and shown; subscribers choose their own threshold above it
    concurrency: int = 8


@dataclass(frozen=True, slots=True)
class Opportunity:
    id: int
    exchange: str
    symbol: str
    timeframe: str
    candle_ts: int
    score: int
    direction: str
    price: Decimal
    events: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Subscription:
    active: bool
    symbols: tuple[str, ...]
    timeframes: tuple[str, ...]
    min_score: int


@dataclass(frozen=True, slots=True)
class Delivery:
    telegram_id: int
    locale: str | None
    opportunity: Opportunity


def _opportunity(row: ScanOpportunity) -> Opportunity:
    return Opportunity(
        row.id,
        row.exchange,
        row.symbol,
        row.timeframe,
        row.candle_ts,
        row.score,
        row.direction,
        row.price,
        tuple(row.events or ()),
    )


class Scanner:
    def __init__(
        self,
        market: MarketDataService,
        config: ScannerConfig,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.market = market
        self.config = config
        self.clock = clock

    async def universe(self) -> list[str]:
        if self.config.symbols:
            return list(self.config.symbols)
        quote = self.market.quote
        tickers = await self.market.exchanges.public(self.market.default_exchange).fetch_tickers()
        ranked: list[tuple[Decimal, str]] = []
        for symbol, ticker in tickers.items():
            base, _, q = symbol.partition("/")
            if q != quote or base in STABLE or base.endswith(LEVERAGED_SUFFIXES):
                continue
            ranked.append((ticker.quote_volume or Decimal(0), symbol))
        ranked.sort(key=lambda item: (-item[0], item[1]))
        return [symbol for _, symbol in ranked[: self.config.universe_size]]

    async def scan(
        self, session_factory: async_sessionmaker[AsyncSession], timeframe: str
    ) -> list[Opportunity]:
        """Score the universe on the candles that closed last; store and return the opportunities."""
        symbols = await self.universe()
        slots = asyncio.Semaphore(self.config.concurrency)

        async def load(symbol: str) -> Series | None:
            async with slots:
                try:
                    return await self.market.candles(symbol, timeframe)
                except AppError as exc:
                    log.info("scanner.candles_failed", symbol=symbol, error=exc.message_key)
                    return None

        loaded = [s for s in await asyncio.gather(*(load(s) for s in symbols)) if s is not None]
        scored = await asyncio.to_thread(_score_all, loaded, timeframe, self._closed_open_ms(timeframe))
        stored: list[Opportunity] = []
        async with session_factory() as session:
            for item in scored:
                if item.score < self.config.min_score:
                    continue
                stored.append(await self._store(session, item))
            await session.commit()
        stored.sort(key=lambda o: -o.score)
        return stored

    def _closed_open_ms(self, timeframe: str) -> int:
        """Open time of the candle that closed most recently."""
        period = TIMEFRAME_MS[timeframe]
        now_ms = int(self.clock().timestamp() * 1000)
        return now_ms // period * period - period

    async def _store(self, session: AsyncSession, item: _Scored) -> Opportunity:
        existing = await session.scalar(
            select(ScanOpportunity).where(
                ScanOpportunity.exchange == item.exchange,
                ScanOpportunity.symbol == item.symbol,
                ScanOpportunity.timeframe == item.timeframe,
                ScanOpportunity.candle_ts == item.candle_ts,
            )
        )
        if existing is not None:
            return _opportunity(existing)
        row = ScanOpportunity(
            exchange=item.exchange,
            symbol=item.symbol,
            timeframe=item.timeframe,
            candle_ts=item.candle_ts,
            score=item.score,
            direction=item.direction,
            price=item.price,
            events=list(item.events),
            created_at=self.clock(),
        )
        try:
            async with session.begin_nested():
                session.add(row)
        except IntegrityError:  # stored by another process scanning the same candle
            stored = await session.scalar(
                select(ScanOpportunity).where(
                    ScanOpportunity.exchange == item.exchange,
                    ScanOpportunity.symbol == item.symbol,
                    ScanOpportunity.timeframe == item.timeframe,
                    ScanOpportunity.candle_ts == item.candle_ts,
                )
            )
            assert stored is not None
            return _opportunity(stored)
        return _opportunity(row)

    async def top(self, session: AsyncSession, limit: int = TOP_LIST) -> list[Opportunity]:
        """The latest scan's best opportunities per timeframe, best first."""
        results: list[Opportunity] = []
        for timeframe in self.config.timeframes:
            latest = await session.scalar(
                select(ScanOpportunity.candle_ts)
                .where(ScanOpportunity.timeframe == timeframe)
                .order_by(ScanOpportunity.candle_ts.desc())
                .limit(1)
            )
            if latest is None:
                continue
            rows = await session.scalars(
                select(ScanOpportunity)
                .where(ScanOpportunity.timeframe == timeframe, ScanOpportunity.candle_ts == latest)
                .order_by(ScanOpportunity.score.desc(), ScanOpportunity.symbol)
                .limit(limit)
            )
            results.extend(_opportunity(r) for r in rows)
        results.sort(key=lambda o: (-o.score, o.symbol))
        return results[:limit]

    # ------------------------------------------------------------------------------- subscriptions

    async def subscription(self, session: AsyncSession, user_id: int) -> Subscription | None:
        row = await session.get(ScanSubscription, user_id)
        if row is None:
            return None
        return Subscription(row.active, tuple(row.symbols or ()), tuple(row.timeframes or ()), row.min_score)

    async def subscribe(
        self,
        session: AsyncSession,
        user_id: int,
        *,
        symbols: Sequence[str] = (),
        timeframes: Sequence[str] = (),
        min_score: int | None = None,
    ) -> Subscription:
        for tf in timeframes:
            if tf not in self.config.timeframes:
                raise ValidationError(
                    "scan.errors.timeframe", timeframe=tf, allowed=", ".join(self.config.timeframes)
                )
        resolved = [(await self.market.market(s)).symbol for s in symbols]
        score = self.config.min_score if min_score is None else min_score
        if not 0 <= score <= 100:
            raise ValidationError("scan.errors.score", score=score)
        row = await session.get(ScanSubscription, user_id)
        if row is None:
            row = ScanSubscription(user_id=user_id)
            session.add(row)
        row.active, row.symbols, row.timeframes = True, resolved, list(timeframes)
        row.min_score, row.updated_at = max(score, self.config.min_score), self.clock()
        await session.commit()
        return Subscription(True, tuple(resolved), tuple(timeframes), row.min_score)

    async def unsubscribe(self, session: AsyncSession, user_id: int) -> bool:
        row = await session.get(ScanSubscription, user_id)
        if row is None or not row.active:
            return False
        row.active, row.updated_at = False, self.clock()
        await session.commit()
        return True

    async def deliver(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        found: Sequence[Opportunity],
        tenant_id: int | None = None,
    ) -> list[Delivery]:
        """Record and return what each subscriber should be told (never the same opportunity twice)."""
        if not found:
            return []
        deliveries: list[Delivery] = []
        async with session_factory() as session:
            subs = (
                await session.execute(
                    select(ScanSubscription, User)
                    .join(User, User.id == ScanSubscription.user_id)
                    .where(
                        ScanSubscription.active.is_(True),
                        User.bot_blocked.is_(False),
                        of_tenant(ScanSubscription.user_id, tenant_id),
                    )
                )
            ).all()
            for sub, user in subs:
                for opp in found:
                    if opp.score < sub.min_score:
                        continue
                    if sub.timeframes and opp.timeframe not in sub.timeframes:
                        continue
                    if sub.symbols and opp.symbol not in sub.symbols:
                        continue
                    if await self._recently_sent(session, user.id, opp):
                        continue
                    try:
                        async with session.begin_nested():
                            session.add(
                                ScanDelivery(
                                    user_id=user.id, opportunity_id=opp.id, delivered_at=self.clock()
                                )
                            )
                    except IntegrityError:
                        continue  # already delivered (another process, or a rerun)
                    deliveries.append(Delivery(user.telegram_id, user.locale or user.language_code, opp))
            await session.commit()
        return deliveries

    async def _recently_sent(self, session: AsyncSession, user_id: int, opp: Opportunity) -> bool:
        since = opp.candle_ts - COOLDOWN_CANDLES * TIMEFRAME_MS[opp.timeframe]
        found = await session.scalar(
            select(ScanDelivery.opportunity_id)
            .join(ScanOpportunity, ScanOpportunity.id == ScanDelivery.opportunity_id)
            .where(
                ScanDelivery.user_id == user_id,
                ScanOpportunity.exchange == opp.exchange,
                ScanOpportunity.symbol == opp.symbol,
                ScanOpportunity.timeframe == opp.timeframe,
                ScanOpportunity.direction == opp.direction,
                ScanOpportunity.candle_ts >= since,
            )
            .limit(1)
        )
        return found is not None


@dataclass(frozen=True, slots=True)
class _Scored:
    exchange: str
    symbol: str
    timeframe: str
    candle_ts: int
    score: int
    direction: str
    price: Decimal
    events: tuple[str, ...]


def _score_all(series: Sequence[Series], timeframe: str, closed_open_ms: int) -> list[_Scored]:
    """Analyse each symbol on its candles up to the one that closed (the forming candle is left out)."""
    scored: list[_Scored] = []
    for item in series:
        ohlcv = item.ohlcv
        closed = int((ohlcv.timestamp_ms <= closed_open_ms).sum())
        if closed < 50:
            continue
        view = ohlcv if closed == len(ohlcv) else _head(ohlcv, closed)
        analysis = analyze(view)
        score = analysis.score
        if score.direction == "neutral":
            continue
        scored.append(
            _Scored(
                item.exchange,
                item.market.symbol,
                timeframe,
                int(view.timestamp_ms[-1]),
                round(score.value),
                score.direction,
                Decimal(repr(float(view.close[-1]))),
                tuple(e.key for e in analysis.events),
            )
        )
    return scored


def _head(ohlcv: OHLCV, n: int) -> OHLCV:
    return OHLCV(
        ohlcv.timestamp_ms[:n],
        ohlcv.open[:n],
        ohlcv.high[:n],
        ohlcv.low[:n],
        ohlcv.close[:n],
        ohlcv.volume[:n],
    )


__all__ = ["Delivery", "Opportunity", "Scanner", "ScannerConfig", "Subscription"]
