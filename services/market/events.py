"""Events on the last candles that a scanner scores and a user is told about.

Each event has a kind, a direction and a strength in [0, 1] (0.5 at the threshold that makes it an event,
1 when decisively past it), the candle it happened on (`age`: 0 is the last candle) and the value behind it.

* RSI below 30 is oversold (bullish), above 70 overbought (bearish), on the last candle; strength
  0.5 + distance past the threshold / 20.
* EMA 20/50 and 50/200 crosses and MACD line/signal crosses within the last `lookback` candles (the most
  recent cross of each pair): fast above slow is bullish (50/200: the golden cross), below is bearish (the
  death cross); strength falls with age, (lookback - age) / lookback. `value` is fast - slow on the last
  candle.
* A close above the upper Bollinger band is a bullish breakout, below the lower band a bearish one, on the
  last candle; `value` is the distance past the band in half-band widths (2 standard deviations), strength
  0.5 + that distance.
* A volume z-score above 2.5 on the last candle is a spike, bullish on a rising candle (close above open)
  and bearish on a falling one; strength z / 5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from services.market.indicators import Indicators
from services.market.ohlcv import FloatArray

Direction = Literal["bullish", "bearish"]

RSI_OVERSOLD = 30.0
RSI_OVERBOUGHT = 70.0
RSI_FULL_STRENGTH = 20.0  # RSI points past the threshold for strength 1
VOLUME_SPIKE_Z = 2.5
CROSS_LOOKBACK = 3


class EventKind(StrEnum):
    RSI_OVERSOLD = "rsi_oversold"
    RSI_OVERBOUGHT = "rsi_overbought"
    EMA_CROSS_20_50 = "ema_cross_20_50"
    EMA_CROSS_50_200 = "ema_cross_50_200"
    MACD_CROSS = "macd_cross"
    BOLLINGER_BREAKOUT = "bollinger_breakout"
    VOLUME_SPIKE = "volume_spike"


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    direction: Direction
    strength: float  # 0..1
    age: int = 0  # candles before the last one
    value: float = math.nan

    @property
    def key(self) -> str:
        """A message key suffix, e.g. "ema_cross_50_200.bullish" (the golden cross)."""
        return f"{self.kind.value}.{self.direction}"


def _clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return min(max(value, low), high)


def last_cross(
    fast: FloatArray, slow: FloatArray, lookback: int = CROSS_LOOKBACK
) -> tuple[Direction, int] | None:
    """The most recent cross of `fast` over `slow` within the last `lookback` candles: its direction and
    age. A cross is a change of sign of fast - slow (a candle where they are equal keeps the sign before)."""
    n = len(fast)
    if n < 2 or lookback < 1:
        return None
    start = max(n - lookback - 1, 0)
    diffs: list[float] = (fast[start:] - slow[start:]).tolist()
    found: tuple[Direction, int] | None = None
    previous = 0
    for offset, diff in enumerate(diffs):
        if not math.isfinite(diff) or diff == 0:
            continue
        sign = 1 if diff > 0 else -1
        if previous and sign != previous:
            found = ("bullish" if sign > 0 else "bearish", len(diffs) - 1 - offset)
        previous = sign
    return found


def _cross_event(kind: EventKind, fast: FloatArray, slow: FloatArray, lookback: int) -> Event | None:
    cross = last_cross(fast, slow, lookback)
    if cross is None:
        return None
    direction, age = cross
    return Event(kind, direction, (lookback - age) / lookback, age, float(fast[-1] - slow[-1]))


def detect_events(indicators: Indicators, *, lookback: int = CROSS_LOOKBACK) -> tuple[Event, ...]:
    """Every event on the last candle(s); empty for an empty history."""
    if len(indicators) == 0:
        return ()
    events: list[Event] = []
    last = indicators.latest()

    if last.rsi is not None:
        if last.rsi < RSI_OVERSOLD:
            strength = _clamp(0.5 + (RSI_OVERSOLD - last.rsi) / RSI_FULL_STRENGTH)
            events.append(Event(EventKind.RSI_OVERSOLD, "bullish", strength, 0, last.rsi))
        elif last.rsi > RSI_OVERBOUGHT:
            strength = _clamp(0.5 + (last.rsi - RSI_OVERBOUGHT) / RSI_FULL_STRENGTH)
            events.append(Event(EventKind.RSI_OVERBOUGHT, "bearish", strength, 0, last.rsi))

    for kind, fast, slow in (
        (EventKind.EMA_CROSS_20_50, indicators.ema20, indicators.ema50),
        (EventKind.EMA_CROSS_50_200, indicators.ema50, indicators.ema200),
        (EventKind.MACD_CROSS, indicators.macd, indicators.macd_signal),
    ):
        event = _cross_event(kind, fast, slow, lookback)
        if event is not None:
            events.append(event)

    close, upper, middle, lower = last.close, last.bb_upper, last.bb_middle, last.bb_lower
    if close is not None and upper is not None and middle is not None and lower is not None:
        half_width = upper - middle
        if close > upper:
            excess = (close - upper) / half_width if half_width > 0 else 1.0
            events.append(Event(EventKind.BOLLINGER_BREAKOUT, "bullish", _clamp(0.5 + excess), 0, excess))
        elif close < lower:
            excess = (lower - close) / half_width if half_width > 0 else 1.0
            events.append(Event(EventKind.BOLLINGER_BREAKOUT, "bearish", _clamp(0.5 + excess), 0, excess))

    if last.volume_z is not None and last.volume_z > VOLUME_SPIKE_Z:
        candle_open = float(indicators.ohlcv.open[-1])
        if close is not None and close != candle_open:
            direction: Direction = "bullish" if close > candle_open else "bearish"
            strength = _clamp(last.volume_z / (2 * VOLUME_SPIKE_Z))
            events.append(Event(EventKind.VOLUME_SPIKE, direction, strength, 0, last.volume_z))
    return tuple(events)
