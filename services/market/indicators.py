"""Technical indicators over a symbol's candles, computed with TA-Lib on whole columns at once.

Every series has the candles' length and is NaN where its period has not filled yet, so a short history
gives NaN values, never an error. Periods are the usual ones: RSI 14 (Wilder), MACD 12/26/9, EMA 20/50/200
(seeded with the simple average of their first period), Bollinger Bands 20 with 2 population standard
deviations, ATR 14 and ADX 14 (Wilder), and the volume z-score of each candle against the 20 candles
before it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import talib

from services.market.ohlcv import OHLCV, FloatArray

RSI_PERIOD = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
EMA_FAST, EMA_MID, EMA_SLOW = 20, 50, 200
BB_PERIOD, BB_DEVIATIONS = 20, 2.0
ATR_PERIOD = 14
ADX_PERIOD = 14
VOLUME_Z_PERIOD = 20
# A volume baseline whose deviation is below this fraction of its mean is flat: no z-score.
_FLAT_VOLUME = 1e-6


@dataclass(frozen=True, slots=True)
class IndicatorSnapshot:
    """The indicators on one candle; None where the history is too short (or the value undefined)."""

    timestamp_ms: int | None
    close: float | None
    rsi: float | None
    macd: float | None
    macd_signal: float | None
    macd_hist: float | None
    ema20: float | None
    ema50: float | None
    ema200: float | None
    bb_upper: float | None
    bb_middle: float | None
    bb_lower: float | None
    atr: float | None
    adx: float | None
    volume_z: float | None
    atr_pct: float | None  # ATR in percent of the close
    bb_width_pct: float | None  # (upper - lower) in percent of the middle band


def _value(series: FloatArray, index: int) -> float | None:
    if not -len(series) <= index < len(series):
        return None
    value = float(series[index])
    return value if math.isfinite(value) else None


def _ratio_pct(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return 100.0 * numerator / denominator


@dataclass(frozen=True, slots=True, eq=False)
class Indicators:
    """Indicator series aligned with the candles they were computed from (same length, NaN until filled)."""

    ohlcv: OHLCV
    rsi: FloatArray
    macd: FloatArray
    macd_signal: FloatArray
    macd_hist: FloatArray
    ema20: FloatArray
    ema50: FloatArray
    ema200: FloatArray
    bb_upper: FloatArray
    bb_middle: FloatArray
    bb_lower: FloatArray
    atr: FloatArray
    adx: FloatArray
    volume_z: FloatArray

    def __len__(self) -> int:
        return len(self.ohlcv)

    def at(self, index: int) -> IndicatorSnapshot:
        """The values on candle `index` (negative counts from the end)."""
        close = _value(self.ohlcv.close, index)
        atr = _value(self.atr, index)
        upper, middle, lower = (_value(s, index) for s in (self.bb_upper, self.bb_middle, self.bb_lower))
        in_range = -len(self) <= index < len(self)
        return IndicatorSnapshot(
            timestamp_ms=int(self.ohlcv.timestamp_ms[index]) if in_range else None,
            close=close,
            rsi=_value(self.rsi, index),
            macd=_value(self.macd, index),
            macd_signal=_value(self.macd_signal, index),
            macd_hist=_value(self.macd_hist, index),
            ema20=_value(self.ema20, index),
            ema50=_value(self.ema50, index),
            ema200=_value(self.ema200, index),
            bb_upper=upper,
            bb_middle=middle,
            bb_lower=lower,
            atr=atr,
            adx=_value(self.adx, index),
            volume_z=_value(self.volume_z, index),
            atr_pct=_ratio_pct(atr, close),
            bb_width_pct=_ratio_pct(None if upper is None or lower is None else upper - lower, middle),
        )

    def latest(self) -> IndicatorSnapshot:
        """The values on the last candle."""
        return self.at(-1)


def volume_zscore(volume: FloatArray, period: int = VOLUME_Z_PERIOD) -> FloatArray:
    """(volume - mean) / standard deviation, the mean and (population) deviation taken over the `period`
    candles before each candle, so a spike does not dilute its own baseline. NaN for the first `period`
    candles and where the baseline is flat."""
    z = np.full(len(volume), np.nan)
    if len(volume) <= period:
        return z
    mean = talib.SMA(volume, period)[period - 1 : -1]
    std = talib.STDDEV(volume, period, 1.0)[period - 1 : -1]
    usable = std > _FLAT_VOLUME * np.abs(mean)
    np.divide(volume[period:] - mean, std, out=z[period:], where=usable)
    return z


def compute_indicators(ohlcv: OHLCV) -> Indicators:
    """Every indicator of the module over the whole history."""
    high, low, close = ohlcv.high, ohlcv.low, ohlcv.close
    macd, macd_signal, macd_hist = talib.MACD(close, MACD_FAST, MACD_SLOW, MACD_SIGNAL)
    bb_upper, bb_middle, bb_lower = talib.BBANDS(
        close, BB_PERIOD, BB_DEVIATIONS, BB_DEVIATIONS, talib.MA_Type.SMA
    )
    return Indicators(
        ohlcv=ohlcv,
        rsi=talib.RSI(close, RSI_PERIOD),
        macd=macd,
        macd_signal=macd_signal,
        macd_hist=macd_hist,
        ema20=talib.EMA(close, EMA_FAST),
        ema50=talib.EMA(close, EMA_MID),
        ema200=talib.EMA(close, EMA_SLOW),
        bb_upper=bb_upper,
        bb_middle=bb_middle,
        bb_lower=bb_lower,
        atr=talib.ATR(high, low, close, ATR_PERIOD),
        adx=talib.ADX(high, low, close, ADX_PERIOD),
        volume_z=volume_zscore(ohlcv.volume),
    )
