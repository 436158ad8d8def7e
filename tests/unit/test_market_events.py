"""Events fire on series built to show them, and not on a quiet one."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from services.market.events import CROSS_LOOKBACK, Event, EventKind, detect_events, last_cross
from services.market.indicators import Indicators, compute_indicators
from services.market.ohlcv import OHLCV, FloatArray
from tests.unit.market_samples import from_closes, mirrored, random_walk

QUIET = random_walk(300, seed=1)


def events_of(ohlcv: OHLCV) -> dict[EventKind, Event]:
    events = detect_events(compute_indicators(ohlcv))
    kinds = [e.kind for e in events]
    assert len(kinds) == len(set(kinds)), "one event per kind"
    return {e.kind: e for e in events}


def test_a_quiet_market_has_no_events() -> None:
    last = compute_indicators(QUIET).latest()
    assert last.rsi is not None and 30 < last.rsi < 70
    assert events_of(QUIET) == {}


def test_short_histories_do_not_fail() -> None:
    for length in (0, 1, 2, 10):
        assert detect_events(compute_indicators(random_walk(length))) == ()
    kinds = {e.kind for e in detect_events(compute_indicators(random_walk(40)))}
    assert not kinds & {EventKind.EMA_CROSS_20_50, EventKind.EMA_CROSS_50_200}


# --------------------------------------------------------------------------------------------------- RSI


def noisy_flat(n: int, seed: int = 3) -> FloatArray:
    rng = np.random.default_rng(seed)
    return 100 + rng.normal(0, 0.3, n)


def test_rsi_oversold_after_a_run_of_falls() -> None:
    closes = np.concatenate((noisy_flat(100), 100 - np.arange(1, 16) * 0.8))
    event = events_of(from_closes(closes))[EventKind.RSI_OVERSOLD]
    assert event.direction == "bullish"
    assert event.value < 30 and 0.5 < event.strength <= 1
    assert event.key == "rsi_oversold.bullish"


def test_rsi_overbought_after_a_run_of_rises() -> None:
    closes = np.concatenate((noisy_flat(100), 100 + np.arange(1, 16) * 0.8))
    found = events_of(from_closes(closes))
    event = found[EventKind.RSI_OVERBOUGHT]
    assert event.direction == "bearish" and event.value > 70
    assert EventKind.RSI_OVERSOLD not in found


# ------------------------------------------------------------------------------------------------ crosses


def v_shape(fall: int, rise: int) -> FloatArray:
    """Falling faster and faster, then rising: the faster averages cross above the slower ones on the way
    up (the acceleration keeps the MACD line under its signal on the way down)."""
    t = np.arange(fall)
    down = 200 - 0.2 * t - 0.0005 * t**2
    up = down[-1] + 0.5 * np.arange(1, rise + 1)
    return np.concatenate((down, up))


def first_cross_up(fast: FloatArray, slow: FloatArray) -> int:
    diff = fast - slow
    crossings = np.flatnonzero((diff[1:] > 0) & (diff[:-1] <= 0)) + 1
    assert len(crossings) == 1
    return int(crossings[0])


Pick = Callable[[Indicators], tuple[FloatArray, FloatArray]]
CROSSES: list[tuple[EventKind, int, Pick]] = [
    (EventKind.EMA_CROSS_20_50, 150, lambda i: (i.ema20, i.ema50)),
    (EventKind.EMA_CROSS_50_200, 400, lambda i: (i.ema50, i.ema200)),
    (EventKind.MACD_CROSS, 150, lambda i: (i.macd, i.macd_signal)),
]


@pytest.mark.parametrize(("kind", "fall", "pick"), CROSSES, ids=[c[0].value for c in CROSSES])
def test_crosses_fire_on_the_cross_and_fade_with_age(kind: EventKind, fall: int, pick: Pick) -> None:
    closes = v_shape(fall, 250)
    full = compute_indicators(from_closes(closes))
    at = first_cross_up(*pick(full))

    on_cross = events_of(from_closes(closes[: at + 1]))[kind]
    assert (on_cross.direction, on_cross.age, on_cross.strength) == ("bullish", 0, 1.0)
    one_later = events_of(from_closes(closes[: at + 2]))[kind]
    assert one_later.age == 1 and one_later.strength == pytest.approx((CROSS_LOOKBACK - 1) / CROSS_LOOKBACK)
    assert kind not in events_of(from_closes(closes[: at + 1 + CROSS_LOOKBACK]))
    assert kind not in events_of(from_closes(closes[:at]))

    # the same path upside down: the death cross (a bearish MACD cross)
    flipped = mirrored(from_closes(closes[: at + 1]), centre=200.0)
    bearish = events_of(flipped)[kind]
    assert (bearish.direction, bearish.age) == ("bearish", 0)


def test_golden_and_death_cross_keys() -> None:
    closes = v_shape(400, 250)
    at = first_cross_up(*(lambda i: (i.ema50, i.ema200))(compute_indicators(from_closes(closes))))
    golden = events_of(from_closes(closes[: at + 1]))[EventKind.EMA_CROSS_50_200]
    death = events_of(mirrored(from_closes(closes[: at + 1]), centre=200.0))[EventKind.EMA_CROSS_50_200]
    assert (golden.key, death.key) == ("ema_cross_50_200.bullish", "ema_cross_50_200.bearish")


def test_last_cross_reports_the_most_recent_change_of_sign() -> None:
    fast = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert last_cross(fast, np.array([2.0, 3.0, 2.5, 3.5, 6.0]), lookback=4) == ("bearish", 0)
    assert last_cross(fast, np.array([2.0, 3.0, 2.0, 3.0, 4.0]), lookback=4) == ("bullish", 2)
    # touching without crossing is not a cross; NaN is skipped
    assert last_cross(fast, np.array([0.0, 2.0, 1.0, 4.0, 4.0]), lookback=4) is None
    assert last_cross(fast, np.array([np.nan, np.nan, 1.0, 2.0, 3.0]), lookback=4) is None
    assert last_cross(fast, np.array([np.nan, np.nan, 4.0, 3.0, 4.0]), lookback=4) == ("bullish", 1)
    assert (
        last_cross(fast, np.array([9.0, 9.0, 1.0, 2.0, 3.0]), lookback=2) is None
    )  # older than the lookback
    assert last_cross(fast, np.array([9.0, 9.0, 1.0, 2.0, 3.0]), lookback=3) == ("bullish", 2)


# --------------------------------------------------------------------------------------------- Bollinger


def test_a_close_above_the_upper_band_is_a_bullish_breakout() -> None:
    closes = np.append(noisy_flat(60), 103.0)
    found = events_of(from_closes(closes))
    event = found[EventKind.BOLLINGER_BREAKOUT]
    assert event.direction == "bullish" and event.value > 0 and event.strength > 0.5


def test_a_close_below_the_lower_band_is_a_bearish_breakout() -> None:
    event = events_of(from_closes(np.append(noisy_flat(60), 97.0)))[EventKind.BOLLINGER_BREAKOUT]
    assert event.direction == "bearish"


def test_a_close_inside_the_bands_is_no_breakout() -> None:
    assert EventKind.BOLLINGER_BREAKOUT not in events_of(from_closes(np.append(noisy_flat(60), 100.1)))


# ------------------------------------------------------------------------------------------------ volume


def spike_series(last_close: float, last_volume: float) -> OHLCV:
    rng = np.random.default_rng(5)
    volumes = np.append(1000 + rng.normal(0, 50, 60), last_volume)
    closes = np.append(noisy_flat(60), last_close)
    return from_closes(closes, volumes=volumes)


def test_a_volume_spike_takes_the_direction_of_its_candle() -> None:
    previous_close = float(noisy_flat(60)[-1])
    up = events_of(spike_series(previous_close + 0.2, 2000))[EventKind.VOLUME_SPIKE]
    down = events_of(spike_series(previous_close - 0.2, 2000))[EventKind.VOLUME_SPIKE]
    assert (up.direction, down.direction) == ("bullish", "bearish")
    assert up.value > 2.5 and up.strength == pytest.approx(min(1.0, up.value / 5))


def test_ordinary_volume_or_a_doji_is_no_spike() -> None:
    previous_close = float(noisy_flat(60)[-1])
    assert EventKind.VOLUME_SPIKE not in events_of(spike_series(previous_close + 0.2, 1080))
    assert EventKind.VOLUME_SPIKE not in events_of(spike_series(previous_close, 5000))
