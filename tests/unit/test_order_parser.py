"""The trade command parser: a table of forms and errors, and Hypothesis properties."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.errors import ValidationError
from services.trading.parser import (
    ALL,
    MAX_VALUE,
    REASONS,
    AmountUnit,
    OrderType,
    Protection,
    RequestKind,
    Side,
    TradeParseError,
    TradeRequest,
    parse_number,
    parse_symbol,
    parse_trade_command,
)

D = Decimal


def order(
    side: str,
    symbol: str,
    amount: str | None,
    unit: str,
    *,
    limit: str | None = None,
    sl: str | None = None,
    tp: str | None = None,
) -> TradeRequest:
    base, quote = symbol.split("/")
    return TradeRequest(
        kind=RequestKind.ORDER,
        side=Side(side),
        symbol=symbol,
        base=base,
        quote=quote,
        amount=None if amount is None else D(amount),
        amount_unit=AmountUnit(unit),
        order_type=OrderType.LIMIT if limit else OrderType.MARKET,
        limit_price=None if limit is None else D(limit),
        stop_loss=None if sl is None else D(sl),
        take_profit=None if tp is None else D(tp),
    )


def protect(which: str, symbol: str, price: str | None) -> TradeRequest:
    base, quote = symbol.split("/")
    value = None if price is None else D(price)
    return TradeRequest(
        kind=RequestKind.PROTECT,
        symbol=symbol,
        base=base,
        quote=quote,
        protect=Protection.STOP_LOSS if which == "sl" else Protection.TAKE_PROFIT,
        stop_loss=value if which == "sl" else None,
        take_profit=value if which == "tp" else None,
    )


def close(symbol: str) -> TradeRequest:
    if symbol == ALL:
        return TradeRequest(kind=RequestKind.CLOSE, target=ALL)
    base, quote = symbol.split("/")
    return TradeRequest(kind=RequestKind.CLOSE, symbol=symbol, base=base, quote=quote, target=symbol)


def cancel(target: str) -> TradeRequest:
    return TradeRequest(kind=RequestKind.CANCEL, target=target)


VALID: list[tuple[str, str, TradeRequest]] = [
    # market buys: a bare number after the symbol is a quote amount, before it a base quantity
    ("buy", "BTC 100", order("buy", "BTC/USDT", "100", "quote")),
    ("buy", "btc 100", order("buy", "BTC/USDT", "100", "quote")),
    ("buy", "0.01 BTC", order("buy", "BTC/USDT", "0.01", "base")),
    ("buy", "BTC .5", order("buy", "BTC/USDT", "0.5", "quote")),
    ("buy", "BTC 1,000.5", order("buy", "BTC/USDT", "1000.5", "quote")),
    ("buy", "BTC 1,000", order("buy", "BTC/USDT", "1000", "quote")),
    ("buy", "BTC 0,5", order("buy", "BTC/USDT", "0.5", "quote")),
    ("buy", "BTC 1k", order("buy", "BTC/USDT", "1000", "quote")),
    ("buy", "BTC 1.5K", order("buy", "BTC/USDT", "1500", "quote")),
    ("buy", "BTC 2m", order("buy", "BTC/USDT", "2000000", "quote")),
    ("buy", "BTC $100", order("buy", "BTC/USDT", "100", "quote")),
    ("buy", "BTC 100$", order("buy", "BTC/USDT", "100", "quote")),
    ("buy", "BTC 100 USDT", order("buy", "BTC/USDT", "100", "quote")),
    ("buy", "BTC 100usdt", order("buy", "BTC/USDT", "100", "quote")),
    ("buy", "BTC 2kusdt", order("buy", "BTC/USDT", "2000", "quote")),
    ("buy", "BTC 100 usd", order("buy", "BTC/USDT", "100", "quote")),
    ("buy", "$100 BTC", order("buy", "BTC/USDT", "100", "quote")),
    ("buy", "100 USDT BTC", order("buy", "BTC/USDT", "100", "quote")),
    ("buy", "BTC 0.01 BTC", order("buy", "BTC/USDT", "0.01", "base")),
    ("buy", "BTC 0.01btc", order("buy", "BTC/USDT", "0.01", "base")),
    ("buy", "0.01btc", order("buy", "BTC/USDT", "0.01", "base")),
    ("buy", "BTC 100 EUR", order("buy", "BTC/EUR", "100", "quote")),
    # symbols
    ("buy", "BTC/USDT 100", order("buy", "BTC/USDT", "100", "quote")),
    ("buy", "BTCUSDT 100", order("buy", "BTC/USDT", "100", "quote")),
    ("buy", "btc-usdt 100", order("buy", "BTC/USDT", "100", "quote")),
    ("buy", "BTC_USDT 100", order("buy", "BTC/USDT", "100", "quote")),
    ("buy", "XBT 100", order("buy", "XBT/USDT", "100", "quote")),
    ("buy", "ETHBTC 0.5 ETH", order("buy", "ETH/BTC", "0.5", "base")),
    ("buy", "ETHFDUSD 10", order("buy", "ETH/FDUSD", "10", "quote")),
    ("buy", "ARBUSD 10", order("buy", "AR/BUSD", "10", "quote")),  # longest quote wins; write ARB/USD
    ("buy", "BTC/TRY 100", order("buy", "BTC/TRY", "100", "quote")),
    ("buy", "WBTC 100", order("buy", "WBTC/USDT", "100", "quote")),
    ("buy", "1INCH 100", order("buy", "1INCH/USDT", "100", "quote")),
    ("buy", "100 1000PEPE", order("buy", "1000PEPE/USDT", "100", "base")),
    ("buy", "MAX/USDT 10", order("buy", "MAX/USDT", "10", "quote")),
    # limit orders: with a price a bare number after the symbol is a base quantity
    ("buy", "BTC 0.01 @ 60000", order("buy", "BTC/USDT", "0.01", "base", limit="60000")),
    ("buy", "0.01 BTC @ 60000", order("buy", "BTC/USDT", "0.01", "base", limit="60000")),
    ("buy", "BTC 0.01 at 60000", order("buy", "BTC/USDT", "0.01", "base", limit="60000")),
    ("buy", "BTC 0.01 limit 60000", order("buy", "BTC/USDT", "0.01", "base", limit="60000")),
    ("buy", "BTC 0.01@60k", order("buy", "BTC/USDT", "0.01", "base", limit="60000")),
    ("buy", "0.01btc@60k", order("buy", "BTC/USDT", "0.01", "base", limit="60000")),
    ("buy", "BTC $500 @ 60,000", order("buy", "BTC/USDT", "500", "quote", limit="60000")),
    ("buy", "BTC 0.01 @ $60000", order("buy", "BTC/USDT", "0.01", "base", limit="60000")),
    ("buy", "BTC 0.01 @ 60000 USDT", order("buy", "BTC/USDT", "0.01", "base", limit="60000")),
    ("buy", "BTC 0.01 price=60000", order("buy", "BTC/USDT", "0.01", "base", limit="60000")),
    # protections, in any order
    ("buy", "BTC 100 sl 58000", order("buy", "BTC/USDT", "100", "quote", sl="58000")),
    ("buy", "BTC 100 tp 65000", order("buy", "BTC/USDT", "100", "quote", tp="65000")),
    ("buy", "BTC 100 sl 58000 tp 65000", order("buy", "BTC/USDT", "100", "quote", sl="58000", tp="65000")),
    ("buy", "BTC 100 tp 65000 sl 58000", order("buy", "BTC/USDT", "100", "quote", sl="58000", tp="65000")),
    ("buy", "BTC 100 stop 58000 take 65k", order("buy", "BTC/USDT", "100", "quote", sl="58000", tp="65000")),
    ("buy", "BTC 100 sl=58000 TP=65000", order("buy", "BTC/USDT", "100", "quote", sl="58000", tp="65000")),
    (
        "buy",
        "BTC 0.01 sl 58000 @ 60000 tp 65000",
        order("buy", "BTC/USDT", "0.01", "base", limit="60000", sl="58000", tp="65000"),
    ),
    # sells
    ("sell", "ETH 50%", order("sell", "ETH/USDT", "50", "percent")),
    ("sell", "50% ETH", order("sell", "ETH/USDT", "50", "percent")),
    ("sell", "ETH 12.5 %", order("sell", "ETH/USDT", "12.5", "percent")),
    ("sell", "ETH 100%", order("sell", "ETH/USDT", "100", "percent")),
    ("sell", "SOL all", order("sell", "SOL/USDT", None, "all")),
    ("sell", "all SOL", order("sell", "SOL/USDT", None, "all")),
    ("sell", "SOL max", order("sell", "SOL/USDT", None, "all")),
    ("sell", "SOL MAX @ 200", order("sell", "SOL/USDT", None, "all", limit="200")),
    ("sell", "ETH 0.5 ETH", order("sell", "ETH/USDT", "0.5", "base")),
    ("sell", "ETH 0.5 @ 4000", order("sell", "ETH/USDT", "0.5", "base", limit="4000")),
    ("sell", "ETH 100", order("sell", "ETH/USDT", "100", "quote")),
    # /sl /tp /close /cancel
    ("sl", "BTC 58000", protect("sl", "BTC/USDT", "58000")),
    ("tp", "btcusdt 65k", protect("tp", "BTC/USDT", "65000")),
    ("sl", "BTC off", protect("sl", "BTC/USDT", None)),
    ("tp", "ETH/BTC none", protect("tp", "ETH/BTC", None)),
    ("/SL", "BTC 58000", protect("sl", "BTC/USDT", "58000")),
    ("close", "BTC", close("BTC/USDT")),
    ("close", "eth-btc", close("ETH/BTC")),
    ("close", "all", close(ALL)),
    ("cancel", "12345", cancel("12345")),
    ("cancel", "#abc-123", cancel("abc-123")),
    ("cancel", "ALL", cancel(ALL)),
]

ERRORS: list[tuple[str, str, str]] = [
    ("buy", "", "missing_symbol"),
    ("buy", "100", "missing_symbol"),
    ("buy", "@ 60000", "missing_symbol"),
    ("buy", "BTC", "missing_amount"),
    ("buy", "BTC @ 60000", "missing_amount"),
    ("buy", "BTC 1 000", "too_many_numbers"),
    ("buy", "BTC 0.01 60000", "too_many_numbers"),
    ("buy", "0.01 BTC 100", "too_many_numbers"),
    ("buy", "100 200 BTC", "too_many_numbers"),
    ("buy", "BTC 0,500", "ambiguous_number"),
    ("buy", "BTC 1234,567", "ambiguous_number"),
    ("buy", "BTC 1.000,5", "ambiguous_number"),
    ("buy", "BTC 1,00,000", "ambiguous_number"),
    ("buy", "BTC 1e5", "bad_amount"),
    ("buy", "BTC nan", "bad_amount"),
    ("buy", "BTC inf", "bad_amount"),
    ("buy", "BTC -5", "bad_amount"),
    ("buy", "BTC 0", "bad_amount"),
    ("buy", "BTC 0.0", "bad_amount"),
    ("buy", "BTC 1..2", "bad_amount"),
    ("buy", "BTC $100usdt", "bad_amount"),
    ("buy", "1k BTC", "bad_amount"),
    ("buy", "BTC 1k @ 60000", "bad_amount"),
    ("buy", "BTC 0.0000000000000000001", "too_precise"),
    ("buy", "BTC 2000000000000", "too_large"),
    ("buy", "BTC 2000000m", "too_large"),
    ("buy", "BTC " + "9" * 80, "too_large"),
    ("buy", "BTC 50%", "sell_only"),
    ("buy", "BTC all", "sell_only"),
    ("sell", "ETH 150%", "bad_percent"),
    ("sell", "ETH 0%", "bad_percent"),
    ("sell", "ETH 5k%", "bad_percent"),
    ("sell", "ETH $50%", "bad_percent"),
    ("buy", "BTC/EUR $100", "unit_mismatch"),
    ("buy", "BTC/USDT 100 ETH", "unit_mismatch"),
    ("buy", "BTC 0.01 @ 60000 EUR", "unit_mismatch"),
    ("buy", "BTC 100 TRY", "unexpected"),
    ("buy", "BTC 100 please", "unexpected"),
    ("buy", "BTC 100 sl 58000 now", "unexpected"),
    ("buy", "₿ 100", "bad_symbol"),
    ("buy", "USDT 100", "bad_symbol"),
    ("buy", "BTC/USDT/X 100", "bad_symbol"),
    ("buy", "BTC 0.01 @", "missing_price"),
    ("buy", "BTC 100 sl", "missing_price"),
    ("buy", "BTC 100 sl tp 5", "missing_price"),
    ("buy", "BTC 0.01 @ abc", "bad_price"),
    ("buy", "BTC 0.01 @ 5%", "bad_price"),
    ("buy", "BTC 0.01 @ -5", "bad_price"),
    ("buy", "BTC 0.01 @ 1 @ 2", "duplicate"),
    ("buy", "BTC 100 sl 1 stop 2", "duplicate"),
    ("buy", "BTC 0.01 @ 60000 sl 61000", "sl_above_price"),
    ("buy", "BTC 0.01 @ 60000 sl 60000", "sl_above_price"),
    ("buy", "BTC 0.01 @ 60000 tp 59000", "tp_below_price"),
    ("buy", "BTC 100 sl 65000 tp 58000", "sl_above_tp"),
    ("sell", "ETH 1 sl 1000", "protect_on_sell"),
    ("sell", "ETH 1 tp 5000", "protect_on_sell"),
    ("sl", "", "missing_symbol"),
    ("sl", "58000", "missing_symbol"),
    ("sl", "BTC", "missing_price"),
    ("tp", "BTC 1%", "bad_price"),
    ("sl", "BTC 58000 extra", "unexpected"),
    ("close", "", "missing_target"),
    ("close", "BTC 50%", "unexpected"),
    ("close", "all BTC", "unexpected"),
    ("close", "100", "missing_symbol"),
    ("cancel", "", "missing_target"),
    ("cancel", "!!", "bad_order_id"),
    ("cancel", "1 2", "unexpected"),
    ("short", "BTC 100", "unknown_command"),
    ("buy", "BTC " + "1 " * 200, "too_long"),
    ("buy", "a " * 20, "too_long"),
]


@pytest.mark.parametrize(("command", "args", "expected"), VALID)
def test_valid_forms(command: str, args: str, expected: TradeRequest) -> None:
    assert parse_trade_command(command, args) == expected


@pytest.mark.parametrize(("command", "args", "reason"), ERRORS)
def test_errors_have_a_specific_key(command: str, args: str, reason: str) -> None:
    with pytest.raises(TradeParseError) as caught:
        parse_trade_command(command, args)
    assert caught.value.message_key == f"trade.parse.{reason}"
    assert caught.value.reason in REASONS
    assert isinstance(caught.value, ValidationError)


def test_the_table_is_big_enough_and_covers_every_reason() -> None:
    assert len(VALID) + len(ERRORS) >= 50
    assert {reason for _, _, reason in ERRORS} >= set(REASONS) - {"bad_number"}


def test_errors_carry_the_token_and_an_example() -> None:
    with pytest.raises(TradeParseError) as caught:
        parse_trade_command("buy", "BTC 100 frobnicate")
    assert caught.value.params == {"token": "frobnicate", "example": "/buy BTC 0.01 @ 60000"}
    with pytest.raises(TradeParseError) as caught:
        parse_trade_command("buy", "ETH 1 @ 3000 sl 3500")
    assert caught.value.params["stop_loss"] == "3500"
    assert caught.value.params["price"] == "3000"


def test_echoed_tokens_are_capped_at_32_characters() -> None:
    with pytest.raises(TradeParseError) as caught:
        parse_trade_command("buy", "BTC 100 " + "x" * 200)
    token = caught.value.params["token"]
    assert len(token) == 32
    assert token.endswith("…")


def test_k_suffix_and_plain_values_are_written_without_exponent() -> None:
    request = parse_trade_command("buy", "BTC 1.5k")
    assert str(request.amount) == "1500"
    assert parse_number("60k", allow_suffix=True) == D(60000)


def test_parse_number_and_symbol_helpers() -> None:
    assert parse_number("1,234,567.25") == D("1234567.25")
    assert parse_number("0,25") == D("0.25")
    with pytest.raises(TradeParseError, match="bad_number"):
        parse_number("1k")
    with pytest.raises(TradeParseError, match="ambiguous_number"):
        parse_number("0,250")
    assert parse_symbol("ethbtc").symbol == "ETH/BTC"
    assert parse_symbol("BTCUSDC").symbol == "BTC/USDC"
    assert parse_symbol("USDC").symbol == "USDC/USDT"
    assert parse_symbol("STETH").symbol == "STETH/USDT"


def test_protect_off_is_reported_as_clearing() -> None:
    assert parse_trade_command("sl", "BTC off").clears_protection
    assert not parse_trade_command("sl", "BTC 1").clears_protection
    assert not parse_trade_command("buy", "BTC 100").clears_protection


# ------------------------------------------------------------------------------------------ properties

BASES = ["BTC", "ETH", "SOL", "XBT", "DOGE", "AVAX", "ARB", "1INCH", "PEPE", "LINK"]
QUOTES = ["USDT", "USDC", "USD", "EUR", "BTC", "ETH", "BUSD", "FDUSD"]
DOLLAR_QUOTES = {"USDT", "USDC", "USD", "BUSD", "FDUSD"}


@dataclass(frozen=True)
class Case:
    args: str
    expected: TradeRequest


def plain(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@st.composite
def numbers(draw: st.DrawFn, value: Decimal, *, suffix: bool) -> str:
    """One of the allowed spellings of a positive number."""
    text = plain(value)
    styles = ["plain"]
    if value >= 1000:
        styles.append("grouped")
    if "." in text and len(text.split(".")[1]) != 3:
        styles.append("comma")
    if text.startswith("0."):
        styles.append("bare_point")
    if suffix and value >= 1000:
        styles.append("k")
    if suffix and value >= 1_000_000:
        styles.append("m")
    style = draw(st.sampled_from(styles))
    if style == "grouped":
        return f"{value.normalize():,f}"
    if style == "comma":
        return text.replace(".", ",")
    if style == "bare_point":
        return text[1:]
    if style == "k":
        return plain(value.scaleb(-3)) + draw(st.sampled_from(["k", "K"]))
    if style == "m":
        return plain(value.scaleb(-6)) + draw(st.sampled_from(["m", "M"]))
    return text


def symbol_text(draw: st.DrawFn, base: str, quote: str, *, bare: bool) -> str:
    styles = ["slash", "dash", "underscore"]
    # `ARBUSD` is AR/BUSD by the longest-quote rule: concatenate only where that reads back as meant
    if not any(len(q) > len(quote) and (base + quote).endswith(q) for q in QUOTES):
        styles.append("concat")
    if bare:
        styles += ["bare", "bare_lower"]
    style = draw(st.sampled_from(styles))
    lower = draw(st.booleans())
    text = {
        "slash": f"{base}/{quote}",
        "dash": f"{base}-{quote}",
        "underscore": f"{base}_{quote}",
        "concat": f"{base}{quote}",
        "bare": base,
        "bare_lower": base.lower(),
    }[style]
    return text.lower() if lower else text


def price_text(draw: st.DrawFn, value: Decimal, quote: str) -> str:
    number = draw(numbers(value, suffix=True))
    styles = ["plain", "unit"]
    if quote in DOLLAR_QUOTES:
        styles += ["dollar_pre", "dollar_post"]
    style = draw(st.sampled_from(styles))
    if style == "unit":
        return f"{number} {quote}"
    if style == "dollar_pre":
        return f"${number}"
    if style == "dollar_post":
        return f"{number}$"
    return number


positive = st.decimals(min_value=D("0.00000001"), max_value=D(10**6), places=8, allow_nan=False)
money = st.decimals(min_value=D("0.01"), max_value=D(10**9), places=2, allow_nan=False)
percents = st.decimals(min_value=D("0.01"), max_value=D(100), places=2, allow_nan=False)
prices = st.decimals(min_value=D("0.0001"), max_value=D(10**7), places=4, allow_nan=False)


@st.composite
def orders(draw: st.DrawFn) -> Case:
    side = draw(st.sampled_from(["buy", "sell"]))
    base = draw(st.sampled_from(BASES))
    quote = draw(st.sampled_from([q for q in QUOTES if q != base]))
    units = ["base", "quote"] + (["percent", "all"] if side == "sell" else [])
    unit = draw(st.sampled_from(units))
    limit = draw(st.one_of(st.none(), prices))

    # protections (buys only): stop-loss < limit price < take-profit
    stop_loss = take_profit = None
    if side == "buy":
        anchor = limit if limit is not None else draw(prices)
        if draw(st.booleans()):
            factor = draw(st.sampled_from([D("0.5"), D("0.9"), D("0.99")]))
            stop_loss = (anchor * factor).quantize(D("0.0001"))
            stop_loss = stop_loss if 0 < stop_loss < anchor else None
        if draw(st.booleans()):
            factor = draw(st.sampled_from([D("1.01"), D("1.5"), D(2)]))
            take_profit = (anchor * factor).quantize(D("0.0001"))
            take_profit = take_profit if take_profit > anchor else None

    amount: Decimal | None
    quote_named_by_unit = False
    if unit == "base":
        amount = draw(positive)
        number = draw(numbers(amount, suffix=False))
        styles = ["lead", "trail_unit"]
        if base[0].isalpha():
            styles.append("trail_attached")
        if limit is not None:
            styles.append("trail_bare")
        style = draw(st.sampled_from(styles))
        amount_parts = {
            "lead": (number, ""),
            "trail_unit": ("", f"{number} {draw(st.sampled_from([base, base.lower()]))}"),
            "trail_attached": ("", f"{number}{base.lower()}"),
            "trail_bare": ("", number),
        }[style]
    elif unit == "quote":
        amount = draw(money)
        number = draw(numbers(amount, suffix=True))
        styles = ["trail_unit", "trail_attached", "lead_unit"]
        if quote in DOLLAR_QUOTES:
            styles += ["dollar_pre", "dollar_post", "lead_dollar"]
        if limit is None:
            styles.append("trail_bare")
        style = draw(st.sampled_from(styles))
        quote_named_by_unit = style in ("trail_unit", "trail_attached", "lead_unit") and quote != "USD"
        amount_parts = {
            "trail_unit": ("", f"{number} {quote}"),
            "trail_attached": ("", f"{number}{quote.lower()}"),
            "lead_unit": (f"{number} {quote}", ""),
            "dollar_pre": ("", f"${number}"),
            "dollar_post": ("", f"{number}$"),
            "lead_dollar": (f"${number}", ""),
            "trail_bare": ("", number),
        }[style]
    elif unit == "percent":
        amount = draw(percents)
        number = plain(amount) + draw(st.sampled_from(["%", " %"]))
        amount_parts = draw(st.sampled_from([(number, ""), ("", number)]))
    else:
        amount = None
        word = draw(st.sampled_from(["all", "max", "ALL", "Max"]))
        amount_parts = draw(st.sampled_from([(word, ""), ("", word)]))

    symbol = symbol_text(draw, base, quote, bare=quote == "USDT" or quote_named_by_unit)
    clauses = []
    if limit is not None:
        keyword = draw(st.sampled_from(["@ ", "@", "at ", "limit ", "LIMIT ", "price ", "limit=", "at:"]))
        clauses.append(keyword + price_text(draw, limit, quote))
    if stop_loss is not None:
        keyword = draw(st.sampled_from(["sl ", "SL ", "stop ", "stoploss ", "sl=", "sl:"]))
        clauses.append(keyword + price_text(draw, stop_loss, quote))
    if take_profit is not None:
        keyword = draw(st.sampled_from(["tp ", "TP ", "take ", "takeprofit ", "tp=", "tp:"]))
        clauses.append(keyword + price_text(draw, take_profit, quote))
    clauses = draw(st.permutations(clauses))
    lead, trail = amount_parts
    args = " ".join(part for part in (lead, symbol, trail, *clauses) if part)
    expected = TradeRequest(
        kind=RequestKind.ORDER,
        side=Side(side),
        symbol=f"{base}/{quote}",
        base=base,
        quote=quote,
        amount=amount,
        amount_unit=AmountUnit(unit),
        order_type=OrderType.MARKET if limit is None else OrderType.LIMIT,
        limit_price=limit,
        stop_loss=stop_loss,
        take_profit=take_profit,
    )
    return Case(args, expected)


@given(orders())
def test_rendered_orders_parse_back(case: Case) -> None:
    assert parse_trade_command(case.expected.side or "", case.args) == case.expected, case.args


@st.composite
def other_commands(draw: st.DrawFn) -> tuple[str, str, TradeRequest]:
    base = draw(st.sampled_from(BASES))
    quote = draw(st.sampled_from([q for q in QUOTES if q != base]))
    symbol = symbol_text(draw, base, quote, bare=quote == "USDT")
    command = draw(st.sampled_from(["sl", "tp", "close"]))
    if command == "close":
        return command, symbol, close(f"{base}/{quote}")
    value = draw(st.one_of(st.none(), prices))
    if value is None:
        word = draw(st.sampled_from(["off", "OFF", "none", "clear", "remove"]))
        return command, f"{symbol} {word}", protect(command, f"{base}/{quote}", None)
    text = f"{symbol} {price_text(draw, value, quote)}"
    return command, text, protect(command, f"{base}/{quote}", plain(value))


@given(other_commands())
def test_rendered_protect_and_close_parse_back(case: tuple[str, str, TradeRequest]) -> None:
    command, args, expected = case
    assert parse_trade_command(command, args) == expected, args


VOCABULARY = [
    "BTC", "btc", "ETH/BTC", "BTCUSDT", "usdt", "EUR", "XBT", "1INCH", "all", "max", "off", "@", "at",
    "limit", "sl", "tp", "stop", "take", "sl=", "tp:", "%", "$", "100", "0.5", ".5", "1,000", "0,5", "0,500",
    "1k", "2M", "1e5", "nan", "-1", "0", "100%", "50 %", "$100", "100$", "100usdt", "0.01btc", "1,0,0",
    "9" * 30, "0." + "0" * 30 + "1", "#12", "@60000", "1.5k", "١٠٠", "٫", "🚀", "\u200b", "1_000",
]  # fmt: skip

COMMANDS = ["buy", "sell", "sl", "tp", "close", "cancel"]
soup = st.lists(st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=6)), max_size=10).map(" ".join)


def _parse_or_typed_error(command: str, args: str) -> TradeRequest | None:
    try:
        return parse_trade_command(command, args)
    except TradeParseError as error:
        assert error.reason in REASONS
        assert error.message_key == f"trade.parse.{error.reason}"
        for name, value in error.params.items():
            assert isinstance(value, str)
            assert len(value) <= (64 if name == "example" else 32), (name, value)
        return None


@given(st.sampled_from(COMMANDS), st.text())
def test_arbitrary_text_raises_only_typed_errors(command: str, args: str) -> None:
    _parse_or_typed_error(command, args)


@given(st.sampled_from(COMMANDS), soup)
def test_token_soup_raises_only_typed_errors(command: str, args: str) -> None:
    _parse_or_typed_error(command, args)


def _check_positive(value: Any) -> None:
    assert isinstance(value, Decimal)
    assert value.is_finite()
    assert 0 < value <= MAX_VALUE
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int) and exponent <= 0  # `1.5k` is 1500, not 1.5E+3


@given(st.sampled_from(["buy", "sell"]), soup)
def test_parsed_amounts_and_prices_are_positive_finite_decimals(command: str, args: str) -> None:
    request = _parse_or_typed_error(command, args)
    if request is None:
        return
    assert request.kind is RequestKind.ORDER
    if request.amount_unit is AmountUnit.ALL:
        assert request.amount is None
    else:
        _check_positive(request.amount)
    if request.amount_unit is AmountUnit.PERCENT:
        assert request.amount is not None and request.amount <= 100
    for value in (request.limit_price, request.stop_loss, request.take_profit):
        if value is not None:
            _check_positive(value)
    assert (request.order_type is OrderType.LIMIT) == (request.limit_price is not None)


@given(orders())
def test_parsed_orders_from_rendered_text_are_positive(case: Case) -> None:
    request = parse_trade_command(case.expected.side or "", case.args)
    if request.amount is not None:
        _check_positive(request.amount)
