"""Snapshots built from sample candle series, for the consensus tests."""

from __future__ import annotations

from decimal import Decimal

from services.consensus.snapshot import Snapshot, build_snapshot
from services.exchanges.types import MarketInfo, Ticker
from services.market.analysis import analyze
from services.market.data import Series
from services.market.ohlcv import OHLCV
from tests.unit.market_samples import HOUR_MS, random_walk


def market_info(symbol: str = "BTC/USDT") -> MarketInfo:
    base, quote = symbol.split("/")
    return MarketInfo(
        symbol,
        base,
        quote,
        Decimal("0.0001"),
        Decimal("0.01"),
        None,
        None,
        Decimal("0.001"),
        Decimal("0.001"),
    )


def snapshot_of(ohlcv: OHLCV, symbol: str = "BTC/USDT", timeframe: str = "1h") -> Snapshot:
    series = Series("binance", market_info(symbol), timeframe, ohlcv)
    last = Decimal(str(float(ohlcv.close[-1])))
    ticker = Ticker(symbol, last, None, None, last * 2, last / 2, None, Decimal(1_000_000), Decimal("1.5"), 0)
    now_ms = int(ohlcv.timestamp_ms[-1]) + HOUR_MS + 60_000
    return build_snapshot(series, analyze(ohlcv), ticker, now_ms=now_ms, valid_until_ms=now_ms + HOUR_MS)


def uptrend() -> Snapshot:
    return snapshot_of(random_walk(300, seed=3, drift=0.003, sigma=0.006))


def downtrend() -> Snapshot:
    return snapshot_of(random_walk(300, seed=3, drift=-0.003, sigma=0.006))
