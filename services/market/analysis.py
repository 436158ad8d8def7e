"""Everything the market feature knows about one symbol's candles, in one call."""

from __future__ import annotations

from dataclasses import dataclass

from services.market.events import Event, detect_events
from services.market.indicators import Indicators, compute_indicators
from services.market.levels import Levels, find_levels
from services.market.ohlcv import OHLCV
from services.market.scoring import MarketSummary, Score, score_opportunity, summarize


@dataclass(frozen=True, slots=True, eq=False)
class Analysis:
    indicators: Indicators
    events: tuple[Event, ...]
    levels: Levels
    score: Score
    summary: MarketSummary


def analyze(ohlcv: OHLCV) -> Analysis:
    """Indicators, events, support/resistance levels, the opportunity score and the summary."""
    indicators = compute_indicators(ohlcv)
    events = detect_events(indicators)
    levels = find_levels(ohlcv, atr=indicators.latest().atr)
    score = score_opportunity(indicators, events)
    return Analysis(indicators, events, levels, score, summarize(indicators, levels))
