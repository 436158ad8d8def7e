"""Deterministic simulated market: prices, order books, candles and 24h statistics.

One :class:`Market` can be shared by several exchange emulators. Prices follow a seeded geometric random walk
per symbol, advanced in steps of ``tick_seconds`` of the market clock. The clock is real time by default; call
:meth:`Market.freeze` to stop it (tests), then :meth:`Market.step` / :meth:`Market.advance` /
:meth:`Market.set_price` move prices explicitly. Listeners (the order ledgers) are told of every price change
so resting limit orders can fill.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

TIMEFRAMES: dict[str, int] = {
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "4h": 14400,
    "6h": 21600,
    "8h": 28800,
    "12h": 43200,
    "1d": 86400,
    "1w": 604800,
}
HISTORY_CANDLES = 1500
MAX_CATCH_UP_TICKS = 3600
MAX_BOOK_DEPTH = 5000


@dataclass(frozen=True)
class SymbolSpec:
    """A spot market in unified form (``BTC/USDT``) with its trading rules."""

    base: str
    quote: str
    price: Decimal  # initial price
    tick: Decimal  # price tick size
    step: Decimal  # amount step size
    min_amount: Decimal
    min_notional: Decimal
    volatility: Decimal = Decimal("0.0001")  # per-tick relative standard deviation (~3% a day at 1s)

    @property
    def symbol(self) -> str:
        return f"{self.base}/{self.quote}"


def _spec(
    base: str, quote: str, price: str, tick: str, step: str, min_amount: str, min_notional: str
) -> SymbolSpec:
    return SymbolSpec(
        base, quote, Decimal(price), Decimal(tick), Decimal(step), Decimal(min_amount), Decimal(min_notional)
    )


DEFAULT_SYMBOLS: tuple[SymbolSpec, ...] = (
    _spec("BTC", "USDT", "65000", "0.01", "0.00001", "0.00001", "5"),
    _spec("ETH", "USDT", "3500", "0.01", "0.0001", "0.0001", "5"),
    _spec("SOL", "USDT", "150", "0.01", "0.001", "0.001", "5"),
    _spec("XRP", "USDT", "0.6", "0.0001", "0.1", "0.1", "5"),
    _spec("BNB", "USDT", "600", "0.01", "0.001", "0.001", "5"),
    _spec("ADA", "USDT", "0.45", "0.0001", "0.1", "0.1", "5"),
    _spec("DOGE", "USDT", "0.15", "0.00001", "1", "1", "5"),
    _spec("LTC", "USDT", "80", "0.01", "0.001", "0.001", "5"),
    _spec("DOT", "USDT", "7", "0.001", "0.01", "0.01", "5"),
    _spec("LINK", "USDT", "15", "0.001", "0.01", "0.01", "5"),
    _spec("ETH", "BTC", "0.054", "0.00001", "0.0001", "0.0001", "0.0001"),
)


@dataclass(frozen=True)
class Level:
    price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Candle:
    ts_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True)
class Stats24h:
    open: Decimal
    high: Decimal
    low: Decimal
    last: Decimal
    volume: Decimal  # base
    quote_volume: Decimal
    bid: Decimal
    ask: Decimal
    bid_qty: Decimal
    ask_qty: Decimal
    open_ms: int
    close_ms: int

    @property
    def change(self) -> Decimal:
        return self.last - self.open

    @property
    def change_percent(self) -> Decimal:
        return (self.change / self.open * 100) if self.open else Decimal(0)

    @property
    def vwap(self) -> Decimal:
        return self.quote_volume / self.volume if self.volume else self.last


PriceListener = Callable[[str, Decimal, Decimal, Decimal], None]  # symbol, low, high, last


def quantize_down(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_FLOOR) * step


def quantize_up(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_CEILING) * step


def is_multiple(value: Decimal, step: Decimal) -> bool:
    return (value % step) == 0


class _Path:
    """Recorded price ticks of one symbol since the market started."""

    def __init__(self, spec: SymbolSpec, rng: random.Random, start_ms: int) -> None:
        self.spec = spec
        self.rng = rng
        self.price = spec.price
        self.ticks: list[tuple[int, Decimal]] = [(start_ms, spec.price)]

    def record(self, ts_ms: int, price: Decimal) -> None:
        self.price = price
        self.ticks.append((ts_ms, price))
        if len(self.ticks) > 200_000:
            del self.ticks[: len(self.ticks) - 150_000]

    def next_price(self) -> Decimal:
        sigma = float(self.spec.volatility)
        factor = math.exp(self.rng.gauss(-sigma * sigma / 2, sigma))
        new = Decimal(str(float(self.price) * factor))
        return max(self.spec.tick, new.quantize(self.spec.tick, ROUND_HALF_EVEN))


@dataclass
class _History:
    rng: random.Random
    next_close: float
    newest_first: list[Candle] = field(default_factory=list)


class Market:
    """Prices, books, candles and 24h stats of a set of spot symbols."""

    def __init__(
        self,
        symbols: tuple[SymbolSpec, ...] | list[SymbolSpec] = DEFAULT_SYMBOLS,
        seed: int = 42,
        tick_seconds: float = 1.0,
        depth: int = 50,
        live: bool = True,
        start_ms: int | None = None,
    ) -> None:
        self.seed = seed
        self.tick_seconds = tick_seconds
        self.depth = depth
        self._frozen = not live
        self._offset_ms = 0  # virtual clock offset added to real time
        self._frozen_ms = start_ms if start_ms is not None else int(time.time() * 1000)
        self.start_ms = self.now_ms()
        self.specs: dict[str, SymbolSpec] = {s.symbol: s for s in symbols}
        self._paths: dict[str, _Path] = {
            s.symbol: _Path(s, random.Random(f"{seed}:{s.symbol}"), self.start_ms) for s in symbols
        }
        self._last_sync_ms = self.start_ms
        self._listeners: list[PriceListener] = []
        self._history: dict[tuple[str, str], _History] = {}

    # -- clock -----------------------------------------------------------------------------------------------
    def now_ms(self) -> int:
        if self._frozen:
            return self._frozen_ms
        return int(time.time() * 1000) + self._offset_ms

    def freeze(self) -> None:
        """Stop the clock: prices move only through step/advance/set_price."""
        self.sync()
        self._frozen_ms = self.now_ms()
        self._frozen = True

    def unfreeze(self) -> None:
        self._offset_ms = self._frozen_ms - int(time.time() * 1000)
        self._frozen = False
        self._last_sync_ms = self.now_ms()

    @property
    def frozen(self) -> bool:
        return self._frozen

    def advance(self, seconds: float) -> None:
        """Move the clock forward, walking every price by the ticks that fit in ``seconds``."""
        if self._frozen:
            self._frozen_ms += int(seconds * 1000)
        else:
            self._offset_ms += int(seconds * 1000)
        self.sync(force=True)

    def step(self, n: int = 1, symbol: str | None = None) -> None:
        """Walk prices ``n`` ticks without moving the clock (all symbols, or one)."""
        names = [symbol] if symbol else list(self._paths)
        for name in names:
            self._walk(name, n, self.now_ms())

    def sync(self, force: bool = False) -> None:
        """Bring prices up to the clock (called on every request)."""
        now = self.now_ms()
        if self._frozen and not force:
            return
        ticks = int((now - self._last_sync_ms) / 1000 / self.tick_seconds)
        if ticks <= 0:
            return
        tick_ms = self.tick_seconds * 1000
        self._last_sync_ms += int(ticks * tick_ms)
        walked = min(ticks, MAX_CATCH_UP_TICKS)  # after a long pause, only the latest ticks are walked
        first_ms = self._last_sync_ms - (walked - 1) * tick_ms
        for name in self._paths:
            self._walk(name, walked, first_ms, tick_ms)

    def _walk(self, symbol: str, n: int, first_ms: float, tick_ms: float = 0.0) -> None:
        path = self._paths[symbol]
        low = high = path.price
        for i in range(n):
            price = path.next_price()
            low, high = min(low, price), max(high, price)
            path.record(int(first_ms + i * tick_ms), price)
        self._notify(symbol, low, high, path.price)

    # -- prices ----------------------------------------------------------------------------------------------
    def add_listener(self, listener: PriceListener) -> None:
        self._listeners.append(listener)

    def _notify(self, symbol: str, low: Decimal, high: Decimal, last: Decimal) -> None:
        for listener in list(self._listeners):
            listener(symbol, low, high, last)

    def spec(self, symbol: str) -> SymbolSpec:
        return self.specs[symbol]

    def price(self, symbol: str) -> Decimal:
        return self._paths[symbol].price

    def set_price(self, symbol: str, price: Decimal | str | float) -> None:
        """Set the last price explicitly (rounded to the tick); resting orders it crosses fill."""
        spec = self.specs[symbol]
        value = Decimal(str(price)).quantize(spec.tick, ROUND_HALF_EVEN)
        path = self._paths[symbol]
        low, high = min(path.price, value), max(path.price, value)
        path.record(self.now_ms(), value)
        self._notify(symbol, low, high, value)

    # -- order book ------------------------------------------------------------------------------------------
    def half_spread(self, symbol: str) -> Decimal:
        spec = self.specs[symbol]
        rel = quantize_up(self.price(symbol) * Decimal("0.00005"), spec.tick)
        return max(spec.tick, rel)

    def best_bid(self, symbol: str) -> Decimal:
        return self.price(symbol) - self.half_spread(symbol)

    def best_ask(self, symbol: str) -> Decimal:
        return self.price(symbol) + self.half_spread(symbol)

    def _level_amount(self, symbol: str, side: str, index: int, price: Decimal) -> Decimal:
        spec = self.specs[symbol]
        digest = hashlib.sha256(f"{self.seed}:{symbol}:{side}:{index}:{price}".encode()).digest()
        unit = int.from_bytes(digest[:4], "big") / 2**32  # [0, 1)
        notional = Decimal(str(round(200 + unit * 20000 * (1 + index / 10), 2)))  # quote value of the level
        amount = quantize_down(notional / price, spec.step)
        return max(amount, spec.min_amount, spec.step)

    def levels(self, symbol: str, side: str) -> Iterator[Level]:
        """The book's levels on one side (``bid`` or ``ask``), best first, generated lazily."""
        spec = self.specs[symbol]
        price = self.price(symbol)
        half = self.half_spread(symbol)
        gap = max(spec.tick, quantize_up(price * Decimal("0.0001"), spec.tick))
        for i in range(MAX_BOOK_DEPTH):
            level_price = price - half - gap * i if side == "bid" else price + half + gap * i
            if level_price <= 0:
                return
            yield Level(level_price, self._level_amount(symbol, side, i, level_price))

    def book(self, symbol: str, depth: int | None = None) -> tuple[list[Level], list[Level]]:
        """Bids (best first) and asks (best first) around the current price."""
        n = min(depth or self.depth, MAX_BOOK_DEPTH)
        return (
            list(itertools.islice(self.levels(symbol, "bid"), n)),
            list(itertools.islice(self.levels(symbol, "ask"), n)),
        )

    def walk_book(
        self,
        symbol: str,
        side: str,
        amount: Decimal,
        limit: Decimal | None = None,
    ) -> list[Level] | None:
        """Levels a taker ``side`` order of ``amount`` consumes, or None when the book is too thin."""
        fills: list[Level] = []
        remaining = amount
        for level in self.levels(symbol, "ask" if side == "buy" else "bid"):
            if limit is not None and (
                (side == "buy" and level.price > limit) or (side == "sell" and level.price < limit)
            ):
                break
            take = min(level.amount, remaining)
            fills.append(Level(level.price, take))
            remaining -= take
            if remaining <= 0:
                return fills
        return None

    def walk_book_quote(self, symbol: str, side: str, quote_amount: Decimal) -> list[Level] | None:
        """Levels consumed by a taker order spending/receiving ``quote_amount`` of the quote currency."""
        spec = self.specs[symbol]
        fills: list[Level] = []
        remaining = quote_amount
        for level in self.levels(symbol, "ask" if side == "buy" else "bid"):
            cost = level.price * level.amount
            if cost >= remaining:
                take = quantize_down(remaining / level.price, spec.step)
                if take > 0:
                    fills.append(Level(level.price, take))
                return fills
            fills.append(level)
            remaining -= cost
        return None

    # -- candles ---------------------------------------------------------------------------------------------
    def _volume(self, symbol: str, tf: str, ts_ms: int) -> Decimal:
        spec = self.specs[symbol]
        digest = hashlib.sha256(f"{self.seed}:{symbol}:{tf}:{ts_ms}".encode()).digest()
        unit = int.from_bytes(digest[:4], "big") / 2**32
        quote_value = 50_000 * (TIMEFRAMES[tf] / 60) ** 0.8 * (0.3 + 1.4 * unit)
        return quantize_down(Decimal(str(round(quote_value, 2))) / spec.price, spec.step)

    def _history_candles(self, symbol: str, tf: str, count: int) -> list[Candle]:
        """The ``count`` candles before the market start (oldest first): a backward random walk ending at the
        start price, generated lazily and cached so the same candles come back on every call."""
        key = (symbol, tf)
        state = self._history.get(key)
        if state is None:
            state = _History(
                random.Random(f"{self.seed}:{symbol}:{tf}:history"), float(self.specs[symbol].price)
            )
            self._history[key] = state
        spec = self.specs[symbol]
        seconds = TIMEFRAMES[tf]
        sigma = min(float(spec.volatility) * math.sqrt(seconds / self.tick_seconds), 0.08)
        start_bucket = self.start_ms // (seconds * 1000) * seconds * 1000
        count = min(count, HISTORY_CANDLES)
        rng = state.rng
        while len(state.newest_first) < count:
            ts = start_bucket - (len(state.newest_first) + 1) * seconds * 1000
            close = state.next_close
            open_ = close * math.exp(rng.gauss(0, sigma))
            high = max(open_, close) * (1 + abs(rng.gauss(0, sigma / 2)))
            low = min(open_, close) * (1 - abs(rng.gauss(0, sigma / 2)))
            state.newest_first.append(
                Candle(
                    ts,
                    self._q(spec, open_),
                    self._q(spec, high),
                    self._q(spec, low),
                    self._q(spec, close),
                    self._volume(symbol, tf, ts),
                )
            )
            state.next_close = open_
        return state.newest_first[:count][::-1]

    @staticmethod
    def _q(spec: SymbolSpec, value: float) -> Decimal:
        return max(spec.tick, Decimal(str(value)).quantize(spec.tick, ROUND_HALF_EVEN))

    def _live_candles(self, symbol: str, tf: str) -> list[Candle]:
        seconds = TIMEFRAMES[tf] * 1000
        ticks = self._paths[symbol].ticks
        prev_close = ticks[0][1]
        first_bucket = self.start_ms // seconds * seconds
        last_bucket = self.now_ms() // seconds * seconds
        candles: list[Candle] = []
        idx = 0
        bucket = first_bucket
        while bucket <= last_bucket:
            end = bucket + seconds
            open_ = prev_close
            high = low = close = open_
            while idx < len(ticks) and ticks[idx][0] < end:
                price = ticks[idx][1]
                high, low, close = max(high, price), min(low, price), price
                idx += 1
            candles.append(Candle(bucket, open_, high, low, close, self._volume(symbol, tf, bucket)))
            prev_close = close
            bucket = end
            if len(candles) > 5000:  # a very long session: keep the most recent
                candles = candles[-4000:]
        return candles

    def candles(
        self,
        symbol: str,
        timeframe: str,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 500,
    ) -> list[Candle]:
        """OHLCV candles, oldest first: the ``limit`` latest, or the first ``limit`` from ``since_ms``."""
        if timeframe not in TIMEFRAMES:
            raise KeyError(timeframe)
        span = TIMEFRAMES[timeframe] * 1000
        live = self._live_candles(symbol, timeframe)
        if since_ms is not None:
            need = max(0, (self.start_ms // span * span - since_ms) // span + 1)
        elif until_ms is not None:
            need = HISTORY_CANDLES
        else:
            need = max(0, limit - len(live))
        merged = self._history_candles(symbol, timeframe, need) + live
        if since_ms is not None:
            merged = [c for c in merged if c.ts_ms + TIMEFRAMES[timeframe] * 1000 > since_ms]
        if until_ms is not None:
            merged = [c for c in merged if c.ts_ms <= until_ms]
        if since_ms is not None:
            return merged[:limit]
        return merged[-limit:] if limit > 0 else []

    def stats_24h(self, symbol: str) -> Stats24h:
        now = self.now_ms()
        hourly = self.candles(symbol, "1h", since_ms=now - 86_400_000 + 1, limit=30)
        minute = [c for c in self._live_candles(symbol, "1m") if c.ts_ms > now - 86_400_000]
        open_ = hourly[0].open if hourly else self.price(symbol)
        high = max([c.high for c in hourly] + [c.high for c in minute] + [self.price(symbol)])
        low = min([c.low for c in hourly] + [c.low for c in minute] + [self.price(symbol)])
        volume = sum((c.volume for c in hourly[-24:]), Decimal(0))
        quote_volume = sum((c.volume * c.close for c in hourly[-24:]), Decimal(0))
        bids, asks = self.book(symbol, 1)
        spec = self.specs[symbol]
        return Stats24h(
            open_,
            high,
            low,
            self.price(symbol),
            volume,
            quote_volume.quantize(spec.tick, ROUND_HALF_EVEN),
            bids[0].price,
            asks[0].price,
            bids[0].amount,
            asks[0].amount,
            now - 86_400_000,
            now,
        )
