"""One market snapshot that every voter sees, and the prompt text made from it.

The snapshot is built from the closed candles of the signal's timeframe (the forming candle is left out),
their indicators, events and levels, plus the 24h ticker. It is shared by every signal on the same
symbol and timeframe within one candle (at most ``snapshot_max_age_seconds`` on long timeframes), so
identical prompts reach the models and their answers can be served from the cache.

Symbol classes: BTC and ETH are ``major``; the next large caps (`LARGE_CAPS`) are ``large``; anything else
is ``alt``. The signal's horizon comes from its timeframe (`HORIZONS`); a realised move within the
flat band, ``max(0.05, 0.25 x ATR% x sqrt(horizon / timeframe))`` percent, is "flat".
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from services.exchanges.types import Ticker
from services.market.analysis import Analysis
from services.market.data import TIMEFRAME_MS, Series

SymbolClass = Literal["major", "large", "alt"]
MAJORS = frozenset({"BTC", "ETH"})
LARGE_CAPS = frozenset(
    {
        "BNB", "SOL", "XRP", "ADA", "DOGE", "TRX", "TON", "AVAX", "DOT",
        "LINK", "SHIB", "LTC", "BCH", "NEAR", "XLM", "SUI", "HBAR", "UNI",
    }
)  # fmt: skip
# Timeframe of the candles -> horizon of the signal.
HORIZONS: dict[str, str] = {
    "1m": "15m",
    "5m": "1h",
    "15m": "4h",
    "30m": "4h",
    "1h": "4h",
    "4h": "1d",
    "1d": "1w",
}
HORIZON_MINUTES: dict[str, int] = {"15m": 15, "1h": 60, "4h": 240, "1d": 1440, "1w": 10080}
RECENT_CLOSES = 12
MIN_FLAT_BAND_PCT = 0.05
DEFAULT_FLAT_BAND_PCT = 0.1
SNAPSHOT_VERSION = 1


def symbol_class(base: str) -> SymbolClass:
    base = base.upper()
    if base in MAJORS:
        return "major"
    if base in LARGE_CAPS:
        return "large"
    return "alt"


def horizon_for(timeframe: str) -> str:
    return HORIZONS[timeframe]


def _num(value: float | None, digits: int = 6) -> float | None:
    """Rounded to `digits` significant figures (None for None or non-finite values)."""
    if value is None or not math.isfinite(value):
        return None
    if value == 0:
        return 0.0
    return round(value, max(digits - 1 - math.floor(math.log10(abs(value))), 0))


def _pct(new: float, old: float) -> float | None:
    return _num(100.0 * (new / old - 1.0), 4) if old else None


@dataclass(frozen=True, slots=True)
class Snapshot:
    exchange: str
    symbol: str
    base: str
    symbol_class: str
    timeframe: str
    horizon: str
    horizon_minutes: int
    candle_ts: int  # open time of the last closed candle
    as_of_ms: int
    valid_until_ms: int  # when the next snapshot of this symbol and timeframe replaces it
    price: float  # the ticker's last price when the snapshot was taken
    flat_band_pct: float
    indicators: dict[str, float | None]
    components: dict[str, float]  # trend, momentum, events (each -1..1), score (0..100)
    summary: dict[str, str]
    events: list[str]
    supports: list[list[float]]  # [price, touches], nearest first
    resistances: list[list[float]]
    returns_pct: dict[str, float | None]  # over the last 1, 6 and 24 candles
    closes: list[float]  # the last closes, oldest first
    stats_24h: dict[str, float | None]
    version: int = SNAPSHOT_VERSION
    hash: str = field(default="", compare=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("hash")
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        data = json.loads(text)
        return cls(**data, hash=snapshot_hash(data))

    @property
    def prompt(self) -> str:
        return prompt_text(self)

    @property
    def as_of(self) -> datetime:
        return datetime.fromtimestamp(self.as_of_ms / 1000, UTC)


def snapshot_hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def closed_part(series: Series, now_ms: int) -> Series:
    """The series without its forming candle (the last one, while its period has not ended)."""
    ohlcv = series.ohlcv
    period = TIMEFRAME_MS[series.timeframe]
    if len(ohlcv) and int(ohlcv.timestamp_ms[-1]) + period > now_ms:
        ohlcv = ohlcv.tail(len(ohlcv) - 1)
    return Series(series.exchange, series.market, series.timeframe, ohlcv)


def build_snapshot(
    series: Series, analysis: Analysis, ticker: Ticker, *, now_ms: int, valid_until_ms: int
) -> Snapshot:
    """The snapshot of a series of closed candles (see `closed_part`) and its analysis."""
    ohlcv = series.ohlcv
    if len(ohlcv) == 0:
        raise ValueError("a snapshot needs at least one closed candle")
    last = analysis.indicators.latest()
    closes = ohlcv.close
    horizon = horizon_for(series.timeframe)
    horizon_minutes = HORIZON_MINUTES[horizon]
    tf_minutes = TIMEFRAME_MS[series.timeframe] // 60_000
    if last.atr_pct is not None:
        band = max(MIN_FLAT_BAND_PCT, 0.25 * last.atr_pct * math.sqrt(horizon_minutes / tf_minutes))
    else:
        band = DEFAULT_FLAT_BAND_PCT
    final = float(closes[-1])
    returns = {f"{n}": _pct(final, float(closes[-1 - n])) if len(closes) > n else None for n in (1, 6, 24)}
    summary = analysis.summary
    score = analysis.score
    indicator_values = {
        name: _num(getattr(last, name))
        for name in (
            "rsi", "macd", "macd_signal", "macd_hist", "ema20", "ema50", "ema200", "bb_upper",
            "bb_middle", "bb_lower", "atr", "atr_pct", "adx", "volume_z", "bb_width_pct",
        )
    }  # fmt: skip
    data: dict[str, Any] = {
        "exchange": series.exchange,
        "symbol": series.market.symbol,
        "base": series.market.base,
        "symbol_class": symbol_class(series.market.base),
        "timeframe": series.timeframe,
        "horizon": horizon,
        "horizon_minutes": horizon_minutes,
        "candle_ts": int(ohlcv.timestamp_ms[-1]),
        "as_of_ms": now_ms,
        "valid_until_ms": valid_until_ms,
        "price": _num(float(ticker.last), 10) or final,
        "flat_band_pct": _num(band, 3) or DEFAULT_FLAT_BAND_PCT,
        "indicators": indicator_values,
        "components": {
            "trend": _num(score.trend, 4) or 0.0,
            "momentum": _num(score.momentum, 4) or 0.0,
            "events": _num(score.events, 4) or 0.0,
            "score": float(score.value),
        },
        "summary": {
            "trend": summary.trend,
            "trend_strength": summary.trend_strength,
            "momentum": summary.momentum,
            "rsi_zone": summary.rsi_zone,
            "macd": summary.macd,
            "volatility": summary.volatility,
            "direction": score.direction,
        },
        "events": [event.key for event in analysis.events],
        "supports": [[_num(lv.price) or lv.price, float(lv.touches)] for lv in analysis.levels.supports],
        "resistances": [
            [_num(lv.price) or lv.price, float(lv.touches)] for lv in analysis.levels.resistances
        ],
        "returns_pct": returns,
        "closes": [_num(float(c)) for c in closes[-RECENT_CLOSES:]],
        "stats_24h": {
            "change_pct": _num(float(ticker.change_pct), 4) if ticker.change_pct is not None else None,
            "high": _num(float(ticker.high)) if ticker.high is not None else None,
            "low": _num(float(ticker.low)) if ticker.low is not None else None,
            "quote_volume": _num(float(ticker.quote_volume), 4) if ticker.quote_volume is not None else None,
        },
        "version": SNAPSHOT_VERSION,
    }
    return Snapshot(**data, hash=snapshot_hash(data))


# ------------------------------------------------------------------------------------------------ prompt

_EVENT_TEXT = {
    "rsi_oversold.bullish": "RSI oversold",
    "rsi_overbought.bearish": "RSI overbought",
    "ema_cross_20_50.bullish": "EMA 20 crossed above EMA 50",
    "ema_cross_20_50.bearish": "EMA 20 crossed below EMA 50",
    "ema_cross_50_200.bullish": "golden cross (EMA 50 above EMA 200)",
    "ema_cross_50_200.bearish": "death cross (EMA 50 below EMA 200)",
    "macd_cross.bullish": "MACD crossed above its signal line",
    "macd_cross.bearish": "MACD crossed below its signal line",
    "bollinger_breakout.bullish": "close above the upper Bollinger band",
    "bollinger_breakout.bearish": "close below the lower Bollinger band",
    "volume_spike.bullish": "volume spike on a rising candle",
    "volume_spike.bearish": "volume spike on a falling candle",
}


def _fmt(value: float | None, suffix: str = "", digits: int = 6) -> str:
    if value is None:
        return "n/a"
    return f"{_num(value, digits):g}{suffix}"


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{_num(value, 3):+g}%"


def _touches(levels: list[list[float]]) -> str:
    return ", ".join(f"{p:g} ({int(t)} touch{'es' if int(t) != 1 else ''})" for p, t in levels) or "none"


def prompt_text(s: Snapshot) -> str:
    """The user message: the snapshot in a compact, stable text form."""
    ind = s.indicators
    summ = s.summary
    stats = s.stats_24h
    levels_s = _touches(s.supports)
    levels_r = _touches(s.resistances)
    events = ", ".join(_EVENT_TEXT.get(key, key) for key in s.events) or "none"
    as_of = s.as_of.strftime("%Y-%m-%d %H:%M UTC")
    macd_side = {"above_signal": "above", "below_signal": "below"}.get(summ["macd"], "n/a")
    lines = [
        f"Market snapshot: {s.symbol} on {s.exchange}.",
        f"Current price: {s.price:g} (as of {as_of}).",
        f"Horizon: {s.horizon} ({s.timeframe} candles, last closed candle shown).",
        f"24h: change {_signed(stats['change_pct'])}, high {_fmt(stats['high'])}, low {_fmt(stats['low'])}, "
        f"quote volume {_fmt(stats['quote_volume'])}.",
        f"Trend: {summ['trend']} ({summ['trend_strength']}, ADX {_fmt(ind['adx'], digits=3)}); "
        f"momentum: {summ['momentum']}; volatility: {summ['volatility']}.",
        f"RSI(14): {_fmt(ind['rsi'], digits=3)} ({summ['rsi_zone']}); MACD {macd_side} its signal line "
        f"(histogram {_fmt(ind['macd_hist'], digits=3)}).",
        f"EMA20 {_fmt(ind['ema20'])}, EMA50 {_fmt(ind['ema50'])}, EMA200 {_fmt(ind['ema200'])}.",
        f"Bollinger bands (20, 2): {_fmt(ind['bb_lower'])} / {_fmt(ind['bb_middle'])} / "
        f"{_fmt(ind['bb_upper'])} (width {_fmt(ind['bb_width_pct'], '%', 3)}).",
        f"ATR(14): {_fmt(ind['atr'], digits=4)} ({_fmt(ind['atr_pct'], '%', 3)}); "
        f"volume z-score {_fmt(ind['volume_z'], digits=2)}.",
        f"Events: {events}.",
        f"Supports: {levels_s}. Resistances: {levels_r}.",
        f"Returns: last candle {_signed(s.returns_pct['1'])}, 6 candles {_signed(s.returns_pct['6'])}, "
        f"24 candles {_signed(s.returns_pct['24'])}.",
        f"Last {len(s.closes)} closes, oldest first: {', '.join(f'{c:g}' for c in s.closes)}.",
        f"Question: over the next {s.horizon}, buy, sell or hold {s.symbol}? "
        "Answer with the JSON object only.",
    ]
    return "\n".join(lines)


__all__ = [
    "HORIZONS",
    "HORIZON_MINUTES",
    "LARGE_CAPS",
    "MAJORS",
    "Snapshot",
    "SymbolClass",
    "build_snapshot",
    "closed_part",
    "horizon_for",
    "prompt_text",
    "snapshot_hash",
    "symbol_class",
]
