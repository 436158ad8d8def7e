"""Candles and tickers through the exchange layer, cached and updated incrementally.

A symbol's candles on a timeframe are fetched once in full, then only from the last stored candle on:
while the current period has not ended nothing is fetched again (the forming candle is as of the last
fetch); after it ends, one request brings the candle that closed and any new ones. The cache is Redis when
configured (shared by every bot process), otherwise in-process.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from services.errors import ValidationError
from services.exchanges.symbols import normalize_symbol
from services.exchanges.types import Candle, ExchangeClient, MarketInfo, Ticker
from services.market.ohlcv import OHLCV

TIMEFRAME_MS: dict[str, int] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}
DEFAULT_HISTORY = 500
Row = list[float]  # [timestamp_ms, open, high, low, close, volume]


class UnknownTimeframe(ValidationError):
    message_key = "market.errors.timeframe"


class PublicExchanges(Protocol):
    def public(self, exchange_id: str) -> ExchangeClient: ...


class CandleCache(Protocol):
    async def load(self, key: str) -> tuple[float, list[Row]] | None:
        """(fetched_at seconds, rows oldest first) or None."""
        ...

    async def store(self, key: str, fetched_at: float, rows: list[Row], ttl_seconds: int) -> None: ...


class MemoryCandleCache:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._items: dict[str, tuple[float, float, list[Row]]] = {}
        self._clock = clock

    async def load(self, key: str) -> tuple[float, list[Row]] | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, fetched_at, rows = item
        if expires < self._clock():
            del self._items[key]
            return None
        return fetched_at, rows

    async def store(self, key: str, fetched_at: float, rows: list[Row], ttl_seconds: int) -> None:
        self._items[key] = (self._clock() + ttl_seconds, fetched_at, rows)


class RedisCandleCache:
    """Shared by every bot process: one JSON value per symbol and timeframe."""

    def __init__(self, redis: Redis, prefix: str = "cu:ohlcv:") -> None:
        self.redis = redis
        self.prefix = prefix

    async def load(self, key: str) -> tuple[float, list[Row]] | None:
        raw = await self.redis.get(self.prefix + key)
        if raw is None:
            return None
        data = json.loads(raw)
        return float(data["fetched_at"]), [list(map(float, row)) for row in data["rows"]]

    async def store(self, key: str, fetched_at: float, rows: list[Row], ttl_seconds: int) -> None:
        payload = json.dumps({"fetched_at": fetched_at, "rows": rows}, separators=(",", ":"))
        await self.redis.set(self.prefix + key, payload, ex=ttl_seconds)


@dataclass(frozen=True, slots=True)
class Series:
    exchange: str
    market: MarketInfo
    timeframe: str
    ohlcv: OHLCV


def _rows(candles: list[Candle]) -> list[Row]:
    return [
        [float(c.timestamp_ms), float(c.open), float(c.high), float(c.low), float(c.close), float(c.volume)]
        for c in candles
    ]


def _merge(old: list[Row], new: list[Row], keep: int) -> list[Row]:
    """New candles replace stored ones with the same open time (the one that was still forming)."""
    if not new:
        return old[-keep:]
    first = new[0][0]
    merged = [row for row in old if row[0] < first] + new
    return merged[-keep:]


class MarketDataService:
    def __init__(
        self,
        exchanges: PublicExchanges,
        cache: CandleCache,
        *,
        default_exchange: str = "binance",
        quote: str = "USDT",
        history: int = DEFAULT_HISTORY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.exchanges = exchanges
        self.cache = cache
        self.default_exchange = default_exchange
        self.quote = quote
        self.history = history
        self.clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self.fetches = 0  # candle requests sent to exchanges (for the metrics and the tests)

    def resolve_timeframe(self, timeframe: str | None, default: str = "1h") -> str:
        tf = (timeframe or default).strip().lower()
        if tf == "1w" or tf not in TIMEFRAME_MS:
            raise UnknownTimeframe(timeframe=timeframe or "", allowed=", ".join(TIMEFRAME_MS))
        return tf

    async def market(self, symbol: str, exchange: str | None = None) -> MarketInfo:
        """``BTC`` means BTC against the default quote; unknown symbols raise with the closest ones."""
        wanted = normalize_symbol(symbol)
        if "/" not in wanted:
            wanted = f"{wanted}/{self.quote}"
        return await self.exchanges.public(exchange or self.default_exchange).market(wanted)

    async def candles(
        self, symbol: str, timeframe: str, *, exchange: str | None = None, limit: int | None = None
    ) -> Series:
        exchange_id = exchange or self.default_exchange
        tf = self.resolve_timeframe(timeframe)
        market = await self.market(symbol, exchange_id)
        keep = limit or self.history
        key = f"{exchange_id}:{market.symbol}:{tf}"
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one fetch per key at a time: concurrent readers share it
            rows = await self._rows(exchange_id, market.symbol, tf, key, keep)
        rows = rows[-keep:]
        ohlcv = OHLCV.from_arrays(
            [int(r[0]) for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
            [r[4] for r in rows],
            [r[5] for r in rows],
        )
        return Series(exchange_id, market, tf, ohlcv)

    async def _rows(self, exchange_id: str, symbol: str, tf: str, key: str, keep: int) -> list[Row]:
        period = TIMEFRAME_MS[tf]
        now = self.clock()
        period_start = int(now * 1000) // period * period
        cached = await self.cache.load(key)
        ttl = max(3600, period * 3 // 1000)
        if cached is not None:
            fetched_at, rows = cached
            fetched_period = int(fetched_at * 1000) // period * period
            if len(rows) >= min(keep, self.history) and rows:
                if fetched_period >= period_start:
                    return rows  # fetched within this period: nothing new has closed
                client = self.exchanges.public(exchange_id)
                since = int(rows[-1][0])
                missing = (period_start - since) // period + 1
                if missing <= self.history:
                    self.fetches += 1
                    new = _rows(await client.fetch_ohlcv(symbol, tf, since_ms=since, limit=missing + 1))
                    merged = _merge(rows, new, max(keep, self.history))
                    await self.cache.store(key, now, merged, ttl)
                    return merged
        client = self.exchanges.public(exchange_id)
        self.fetches += 1
        rows = _rows(await client.fetch_ohlcv(symbol, tf, limit=max(keep, self.history)))
        await self.cache.store(key, now, rows, ttl)
        return rows

    async def ticker(self, symbol: str, exchange: str | None = None) -> Ticker:
        market = await self.market(symbol, exchange)
        return await self.exchanges.public(exchange or self.default_exchange).fetch_ticker(market.symbol)


__all__ = [
    "TIMEFRAME_MS",
    "CandleCache",
    "MarketDataService",
    "MemoryCandleCache",
    "RedisCandleCache",
    "Series",
    "UnknownTimeframe",
]
