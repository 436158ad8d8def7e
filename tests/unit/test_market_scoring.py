"""Opportunity score and market summary."""

from __future__ import annotations

import numpy as np
import pytest

from services.market.analysis import analyze
from services.market.events import Event, EventKind
from services.market.indicators import compute_indicators
from services.market.scoring import EVENT_WEIGHTS, events_component, score_opportunity, summarize
from tests.unit.market_samples import from_closes, mirrored, random_walk


def test_a_steady_rise_scores_bullish_and_its_mirror_image_bearish_with_the_same_score() -> None:
    for seed in (1, 2, 5):
        rise = random_walk(300, seed=seed, drift=0.004)
        up, down = analyze(rise), analyze(mirrored(rise, centre=300.0))
        assert up.score.direction == "bullish" and down.score.direction == "bearish"
        assert up.score.value == down.score.value > 25
        assert up.summary.trend == "up" and down.summary.trend == "down"
        assert up.summary.trend_strength == "strong"


def test_the_score_is_deterministic_and_within_0_to_100() -> None:
    for seed in range(20):
        ohlcv = random_walk(250, seed=seed, sigma=0.02)
        first, second = analyze(ohlcv).score, analyze(ohlcv).score
        assert first == second
        assert 0 <= first.value <= 100
        assert (first.direction == "neutral") == (first.value < 5)
        for component in (first.trend, first.momentum, first.events):
            assert -1 <= component <= 1


def test_events_add_up_by_weight_strength_and_direction() -> None:
    golden = Event(EventKind.EMA_CROSS_50_200, "bullish", 1.0)
    overbought = Event(EventKind.RSI_OVERBOUGHT, "bearish", 0.5)
    assert events_component([]) == 0
    assert events_component([golden]) == EVENT_WEIGHTS[EventKind.EMA_CROSS_50_200]
    assert events_component([golden, overbought]) == pytest.approx(1.0 - 0.6 * 0.5)
    spikes = [Event(EventKind.VOLUME_SPIKE, "bearish", 1.0)] * 5
    assert events_component(spikes) == -1.0


def test_the_score_is_the_documented_blend_of_its_components() -> None:
    indicators = compute_indicators(random_walk(300, seed=1))
    base = score_opportunity(indicators, [])
    bullish = score_opportunity(indicators, [Event(EventKind.EMA_CROSS_50_200, "bullish", 1.0)])
    bearish = score_opportunity(indicators, [Event(EventKind.EMA_CROSS_50_200, "bearish", 1.0)])
    assert (base.events, bullish.events, bearish.events) == (0.0, 1.0, -1.0)
    assert bullish.trend == base.trend and bullish.momentum == base.momentum
    signs = {"bullish": 1, "bearish": -1}
    for score in (bullish, bearish):
        net = 0.35 * score.trend + 0.25 * score.momentum + 0.40 * score.events
        assert score.value == round(100 * abs(net))
        assert signs[score.direction] == (1 if net > 0 else -1)
    assert bullish.direction == "bullish" and bearish.direction == "bearish"


def test_short_histories_score_and_summarise_without_failing() -> None:
    for length in (0, 1, 10, 30):
        result = analyze(random_walk(length))
        assert 0 <= result.score.value <= 100
    empty = analyze(random_walk(0))
    assert empty.score.value == 0 and empty.score.direction == "neutral"
    assert empty.summary.trend == "unknown" and empty.summary.volatility == "unknown"
    assert empty.summary.rsi_zone == "unknown" and empty.summary.support is None


def test_a_noisy_flat_market_is_sideways() -> None:
    closes = 100 + np.random.default_rng(2).normal(0, 0.5, 300)
    summary = analyze(from_closes(closes)).summary
    assert summary.trend == "sideways"
    assert summary.adx is not None and summary.adx < 20 and summary.trend_strength == "weak"


def test_volatility_is_ranked_against_the_recent_past() -> None:
    rng = np.random.default_rng(3)
    expanding = np.concatenate((rng.normal(0, 0.002, 250), rng.normal(0, 0.03, 20)))
    contracting = np.concatenate((rng.normal(0, 0.03, 250), rng.normal(0, 0.002, 30)))
    high = analyze(from_closes(100 * np.exp(np.cumsum(expanding)))).summary
    low = analyze(from_closes(100 * np.exp(np.cumsum(contracting)))).summary
    assert high.volatility == "high" and high.volatility_rank is not None and high.volatility_rank > 0.75
    assert low.volatility == "low"


def test_the_summary_has_plain_values_for_templates() -> None:
    result = analyze(random_walk(300, seed=4))
    summary = summarize(result.indicators, result.levels)
    assert summary == result.summary
    data = summary.as_dict()
    assert set(data) >= {"trend", "momentum", "rsi_zone", "macd", "volatility", "support", "resistance"}
    assert data["trend"] in {"up", "down", "sideways"}
    assert data["macd"] in {"above_signal", "below_signal"}
    assert isinstance(data["support"], dict) and {"price", "touches", "distance_pct"} <= set(data["support"])
    assert summary.rsi == pytest.approx(float(result.indicators.rsi[-1]))
    assert summary.support == result.levels.nearest_support
