"""Support and resistance levels from swing points."""

from __future__ import annotations

import numpy as np
import pytest

from services.market.levels import NO_LEVELS, find_levels, swing_points
from tests.unit.market_samples import HOUR_MS, START_MS, from_closes, random_walk

# 105 -> 120 once, then three swings between 100 and 110, ending at 105
WAYPOINTS = [(0, 105), (15, 120), (35, 100), (45, 110), (55, 100), (65, 110), (75, 100), (85, 110), (90, 105)]
RANGE = np.interp(np.arange(91), [i for i, _ in WAYPOINTS], [float(p) for _, p in WAYPOINTS])
WICK = 0.002


def test_swing_points_are_the_extremes_of_their_neighbourhood_counted_once_on_a_flat_top() -> None:
    ohlcv = from_closes(RANGE, wick=WICK)
    # each peak candle and the one after it share the same high (open = previous close): counted once
    assert swing_points(ohlcv.high, 5, highs=True).tolist() == [15, 45, 65, 85]
    assert swing_points(ohlcv.low, 5, highs=False).tolist() == [35, 55, 75]
    assert swing_points(ohlcv.high[:10], 5, highs=True).tolist() == []


def test_levels_group_the_swings_and_count_touches() -> None:
    levels = find_levels(from_closes(RANGE, wick=WICK), atr=1.0)
    assert [(round(lvl.price, 2), lvl.touches) for lvl in levels.resistances] == [(110.22, 3), (120.24, 1)]
    assert [(round(lvl.price, 2), lvl.touches) for lvl in levels.supports] == [(99.8, 3)]
    resistance = levels.nearest_resistance
    assert resistance is not None
    assert resistance.last_touch_ms == START_MS + 85 * HOUR_MS
    assert resistance.distance_pct == pytest.approx(100 * (110.22 - 105) / 105)
    support = levels.nearest_support
    assert support is not None and support.distance_pct < 0
    assert support.last_touch_ms == START_MS + 75 * HOUR_MS


def test_nearest_levels_come_first_and_are_limited() -> None:
    levels = find_levels(random_walk(500, seed=4), atr=None, max_levels=3)
    close = float(random_walk(500, seed=4).close[-1])
    assert 0 < len(levels.supports) <= 3 and 0 < len(levels.resistances) <= 3
    supports = [lvl.price for lvl in levels.supports]
    resistances = [lvl.price for lvl in levels.resistances]
    assert supports == sorted(supports, reverse=True) and all(p <= close for p in supports)
    assert resistances == sorted(resistances) and all(p > close for p in resistances)
    assert find_levels(random_walk(500, seed=4), max_levels=0) == NO_LEVELS


def test_a_wide_tolerance_merges_every_swing_into_one_level() -> None:
    levels = find_levels(from_closes(RANGE, wick=WICK), tolerance=100.0)
    assert len(levels.supports) + len(levels.resistances) == 1
    (level,) = levels.supports + levels.resistances
    assert level.touches == 7


@pytest.mark.parametrize("length", [0, 1, 5, 10])
def test_short_histories_have_no_levels(length: int) -> None:
    assert find_levels(random_walk(length)) == NO_LEVELS
