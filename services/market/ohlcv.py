"""Candles as column arrays (float64 prices and volumes, int64 millisecond timestamps), oldest first.

Indicators are statistics, so they are computed in binary floating point; amounts and prices that become
orders stay `Decimal` in the exchange and trading layers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from services.exchanges.types import Candle

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def _floats(values: ArrayLike) -> FloatArray:
    array = np.ascontiguousarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError("OHLCV columns must be one-dimensional")
    return array


@dataclass(frozen=True, slots=True, eq=False)
class OHLCV:
    """One symbol's candles on one timeframe. Columns are contiguous, one-dimensional and of equal length."""

    timestamp_ms: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __post_init__(self) -> None:
        length = len(self.close)
        columns = (self.timestamp_ms, self.open, self.high, self.low, self.volume)
        if any(column.ndim != 1 or len(column) != length for column in (self.close, *columns)):
            raise ValueError("OHLCV columns must be one-dimensional and of equal length")

    @classmethod
    def from_arrays(
        cls,
        timestamp_ms: ArrayLike,
        open: ArrayLike,
        high: ArrayLike,
        low: ArrayLike,
        close: ArrayLike,
        volume: ArrayLike,
    ) -> OHLCV:
        """Copies (where needed) into contiguous int64 / float64 columns."""
        timestamps = np.ascontiguousarray(timestamp_ms, dtype=np.int64)
        if timestamps.ndim != 1:
            raise ValueError("OHLCV columns must be one-dimensional")
        return cls(timestamps, _floats(open), _floats(high), _floats(low), _floats(close), _floats(volume))

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[float | int]]) -> OHLCV:
        """From `[timestamp_ms, open, high, low, close, volume]` rows, as ccxt returns them."""
        table = np.asarray(list(rows), dtype=np.float64).reshape(-1, 6)
        return cls.from_arrays(table[:, 0], table[:, 1], table[:, 2], table[:, 3], table[:, 4], table[:, 5])

    @classmethod
    def from_candles(cls, candles: Sequence[Candle]) -> OHLCV:
        """From the exchange layer's candles (Decimal values), oldest first."""
        return cls.from_rows(
            (c.timestamp_ms, float(c.open), float(c.high), float(c.low), float(c.close), float(c.volume))
            for c in candles
        )

    def __len__(self) -> int:
        return len(self.close)

    def tail(self, count: int) -> OHLCV:
        """The last `count` candles (views, no copy)."""
        start = max(len(self) - max(count, 0), 0)
        return OHLCV(
            self.timestamp_ms[start:],
            self.open[start:],
            self.high[start:],
            self.low[start:],
            self.close[start:],
            self.volume[start:],
        )
