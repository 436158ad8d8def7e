"""The signal text format: real-world variants, refusals, render -> parse round trips, and noise."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.copytrading.signal_format import (
    MAX_ENTRIES,
    MAX_TARGETS,
    ParsedSignal,
    SignalRejected,
    parse_signal_post,
    render_signal,
)

VARIANTS = [
    (
        "BTC/USDT LONG Entry 60000-61000 TP 62500 64000 SL 58500",
        ParsedSignal("BTC/USDT", "buy", (D(60000), D(61000)), True, (D(62500), D(64000)), D(58500)),
    ),
    (
        "🚀 #ETH Long\nEntry zone 3000 - 3100\nTargets: 3.2k, 3.3k\nStop loss: 2.9K\nLeverage 10x",
        ParsedSignal("ETH/USDT", "buy", (D(3000), D(3100)), True, (D(3200), D(3300)), D(2900), D(10), True),
    ),
    (
        "btcusdt buy 60000\ntp1: 62500\ntp2: 64000\nsl 58.5k\nsize 5%",
        ParsedSignal("BTC/USDT", "buy", (D(60000),), False, (D(62500), D(64000)), D(58500), size_pct=D(5)),
    ),
    (
        "SOL-USDT SHORT\nEntry: 150\nTP 140 130\nSL 160",
        ParsedSignal("SOL/USDT", "sell", (D(150),), False, (D(140), D(130)), D(160)),
    ),
    (
        "📈 Signal: $DOGE\nBuy zone 0.10 to 0.11\nTP1 0.12 (+9%)\nTP2 0.13 (+18%)\nStop-loss 0.095",
        ParsedSignal("DOGE/USDT", "buy", (D("0.10"), D("0.11")), True, (D("0.12"), D("0.13")), D("0.095")),
    ),
    (
        "XRP LONG\nEntries: 0.50, 0.49, 0.48\nTarget 1) 0.55 2) 0.60\nSL: 0.45\nCross 20x",
        ParsedSignal(
            "XRP/USDT",
            "buy",
            (D("0.50"), D("0.49"), D("0.48")),
            False,
            (D("0.55"), D("0.60")),
            D("0.45"),
            D(20),
            True,
        ),
    ),
    (
        "BTC/USDT long\nentry market\ntake profit 70k\nSL 50,000",
        ParsedSignal("BTC/USDT", "buy", (), False, (D(70000),), D(50000)),
    ),
    (
        "ETH_BTC Sell 0.055\n🎯 TP 0.05\n🛑 SL 0.06\nrisk 2 %",
        ParsedSignal("ETH/BTC", "sell", (D("0.055"),), False, (D("0.05"),), D("0.06"), size_pct=D(2)),
    ),
    (
        "Long ADA 1️⃣ Entry 0.40 TP 0.45,0.50 SL 0.35 below support 0.30",
        ParsedSignal("ADA/USDT", "buy", (D("0.40"),), False, (D("0.45"), D("0.50")), D("0.35")),
    ),
    (
        "LINKUSDT LONG\nEntry $14.5\nTP 16 USDT\nSL 13.9 USDT\nIsolated",
        ParsedSignal("LINK/USDT", "buy", (D("14.5"),), False, (D(16),), D("13.9"), leverage_ignored=True),
    ),
]


@pytest.mark.parametrize(("text", "expected"), VARIANTS)
def test_real_world_variants(text: str, expected: ParsedSignal) -> None:
    assert parse_signal_post(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "gm everyone, BTC looks strong today",
        "I think BTC long is good",
        "Results: +12% this week 🚀",
        "BTC/USDT 60000 62000",
        "LONG",
        "TP 62500 SL 58500",
    ],
)
def test_texts_that_are_not_signals(text: str) -> None:
    assert parse_signal_post(text) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("BTC/USDT LONG Entry 60000 TP 62000 SL 61000", "stop_above_entry"),
        ("BTC/USDT LONG Entry 60000-61000 TP 60500 SL 58000", "target_below_entry"),
        ("BTC/USDT SHORT Entry 60000 TP 58000 SL 59000", "stop_below_entry"),
        ("BTC/USDT SHORT Entry 60000 TP 61000 SL 62000", "target_above_entry"),
        ("BTC/USDT LONG Entry market TP 50000 SL 55000", "stop_beyond_target"),
        ("BTC/USDT LONG Entry 60000 TP 62000 SL 58000 size 150%", "bad_size"),
        ("BTC/USDT LONG Entry 60000 SL 58000 SL 57000", "too_many_values"),
    ],
)
def test_inconsistent_signals_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(SignalRejected) as caught:
        parse_signal_post(text)
    assert caught.value.reason == reason
    assert caught.value.message_key == f"copy.signal.{reason}"


def test_rendered_footer_does_not_change_the_signal() -> None:
    signal = ParsedSignal("BTC/USDT", "buy", (D(60000),), False, (D(62000),), D(58000), size_pct=D(5))
    text = render_signal(signal, footer=["Alice: 30d 12.5%, win 60%", "Copy: t.me/bot?start=copy_1_2"])
    assert parse_signal_post(text) == signal


COINS = ["BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "LINK", "AVAX", "1INCH", "PEPE"]
QUOTES = ["USDT", "USDC", "BTC", "EUR"]
prices = st.decimals(min_value=D("0.00000001"), max_value=D(10_000_000), places=8, allow_nan=False)


@st.composite
def signals(draw: st.DrawFn) -> ParsedSignal:
    base = draw(st.sampled_from(COINS))
    quote = draw(st.sampled_from([q for q in QUOTES if q != base]))
    side = draw(st.sampled_from(["buy", "sell"]))
    values = sorted(set(draw(st.lists(prices.filter(lambda p: p > 0), min_size=3, max_size=12))))
    if len(values) < 3:
        values = [D(1), D(2), D(3)]
    kind = draw(st.sampled_from(["market", "one", "range", "several"]))
    middle = len(values) // 2
    low_side, high_side = values[:middle], values[middle:]
    below, above = (low_side, high_side) if side == "buy" else (high_side, low_side)
    entry_pool = high_side[:1] if side == "buy" else low_side[-1:]
    if kind == "market":
        entries: tuple[D, ...] = ()
    elif kind == "one":
        entries = (entry_pool[0],)
    elif kind == "range" and len(values) >= 4:
        pool = high_side if side == "buy" else low_side
        pair = sorted(draw(st.lists(st.sampled_from(pool), min_size=2, max_size=2, unique=True)))
        entries = tuple(pair) if len(pair) == 2 else (entry_pool[0],)
    else:
        entries = (entry_pool[0],)
    is_range = kind == "range" and len(entries) == 2
    if side == "buy":
        usable_above = [v for v in values if not entries or v > max(entries)]
        usable_below = [v for v in values if not entries or v < min(entries)]
    else:
        usable_above = [v for v in values if not entries or v < min(entries)]
        usable_below = [v for v in values if not entries or v > max(entries)]
    del below, above
    targets = tuple(
        draw(st.lists(st.sampled_from(usable_above), max_size=min(MAX_TARGETS, 4))) if usable_above else []
    )
    stop = draw(st.none() | st.sampled_from(usable_below)) if usable_below else None
    if not entries and stop is not None:
        targets = tuple(t for t in targets if (t > stop if side == "buy" else t < stop))
    if not entries and not targets and stop is None:
        entries = (values[0],)
    leverage = draw(st.none() | st.integers(min_value=1, max_value=125).map(D))
    size = draw(st.none() | st.decimals(min_value=D("0.1"), max_value=D(100), places=1))
    assert len(entries) <= MAX_ENTRIES
    return ParsedSignal(
        symbol=f"{base}/{quote}",
        side=side,
        entries=entries,
        entry_is_range=is_range,
        targets=targets,
        stop=stop,
        leverage=leverage,
        leverage_ignored=leverage is not None,
        size_pct=size,
    )


@settings(max_examples=300, deadline=None)
@given(signals())
def test_render_then_parse_gives_the_same_signal(signal: ParsedSignal) -> None:
    text = render_signal(signal)
    assert parse_signal_post(text) == signal, text


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_noise_never_crashes(text: str) -> None:
    try:
        result = parse_signal_post(text)
    except SignalRejected:
        return
    assert result is None or isinstance(result, ParsedSignal)


WORDS = [
    *[
        "BTC/USDT",
        "long",
        "short",
        "entry",
        "tp",
        "sl",
        "-",
        "60k",
        "1,000",
        "0,5",
        "%",
        "x10",
        "🚀",
        ":",
        "TP1:",
        "leverage",
        "size",
    ]
]
WORDS += ["$", "#eth", "to", ".5", "1)", "5.", "\n", "buy zone"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(WORDS) | st.integers(0, 10**7).map(str), max_size=25))
def test_signal_like_noise_never_crashes(parts: list[str]) -> None:
    try:
        result = parse_signal_post(" ".join(parts))
    except SignalRejected:
        return
    assert result is None or isinstance(result, ParsedSignal)
