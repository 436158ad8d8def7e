"""Support and resistance levels from swing points.

A swing high is a candle whose high is the highest of the `swing` candles on each side of it (and above the
candle just before it, so a flat top counts once); a swing low likewise with lows. Swing prices, highs and
lows together, are sorted and grouped: a group takes every following price within `tolerance` of its first
price. A level is a group's average price; its touches are the swing points in the group. Levels below the
last close are supports and levels above it resistances, nearest first.

The tolerance is half the last ATR, but never less than 0.1% of the close (and 0.5% of the close when the
history is too short for an ATR).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import talib

from services.market.ohlcv import OHLCV, FloatArray, IntArray

SWING = 5
MAX_LEVELS = 3
TOLERANCE_ATR = 0.5
MIN_TOLERANCE_PCT = 0.1
FALLBACK_TOLERANCE_PCT = 0.5


@dataclass(frozen=True, slots=True)
class Level:
    price: float
    touches: int  # swing highs and lows that formed it
    last_touch_ms: int  # timestamp of its most recent swing point
    distance_pct: float  # (price - last close) in percent of the last close; negative below the price


@dataclass(frozen=True, slots=True)
class Levels:
    supports: tuple[Level, ...]  # below the last close, nearest first
    resistances: tuple[Level, ...]  # above the last close, nearest first

    @property
    def nearest_support(self) -> Level | None:
        return self.supports[0] if self.supports else None

    @property
    def nearest_resistance(self) -> Level | None:
        return self.resistances[0] if self.resistances else None


NO_LEVELS = Levels((), ())


def swing_points(values: FloatArray, swing: int, *, highs: bool) -> IntArray:
    """Indexes of the swing highs (or lows) of `values`: the extreme of the `swing` candles on each side."""
    n = len(values)
    window = 2 * swing + 1
    if swing < 1 or n < window:
        return np.empty(0, dtype=np.int64)
    centre = values[swing : n - swing]
    before = values[swing - 1 : n - swing - 1]
    if highs:
        extreme = talib.MAX(values, window)[window - 1 :]
        mask = (centre >= extreme) & (centre > before)
    else:
        extreme = talib.MIN(values, window)[window - 1 :]
        mask = (centre <= extreme) & (centre < before)
    return np.flatnonzero(mask).astype(np.int64) + swing


def tolerance_for(close: float, atr: float | None) -> float:
    if atr is None or not math.isfinite(atr) or atr <= 0:
        return abs(close) * FALLBACK_TOLERANCE_PCT / 100
    return max(TOLERANCE_ATR * atr, abs(close) * MIN_TOLERANCE_PCT / 100)


def find_levels(
    ohlcv: OHLCV,
    *,
    atr: float | None = None,
    swing: int = SWING,
    max_levels: int = MAX_LEVELS,
    tolerance: float | None = None,
) -> Levels:
    """Up to `max_levels` supports and resistances nearest the last close (`atr`: the last ATR, which sets
    the grouping tolerance unless `tolerance` is given)."""
    if len(ohlcv) == 0:
        return NO_LEVELS
    close = float(ohlcv.close[-1])
    high_idx = swing_points(ohlcv.high, swing, highs=True)
    low_idx = swing_points(ohlcv.low, swing, highs=False)
    if len(high_idx) + len(low_idx) == 0 or not math.isfinite(close) or close == 0:
        return NO_LEVELS
    prices = np.concatenate((ohlcv.high[high_idx], ohlcv.low[low_idx]))
    indexes = np.concatenate((high_idx, low_idx))
    order = np.argsort(prices, kind="stable")
    sorted_prices: list[float] = prices[order].tolist()
    sorted_indexes: list[int] = indexes[order].tolist()
    tol = tolerance if tolerance is not None else tolerance_for(close, atr)
    timestamps = ohlcv.timestamp_ms

    supports: list[Level] = []
    resistances: list[Level] = []
    start = 0
    count = len(sorted_prices)
    while start < count:
        first = sorted_prices[start]
        end = start + 1
        while end < count and sorted_prices[end] - first <= tol:
            end += 1
        members = sorted_prices[start:end]
        price = sum(members) / len(members)
        level = Level(
            price=price,
            touches=len(members),
            last_touch_ms=int(timestamps[max(sorted_indexes[start:end])]),
            distance_pct=100.0 * (price - close) / close,
        )
        (supports if price <= close else resistances).append(level)
        start = end
    return Levels(
        supports=tuple(reversed(supports[-max_levels:])) if max_levels > 0 else (),
        resistances=tuple(resistances[:max_levels]),
    )
