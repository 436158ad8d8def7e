"""Indicators: hand-checkable cases, and TA-Lib's results against plain-Python Wilder/EMA implementations."""

from __future__ import annotations

import math
import statistics
from decimal import Decimal

import numpy as np
import pytest

from services.exchanges.types import Candle
from services.market.indicators import Indicators, compute_indicators, volume_zscore
from services.market.ohlcv import OHLCV
from tests.unit.market_samples import from_closes, random_walk

# ------------------------------------------------------------------ plain-Python references (TA-Lib seeding)


def ref_ema(values: list[float], period: int) -> list[float]:
    """Seeded with the simple average of the first `period` values."""
    out = [math.nan] * len(values)
    if len(values) < period:
        return out
    k = 2 / (period + 1)
    out[period - 1] = sum(values[:period]) / period
    for i in range(period, len(values)):
        out[i] = out[i - 1] + k * (values[i] - out[i - 1])
    return out


def ref_rsi(closes: list[float], period: int = 14) -> list[float]:
    """Wilder's RSI: simple averages of the first `period` gains and losses, then Wilder smoothing."""
    out = [math.nan] * len(closes)
    if len(closes) <= period:
        return out
    changes = [closes[i] - closes[i - 1] for i in range(1, len(closes))]
    gain = sum(max(c, 0.0) for c in changes[:period]) / period
    loss = sum(max(-c, 0.0) for c in changes[:period]) / period
    out[period] = 100 * gain / (gain + loss)
    for i in range(period + 1, len(closes)):
        change = changes[i - 1]
        gain = (gain * (period - 1) + max(change, 0.0)) / period
        loss = (loss * (period - 1) + max(-change, 0.0)) / period
        out[i] = 100 * gain / (gain + loss)
    return out


def true_ranges(high: list[float], low: list[float], close: list[float]) -> list[float]:
    return [math.nan] + [
        max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
        for i in range(1, len(close))
    ]


def ref_atr(high: list[float], low: list[float], close: list[float], period: int = 14) -> list[float]:
    out = [math.nan] * len(close)
    if len(close) <= period:
        return out
    tr = true_ranges(high, low, close)
    atr = sum(tr[1 : period + 1]) / period
    out[period] = atr
    for i in range(period + 1, len(close)):
        atr = (atr * (period - 1) + tr[i]) / period
        out[i] = atr
    return out


def ref_adx(high: list[float], low: list[float], close: list[float], period: int = 14) -> list[float]:
    """Wilder's ADX: directional movement and true range summed over period - 1 candles, Wilder-smoothed,
    DX averaged over the next `period` candles, then Wilder-smoothed."""
    n = len(close)
    out = [math.nan] * n
    tr = true_ranges(high, low, close)
    plus_dm, minus_dm = [0.0] * n, [0.0] * n
    for i in range(1, n):
        up, down = high[i] - high[i - 1], low[i - 1] - low[i]
        if down > 0 and up < down:
            minus_dm[i] = down
        elif up > 0 and up > down:
            plus_dm[i] = up
    if n < 2 * period:
        return out
    s_plus = sum(plus_dm[1:period])
    s_minus = sum(minus_dm[1:period])
    s_tr = sum(tr[1:period])

    def dx_at(i: int) -> float:
        nonlocal s_plus, s_minus, s_tr
        s_plus += plus_dm[i] - s_plus / period
        s_minus += minus_dm[i] - s_minus / period
        s_tr += tr[i] - s_tr / period
        plus_di, minus_di = 100 * s_plus / s_tr, 100 * s_minus / s_tr
        return 100 * abs(plus_di - minus_di) / (plus_di + minus_di)

    adx = sum(dx_at(i) for i in range(period, 2 * period)) / period
    out[2 * period - 1] = adx
    for i in range(2 * period, n):
        adx = (adx * (period - 1) + dx_at(i)) / period
        out[i] = adx
    return out


def assert_series_close(
    actual: np.ndarray, expected: list[float], *, rel: float = 1e-9, abs_: float = 1e-9
) -> None:
    assert len(actual) == len(expected)
    expected_array = np.array(expected)
    assert np.array_equal(np.isnan(actual), np.isnan(expected_array)), "NaN positions differ"
    finite = ~np.isnan(expected_array)
    np.testing.assert_allclose(actual[finite], expected_array[finite], rtol=rel, atol=abs_)


# ------------------------------------------------------------------------------------------ simple cases


def test_rsi_of_a_strictly_rising_series_is_100_and_of_a_falling_one_0() -> None:
    rising = compute_indicators(from_closes(np.linspace(100, 130, 40)))
    falling = compute_indicators(from_closes(np.linspace(130, 100, 40)))
    assert np.all(np.isnan(rising.rsi[:14]))
    assert np.allclose(rising.rsi[14:], 100.0)
    assert np.allclose(falling.rsi[14:], 0.0)


def test_emas_of_a_constant_are_the_constant_once_their_period_has_filled() -> None:
    indicators = compute_indicators(from_closes([42.5] * 250))
    for series, period in ((indicators.ema20, 20), (indicators.ema50, 50), (indicators.ema200, 200)):
        assert np.all(np.isnan(series[: period - 1]))
        assert np.allclose(series[period - 1 :], 42.5)


def test_bollinger_bands_of_a_constant_have_zero_width() -> None:
    indicators = compute_indicators(from_closes([7.25] * 60))
    last = indicators.latest()
    assert last.bb_middle == pytest.approx(7.25)
    assert last.bb_upper == pytest.approx(7.25)
    assert last.bb_lower == pytest.approx(7.25)
    assert last.bb_width_pct == pytest.approx(0.0, abs=1e-9)


def test_atr_of_equal_ranges_without_gaps_is_the_range() -> None:
    n = 40
    close = np.full(n, 100.0)
    ohlcv = OHLCV.from_arrays(np.arange(n), close, close + 1.0, close - 1.0, close, np.full(n, 5.0))
    indicators = compute_indicators(ohlcv)
    assert np.allclose(indicators.atr[14:], 2.0)
    assert indicators.latest().atr_pct == pytest.approx(2.0)


def test_a_steady_trend_has_a_high_adx_and_positive_macd() -> None:
    last = compute_indicators(from_closes(np.linspace(100, 200, 120))).latest()
    assert last.adx is not None and last.adx > 50
    assert last.macd is not None and last.macd > 0


# ----------------------------------------------------------------------------- against the references

REFERENCE = random_walk(300, seed=11)
CLOSE = REFERENCE.close.tolist()
HIGH = REFERENCE.high.tolist()
LOW = REFERENCE.low.tolist()


@pytest.fixture(scope="module")
def reference_indicators() -> Indicators:
    return compute_indicators(REFERENCE)


def test_rsi_matches_wilders_definition(reference_indicators: Indicators) -> None:
    assert_series_close(reference_indicators.rsi, ref_rsi(CLOSE, 14))


def test_emas_match_the_recursive_definition(reference_indicators: Indicators) -> None:
    assert_series_close(reference_indicators.ema20, ref_ema(CLOSE, 20))
    assert_series_close(reference_indicators.ema50, ref_ema(CLOSE, 50))
    assert_series_close(reference_indicators.ema200, ref_ema(CLOSE, 200))


def test_atr_matches_wilders_definition(reference_indicators: Indicators) -> None:
    assert_series_close(reference_indicators.atr, ref_atr(HIGH, LOW, CLOSE, 14))


def test_adx_matches_wilders_definition(reference_indicators: Indicators) -> None:
    assert_series_close(reference_indicators.adx, ref_adx(HIGH, LOW, CLOSE, 14), rel=1e-7)


def test_macd_converges_to_the_difference_of_emas(reference_indicators: Indicators) -> None:
    # TA-Lib seeds the MACD's EMAs its own way; the seed's weight decays, so compare once it has
    line = [f - s for f, s in zip(ref_ema(CLOSE, 12), ref_ema(CLOSE, 26), strict=True)]
    signal = [math.nan] * 25 + ref_ema(line[25:], 9)
    tail = slice(150, None)
    np.testing.assert_allclose(reference_indicators.macd[tail], line[tail], rtol=0, atol=1e-8)
    np.testing.assert_allclose(reference_indicators.macd_signal[tail], signal[tail], rtol=0, atol=1e-8)
    np.testing.assert_allclose(
        reference_indicators.macd_hist[tail],
        reference_indicators.macd[tail] - reference_indicators.macd_signal[tail],
        atol=1e-12,
    )


def test_bollinger_bands_are_the_mean_and_two_population_deviations(reference_indicators: Indicators) -> None:
    for i in (19, 100, 299):
        window = CLOSE[i - 19 : i + 1]
        mean, deviation = statistics.fmean(window), statistics.pstdev(window)
        assert reference_indicators.bb_middle[i] == pytest.approx(mean, rel=1e-9)
        assert reference_indicators.bb_upper[i] == pytest.approx(mean + 2 * deviation, rel=1e-9)
        assert reference_indicators.bb_lower[i] == pytest.approx(mean - 2 * deviation, rel=1e-9)
    assert np.all(np.isnan(reference_indicators.bb_middle[:19]))


def test_volume_zscore_is_against_the_20_candles_before(reference_indicators: Indicators) -> None:
    volume = REFERENCE.volume.tolist()
    for i in (20, 150, 299):
        before = volume[i - 20 : i]
        expected = (volume[i] - statistics.fmean(before)) / statistics.pstdev(before)
        assert reference_indicators.volume_z[i] == pytest.approx(expected, rel=1e-6)
    assert np.all(np.isnan(reference_indicators.volume_z[:20]))


def test_volume_zscore_is_undefined_on_a_flat_baseline() -> None:
    z = volume_zscore(np.array([100.0] * 25 + [500.0]))
    assert np.all(np.isnan(z))


def test_latest_is_the_last_value_of_every_series(reference_indicators: Indicators) -> None:
    last = reference_indicators.latest()
    assert last.timestamp_ms == int(REFERENCE.timestamp_ms[-1])
    assert last.close == CLOSE[-1]
    assert last.rsi == reference_indicators.rsi[-1]
    assert last.macd_hist == reference_indicators.macd_hist[-1]
    assert last.ema200 == reference_indicators.ema200[-1]
    assert last.adx == reference_indicators.adx[-1]
    assert last.atr_pct == pytest.approx(100 * reference_indicators.atr[-1] / CLOSE[-1])
    upper, lower, middle = (
        s[-1]
        for s in (
            reference_indicators.bb_upper,
            reference_indicators.bb_lower,
            reference_indicators.bb_middle,
        )
    )
    assert last.bb_width_pct == pytest.approx(100 * (upper - lower) / middle)


# ------------------------------------------------------------------------------------- short histories


@pytest.mark.parametrize("length", [0, 1, 2, 13, 14, 15, 27, 28, 33, 199, 200])
def test_short_histories_give_nan_not_errors(length: int) -> None:
    indicators = compute_indicators(random_walk(length))
    assert len(indicators) == length
    for series in (indicators.rsi, indicators.macd, indicators.ema200, indicators.adx, indicators.volume_z):
        assert len(series) == length
    last = indicators.latest()
    assert (last.rsi is None) == (length <= 14)
    assert (last.atr is None) == (length <= 14)
    assert (last.ema20 is None) == (length < 20)
    assert (last.ema200 is None) == (length < 200)
    assert (last.adx is None) == (length < 28)
    assert (last.macd_signal is None) == (length < 34)
    assert (last.volume_z is None) == (length <= 20)
    if length == 0:
        assert last.timestamp_ms is None and last.close is None


# ------------------------------------------------------------------------------------------- the input


def test_candles_from_the_exchange_layer_become_float_columns() -> None:
    candles = [
        Candle(1_000, Decimal("1.5"), Decimal("2"), Decimal("1"), Decimal("1.75"), Decimal("10")),
        Candle(2_000, Decimal("1.75"), Decimal("3"), Decimal("1.5"), Decimal("2.5"), Decimal("20.5")),
    ]
    ohlcv = OHLCV.from_candles(candles)
    assert len(ohlcv) == 2
    assert ohlcv.timestamp_ms.dtype == np.int64 and ohlcv.timestamp_ms.tolist() == [1_000, 2_000]
    assert ohlcv.close.dtype == np.float64 and ohlcv.close.tolist() == [1.75, 2.5]
    assert ohlcv.volume.tolist() == [10.0, 20.5]
    assert len(OHLCV.from_candles([])) == 0
    rows = OHLCV.from_rows([[1_000, 1.5, 2, 1, 1.75, 10]])
    assert rows.high.tolist() == [2.0]
    assert ohlcv.tail(1).close.tolist() == [2.5]


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="equal length"):
        OHLCV.from_arrays([1, 2], [1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [1.0], [1.0, 2.0])
