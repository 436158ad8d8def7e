"""A market for the consensus tests: one deterministic price path served as candles and tickers, on a
clock the test moves; and the LLM server's voters."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import cast

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")

from sandbox.llm import LLMServer
from services.consensus.config import LLMVoterConfig
from services.exchanges.types import Candle, ExchangeClient, MarketInfo, Ticker
from services.market.data import TIMEFRAME_MS, MarketDataService, MemoryCandleCache

START = datetime(2026, 5, 11, 9, 20, tzinfo=UTC)
LLM_MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "anthropic/claude-haiku-4-5",
    "gemini": "gemini/gemini-2.5-flash",
}


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def seconds(self) -> float:
        return self.now.timestamp()

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def _d(value: float) -> Decimal:
    return Decimal(f"{value:.6f}")


@dataclass
class PathExchange:
    """Prices follow a gentle uptrend with a wave; `shift(at, factor)` multiplies every price from `at`."""

    clock: Clock
    exchange_id: str = "binance"
    start_price: float = 30_000.0
    drift_per_hour: float = 0.0006
    shifts: list[tuple[int, float]] = field(default_factory=list)
    requests: int = 0

    def shift(self, at: datetime, factor: float) -> None:
        self.shifts.append((int(at.timestamp() * 1000), factor))

    def price_at(self, t_ms: int) -> float:
        hours = (t_ms - int(START.timestamp() * 1000)) / 3_600_000
        wave = 0.004 * math.sin(hours / 2) + 0.003 * math.sin(hours * 1.7) + 0.002 * math.sin(hours * 4.3)
        price = self.start_price * math.exp(self.drift_per_hour * hours) * (1 + wave)
        for at, factor in self.shifts:
            if t_ms >= at:
                price *= factor
        return price

    def public(self, exchange_id: str) -> ExchangeClient:
        return cast(ExchangeClient, self)

    async def market(self, symbol: str) -> MarketInfo:
        base, quote = symbol.split("/")
        return MarketInfo(
            symbol, base, quote, Decimal("0.00001"), Decimal("0.01"), None, None, Decimal("0.001"),
            Decimal("0.001"),
        )  # fmt: skip

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since_ms: int | None = None, limit: int = 500
    ) -> list[Candle]:
        self.requests += 1
        period = TIMEFRAME_MS[timeframe]
        now_ms = int(self.clock.seconds() * 1000)
        last_open = now_ms // period * period
        first = since_ms // period * period if since_ms is not None else last_open - (limit - 1) * period
        candles = []
        for open_ms in range(first, last_open + 1, period):
            close_ms = min(open_ms + period - 1, now_ms)
            o, c = self.price_at(open_ms), self.price_at(close_ms)
            mid = self.price_at(open_ms + (close_ms - open_ms) // 2)
            hi, lo = max(o, c, mid) * 1.001, min(o, c, mid) * 0.999
            candles.append(Candle(open_ms, _d(o), _d(hi), _d(lo), _d(c), Decimal(100)))
        return candles[-limit:]

    async def fetch_ticker(self, symbol: str) -> Ticker:
        now_ms = int(self.clock.seconds() * 1000)
        last = _d(self.price_at(now_ms))
        day_ago = _d(self.price_at(now_ms - 86_400_000))
        change = (last / day_ago - 1) * 100
        return Ticker(
            symbol, last, last, last, last * Decimal("1.01"), day_ago, Decimal(10), None, change, now_ms
        )


def market_service(
    clock: Clock, exchange: PathExchange | None = None
) -> tuple[MarketDataService, PathExchange]:
    exchange = exchange or PathExchange(clock)
    data = MarketDataService(exchange, MemoryCandleCache(clock=clock.seconds), clock=clock.seconds)
    return data, exchange


def llm_voter_configs(
    llm: LLMServer, *, timeout: float = 5.0, providers: tuple[str, ...] = ("openai", "anthropic", "gemini")
) -> list[LLMVoterConfig]:
    configs = []
    for provider in providers:
        kwargs = llm.client_kwargs(provider)
        configs.append(
            LLMVoterConfig(
                model=LLM_MODELS[provider],
                api_base=kwargs["api_base"],
                api_key=kwargs["api_key"],
                timeout=timeout,
            )
        )
    return configs
