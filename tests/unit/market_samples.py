"""Candle series for the market analysis tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from services.market.ohlcv import OHLCV

START_MS = 1_700_000_000_000
HOUR_MS = 3_600_000


def from_closes(
    closes: Sequence[float] | np.ndarray,
    *,
    volumes: Sequence[float] | np.ndarray | None = None,
    wick: float = 0.002,
) -> OHLCV:
    """Candles whose open is the previous close and whose wicks reach `wick` (a fraction) past the body."""
    close = np.asarray(closes, dtype=np.float64)
    n = len(close)
    open_ = np.concatenate((close[:1], close[:-1])) if n else close.copy()
    high = np.maximum(open_, close) * (1 + wick)
    low = np.minimum(open_, close) * (1 - wick)
    volume = np.full(n, 1000.0) if volumes is None else np.asarray(volumes, dtype=np.float64)
    timestamps = START_MS + HOUR_MS * np.arange(n, dtype=np.int64)
    return OHLCV.from_arrays(timestamps, open_, high, low, close, volume)


def random_walk(
    n: int, *, seed: int = 7, drift: float = 0.0, sigma: float = 0.01, start: float = 100.0
) -> OHLCV:
    """A seeded geometric random walk with noisy wicks and log-normal volumes."""
    rng = np.random.default_rng(seed)
    close = start * np.exp(np.cumsum(rng.normal(drift, sigma, n)))
    open_ = np.concatenate(([start], close[:-1]))[:n]
    spread = np.abs(rng.normal(0.0, sigma / 2, n)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    volume = rng.lognormal(7.0, 0.3, n)
    timestamps = START_MS + HOUR_MS * np.arange(n, dtype=np.int64)
    return OHLCV.from_arrays(timestamps, open_, high, low, close, volume)


def mirrored(ohlcv: OHLCV, centre: float) -> OHLCV:
    """The series reflected about `centre`: every rise becomes an equal fall (highs and lows swap)."""
    return OHLCV.from_arrays(
        ohlcv.timestamp_ms,
        2 * centre - ohlcv.open,
        2 * centre - ohlcv.low,
        2 * centre - ohlcv.high,
        2 * centre - ohlcv.close,
        ohlcv.volume,
    )
