"""An opportunity score for the scanner and a structured summary for the market card.

Score: three components, each in [-1, 1] (positive is bullish), are blended and the magnitude becomes the
score, 0 to 100; the sign gives the direction.

* trend (weight 0.35): the signs of close - EMA20, EMA20 - EMA50 and EMA50 - EMA200 summed and divided by
  3 (a pair not known yet counts 0), scaled by ADX: x0.25 at ADX 10 or below, rising linearly to x1 at
  ADX 25 and above (x0.5 while ADX is not known yet);
* momentum (weight 0.25): the average of (RSI - 50) / 20 and MACD histogram / (0.25 ATR), each clamped to
  [-1, 1];
* events (weight 0.40): the sum over events of weight x strength, + for bullish, - for bearish, clamped to
  [-1, 1]; weights: EMA 50/200 cross 1.0, EMA 20/50 cross 0.6, RSI oversold/overbought 0.6, MACD cross 0.5,
  Bollinger breakout 0.5, volume spike 0.4.

score = round(100 x |0.35 trend + 0.25 momentum + 0.40 events|); the direction is "neutral" below 5.

Summary: values are keys a handler maps to its locale (`market.trend.up` ...), numbers are left unformatted.

* trend: "up" / "down" when most of the known EMA comparisons above point that way and ADX is at least 20
  (or not known yet), "sideways" otherwise, "unknown" before EMA20 exists; trend_strength "strong" at ADX 25+;
* momentum: "bullish" / "bearish" when the momentum component is beyond +-0.2, else "neutral";
  rsi_zone: oversold (< 30), overbought (> 70) or neutral; macd: above / below its signal line;
* volatility: the percentile of the last ATR% and of the last Bollinger band width among their last 100
  values, averaged: "low" below 0.25, "high" above 0.75, else "normal" (needs 20 values of each);
* the nearest support and resistance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any, Literal

import numpy as np

from services.market.events import RSI_OVERBOUGHT, RSI_OVERSOLD, Event, EventKind
from services.market.indicators import Indicators, IndicatorSnapshot
from services.market.levels import Level, Levels
from services.market.ohlcv import FloatArray

ScoreDirection = Literal["bullish", "bearish", "neutral"]
Trend = Literal["up", "down", "sideways", "unknown"]
TrendStrength = Literal["strong", "weak", "unknown"]
Momentum = Literal["bullish", "bearish", "neutral", "unknown"]
RsiZone = Literal["oversold", "overbought", "neutral", "unknown"]
MacdPosition = Literal["above_signal", "below_signal", "unknown"]
Volatility = Literal["low", "normal", "high", "unknown"]

TREND_WEIGHT, MOMENTUM_WEIGHT, EVENTS_WEIGHT = 0.35, 0.25, 0.40
EVENT_WEIGHTS: dict[EventKind, float] = {
    EventKind.EMA_CROSS_50_200: 1.0,
    EventKind.EMA_CROSS_20_50: 0.6,
    EventKind.RSI_OVERSOLD: 0.6,
    EventKind.RSI_OVERBOUGHT: 0.6,
    EventKind.MACD_CROSS: 0.5,
    EventKind.BOLLINGER_BREAKOUT: 0.5,
    EventKind.VOLUME_SPIKE: 0.4,
}
NEUTRAL_BELOW = 5
ADX_TRENDING = 20.0
ADX_STRONG = 25.0
ADX_WEAK = 10.0
MOMENTUM_THRESHOLD = 0.2
VOLATILITY_WINDOW = 100
VOLATILITY_MIN_VALUES = 20


def _clamp(value: float, low: float = -1.0, high: float = 1.0) -> float:
    return min(max(value, low), high)


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def ema_alignment(last: IndicatorSnapshot) -> float | None:
    """Sum of the signs of close - EMA20, EMA20 - EMA50 and EMA50 - EMA200, over 3: a pair not known yet
    (short history) counts 0. None before EMA20 exists."""
    chain = (last.close, last.ema20, last.ema50, last.ema200)
    signs = [_sign(a - b) for a, b in pairwise(chain) if a is not None and b is not None]
    return sum(signs) / 3 if signs else None


def trend_component(last: IndicatorSnapshot) -> float:
    alignment = ema_alignment(last)
    if alignment is None:
        return 0.0
    if last.adx is None:
        factor = 0.5
    else:
        factor = 0.25 + 0.75 * _clamp((last.adx - ADX_WEAK) / (ADX_STRONG - ADX_WEAK), 0.0, 1.0)
    return alignment * factor


def momentum_component(last: IndicatorSnapshot) -> float | None:
    terms: list[float] = []
    if last.rsi is not None:
        terms.append(_clamp((last.rsi - 50.0) / 20.0))
    if last.macd_hist is not None and last.atr is not None and last.atr > 0:
        terms.append(_clamp(last.macd_hist / (0.25 * last.atr)))
    return sum(terms) / len(terms) if terms else None


def events_component(events: Sequence[Event]) -> float:
    total = 0.0
    for event in events:
        weight = EVENT_WEIGHTS.get(event.kind, 0.0) * event.strength
        total += weight if event.direction == "bullish" else -weight
    return _clamp(total)


@dataclass(frozen=True, slots=True)
class Score:
    value: int  # 0..100
    direction: ScoreDirection
    trend: float  # components, each -1..1, positive bullish
    momentum: float
    events: float


def score_opportunity(indicators: Indicators, events: Sequence[Event]) -> Score:
    last = indicators.latest()
    trend = trend_component(last)
    momentum = momentum_component(last) or 0.0
    event_part = events_component(events)
    net = TREND_WEIGHT * trend + MOMENTUM_WEIGHT * momentum + EVENTS_WEIGHT * event_part
    value = min(100, round(100 * abs(net)))
    direction: ScoreDirection = "neutral" if value < NEUTRAL_BELOW else ("bullish" if net > 0 else "bearish")
    return Score(value, direction, trend, momentum, event_part)


def _percentile_of_last(series: FloatArray) -> float | None:
    """Fraction of the last `VOLATILITY_WINDOW` finite values that are at most the last value."""
    if len(series) == 0 or not math.isfinite(series[-1]):
        return None
    window = series[-VOLATILITY_WINDOW:]
    window = window[np.isfinite(window)]
    if len(window) < VOLATILITY_MIN_VALUES:
        return None
    return float(np.count_nonzero(window <= window[-1])) / len(window)


def volatility_rank(indicators: Indicators) -> float | None:
    """Where the last ATR% and Bollinger band width sit among their recent values, 0 (calmest) to 1."""
    tail = slice(-VOLATILITY_WINDOW, None)
    close = indicators.ohlcv.close[tail]
    with np.errstate(divide="ignore", invalid="ignore"):
        atr_pct = indicators.atr[tail] / close
        width = (indicators.bb_upper[tail] - indicators.bb_lower[tail]) / indicators.bb_middle[tail]
    ranks = [r for r in (_percentile_of_last(atr_pct), _percentile_of_last(width)) if r is not None]
    return sum(ranks) / len(ranks) if ranks else None


@dataclass(frozen=True, slots=True)
class MarketSummary:
    trend: Trend
    trend_strength: TrendStrength
    momentum: Momentum
    rsi_zone: RsiZone
    macd: MacdPosition
    volatility: Volatility
    close: float | None
    rsi: float | None
    adx: float | None
    atr_pct: float | None
    bb_width_pct: float | None
    volatility_rank: float | None  # 0..1
    support: Level | None
    resistance: Level | None

    def as_dict(self) -> dict[str, Any]:
        """Plain values (levels as dicts) for templates and JSON."""
        return asdict(self)


def _trend(last: IndicatorSnapshot) -> Trend:
    alignment = ema_alignment(last)
    if alignment is None:
        return "unknown"
    if last.adx is not None and last.adx < ADX_TRENDING:
        return "sideways"
    if alignment > 0:
        return "up"
    if alignment < 0:
        return "down"
    return "sideways"


def summarize(indicators: Indicators, levels: Levels) -> MarketSummary:
    last = indicators.latest()
    momentum_value = momentum_component(last)
    momentum: Momentum
    if momentum_value is None:
        momentum = "unknown"
    elif momentum_value > MOMENTUM_THRESHOLD:
        momentum = "bullish"
    elif momentum_value < -MOMENTUM_THRESHOLD:
        momentum = "bearish"
    else:
        momentum = "neutral"
    rsi_zone: RsiZone = "unknown"
    if last.rsi is not None:
        rsi_zone = (
            "oversold"
            if last.rsi < RSI_OVERSOLD
            else "overbought"
            if last.rsi > RSI_OVERBOUGHT
            else "neutral"
        )
    macd: MacdPosition = "unknown"
    if last.macd is not None and last.macd_signal is not None:
        macd = "above_signal" if last.macd >= last.macd_signal else "below_signal"
    rank = volatility_rank(indicators)
    volatility: Volatility = "unknown"
    if rank is not None:
        volatility = "low" if rank < 0.25 else "high" if rank > 0.75 else "normal"
    trend_strength: TrendStrength = "unknown"
    if last.adx is not None:
        trend_strength = "strong" if last.adx >= ADX_STRONG else "weak"
    return MarketSummary(
        trend=_trend(last),
        trend_strength=trend_strength,
        momentum=momentum,
        rsi_zone=rsi_zone,
        macd=macd,
        volatility=volatility,
        close=last.close,
        rsi=last.rsi,
        adx=last.adx,
        atr_pct=last.atr_pct,
        bb_width_pct=last.bb_width_pct,
        volatility_rank=rank,
        support=levels.nearest_support,
        resistance=levels.nearest_resistance,
    )
