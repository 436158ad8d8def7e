"""Trading command text -> a typed, validated `TradeRequest`. Pure logic: no I/O, no exchange calls.

The trading service takes it from here: it resolves the symbol against the exchange's markets (and maps
aliases such as XBT), sizes and rounds the order, runs the risk checks and shows a confirmation card.

Grammar (tokens are separated by whitespace; keywords and symbols are case-insensitive)::

    buy | sell:  [AMOUNT [UNIT]] SYMBOL [AMOUNT [UNIT]] CLAUSE*      (exactly one AMOUNT in total)
        CLAUSE:  ("@" | "at" | "limit" | "price") PRICE               a limit order at PRICE
                 ("sl" | "stop" | "stoploss") PRICE                   stop-loss (buys only)
                 ("tp" | "take" | "takeprofit") PRICE                 take-profit (buys only)
                 clauses come in any order, each at most once; `sl=58000`, `sl:58000` and `@60000`
                 are also accepted.
    sl | tp:     SYMBOL (PRICE | "off" | "none" | "clear" | "remove")
    close:       SYMBOL | "all"
    cancel:      ORDER_ID | "all"                                     (`#123` is read as `123`)

What an AMOUNT means:

* `50%` (or `50 %`): that percentage of the holding, 0 < p <= 100; `all` / `max`: everything. Sells only.
* explicit units always win: `$100`, `100$`, `100 USDT`, `100usdt` are quote amounts; `0.01 BTC` and
  `0.01btc` are base amounts. A quote unit other than the default quote switches the pair when the symbol
  did not name its quote (`/buy BTC 100 EUR` -> BTC/EUR); `USD` and `$` mean the quote currency when that is
  a dollar stablecoin (USDT, USDC, BUSD, FDUSD, USD).
* a bare number BEFORE the symbol is a base quantity (`/buy 0.01 BTC`); `/buy 0.01btc` (the unit attached,
  no symbol after it) names the symbol by its unit;
* a bare number AFTER the symbol is a quote amount on a market order (`/buy BTC 100` spends 100 USDT) and a
  base quantity when the order has a limit price (`/buy BTC 0.01 @ 60000`), for buys and sells alike.

Numbers (`parse_number`): ASCII digits only. `100`, `0.5`, `.5`, `5.`, `1,000.5`, `1,000,000`; the suffixes
`k` (thousands) and `m` (millions), as in `1.5k`, are allowed for prices and quote amounts only.
The comma rule: a comma is a thousands separator when the number is correctly grouped (`1,000`,
`12,345,678.9`: first group 1-3 digits not starting with 0, then groups of exactly 3); otherwise a single
comma followed by a number of digits other than 3 is a decimal comma (`0,5` = 0.5, `1234,56` = 1234.56).
Anything else with a comma (`0,500`, `1234,567`, `1.000,5`, `1,00,000`) is refused as ambiguous, and so is
a number split by a space (`1 000` reads as two numbers). Refused too: signs, exponents, NaN/infinity,
zero, more than 18 decimal places, and values above 1e12.

Symbols (`parse_symbol`): `BTC`, `btc`, `BTC/USDT`, `btc-usdt`, `BTC_USDT`, `BTCUSDT`, `XBT`; letters and
digits, at least one letter on each side. Without a separator the longest known quote suffix splits the
word (`ETHBTC` -> ETH/BTC, `ETHFDUSD` -> ETH/FDUSD), except for a word that is itself a known quote or a
well-known wrapped/derived token (`WBTC`, `STETH`, `TUSD`...); a word without such suffix gets the default
quote USDT. With a separator the quote may be anything (`BTC/TRY`). Keywords (`all`, `max`, `sl`...) are
never read as a bare symbol; `MAX/USDT` still works.

Every refusal is a `TradeParseError` (a `ValidationError`) whose `message_key` is `trade.parse.<reason>`;
its params carry the offending token (at most 32 characters) and usually an example of the right form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from services.errors import ValidationError

__all__ = [
    "ALL",
    "DEFAULT_QUOTE",
    "KNOWN_QUOTES",
    "MAX_DECIMALS",
    "MAX_VALUE",
    "REASONS",
    "AmountUnit",
    "OrderType",
    "Protection",
    "RequestKind",
    "Side",
    "SymbolRef",
    "TradeParseError",
    "TradeRequest",
    "parse_number",
    "parse_symbol",
    "parse_trade_command",
]

ALL: Final = "all"
"""`TradeRequest.target` of `/close all` and `/cancel all`."""

DEFAULT_QUOTE: Final = "USDT"
KNOWN_QUOTES: Final = ("FDUSD", "USDT", "USDC", "BUSD", "USD", "EUR", "BTC", "ETH")  # longest first
USD_QUOTES: Final = frozenset({"USDT", "USDC", "USD", "BUSD", "FDUSD"})
# Tokens that end in a known quote but are bases of their own; spelled `WBTC/USDT` they need no list.
NO_SPLIT: Final = frozenset(
    {
        "WBTC", "TBTC", "LBTC", "FBTC", "HBTC", "RENBTC", "SOLVBTC",
        "WETH", "BETH", "WBETH", "RETH", "CBETH", "STETH", "WSTETH", "METH", "WEETH", "EZETH", "RSETH",
        "TUSD", "PYUSD", "SUSD", "LUSD", "GUSD", "HUSD", "ZUSD", "DUSD", "CUSD", "AEUR", "AGEUR", "SEUR",
    }
)  # fmt: skip
MAX_VALUE: Final = Decimal(10) ** 12
MAX_DECIMALS: Final = 18
MAX_ECHO: Final = 32
MAX_INPUT: Final = 256
MAX_TOKENS: Final = 16

REASONS: Final = (
    "too_long",
    "unknown_command",
    "missing_symbol",
    "bad_symbol",
    "missing_amount",
    "bad_amount",
    "bad_percent",
    "bad_number",
    "ambiguous_number",
    "too_large",
    "too_precise",
    "unit_mismatch",
    "sell_only",
    "missing_price",
    "bad_price",
    "duplicate",
    "too_many_numbers",
    "unexpected",
    "protect_on_sell",
    "sl_above_price",
    "tp_below_price",
    "sl_above_tp",
    "missing_target",
    "bad_order_id",
)
"""Every `trade.parse.<reason>` this module can raise; each needs a text in every locale."""

COMMANDS: Final = frozenset({"buy", "sell", "sl", "tp", "close", "cancel"})
PRICE_WORDS: Final = frozenset({"@", "at", "limit", "price"})
SL_WORDS: Final = frozenset({"sl", "stop", "stoploss", "stop-loss", "stop_loss"})
TP_WORDS: Final = frozenset({"tp", "take", "takeprofit", "take-profit", "take_profit"})
ALL_WORDS: Final = frozenset({"all", "max"})
OFF_WORDS: Final = frozenset({"off", "none", "clear", "remove"})
KEYWORDS: Final = PRICE_WORDS | SL_WORDS | TP_WORDS | ALL_WORDS | OFF_WORDS
_NON_FINITE: Final = frozenset({"nan", "snan", "inf", "infinity", "+inf", "-inf", "-nan"})


class RequestKind(StrEnum):
    ORDER = "order"  # /buy, /sell
    PROTECT = "protect"  # /sl, /tp
    CLOSE = "close"  # /close
    CANCEL = "cancel"  # /cancel


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class AmountUnit(StrEnum):
    BASE = "base"  # amount is a quantity of the base asset (0.01 BTC)
    QUOTE = "quote"  # amount is a sum in the quote asset to spend or receive (100 USDT)
    PERCENT = "percent"  # amount is a percentage of the holding, 0 < amount <= 100
    ALL = "all"  # the whole holding; amount is None


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class Protection(StrEnum):
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"


class TradeParseError(ValidationError):
    """The command text could not be read; `message_key` is `trade.parse.<reason>`."""

    message_key = "trade.parse.invalid"

    def __init__(self, reason: str, /, **params: Any) -> None:
        self.reason = reason
        super().__init__(f"trade.parse.{reason}", **params)


@dataclass(frozen=True)
class SymbolRef:
    """A pair as the user wrote it, normalised to upper case (aliases such as XBT are kept)."""

    base: str
    quote: str
    explicit_quote: bool = False  # the user named the quote (`BTC/EUR`, `BTCEUR`), not the default

    @property
    def symbol(self) -> str:
        return f"{self.base}/{self.quote}"


@dataclass(frozen=True)
class TradeRequest:
    """One parsed command. Fields that do not apply to the `kind` are None.

    kind:         order (/buy, /sell), protect (/sl, /tp), close (/close), cancel (/cancel).
    side:         buy or sell (orders only).
    symbol:       normalised `BASE/QUOTE`, e.g. `BTC/USDT` (orders, protect, and close of one symbol).
    base, quote:  the two halves of `symbol`.
    amount:       how much; its meaning is given by `amount_unit`. Always > 0; None when the unit is `all`.
    amount_unit:  base (quantity of the base asset), quote (sum in the quote asset), percent (of the
                  holding, 0 < amount <= 100; sells only) or all (the whole holding; sells only).
    order_type:   market, or limit when `limit_price` is set (orders only).
    limit_price:  the limit price in the quote asset (limit orders only).
    stop_loss:    stop-loss price for the position the buy opens (orders), or the new stop-loss of the
                  open position (protect with `protect == stop_loss`; None there means "remove it").
    take_profit:  likewise for the take-profit.
    protect:      which protection a /sl or /tp command sets (protect only).
    target:       what /close or /cancel acts on: a normalised symbol, an order id, or `ALL` ("all").
    """

    kind: RequestKind
    side: Side | None = None
    symbol: str | None = None
    base: str | None = None
    quote: str | None = None
    amount: Decimal | None = None
    amount_unit: AmountUnit | None = None
    order_type: OrderType | None = None
    limit_price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    protect: Protection | None = None
    target: str | None = None

    @property
    def clears_protection(self) -> bool:
        """True for `/sl BTC off` and `/tp BTC off`."""
        if self.kind is not RequestKind.PROTECT:
            return False
        value = self.stop_loss if self.protect is Protection.STOP_LOSS else self.take_profit
        return value is None


def market_order(
    symbol: str,
    side: Side,
    amount: Decimal | None,
    unit: AmountUnit,
    *,
    stop_loss: Decimal | None = None,
    take_profit: Decimal | None = None,
) -> TradeRequest:
    """A market order built by the bot itself (a copied trade, a signal's trade, closing one position)."""
    base, _, quote = symbol.partition("/")
    return TradeRequest(
        kind=RequestKind.ORDER,
        side=side,
        symbol=symbol,
        base=base,
        quote=quote,
        amount=amount,
        amount_unit=unit,
        order_type=OrderType.MARKET,
        stop_loss=stop_loss,
        take_profit=take_profit,
    )


# --------------------------------------------------------------------------------------------- numbers

_PLAIN = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+", re.ASCII)
_GROUPED = re.compile(r"[1-9][0-9]{0,2}(?:,[0-9]{3})+(?:\.[0-9]+)?", re.ASCII)
_DECIMAL_COMMA = re.compile(r"[0-9]+,([0-9]+)", re.ASCII)
_VALUE = re.compile(r"(\$)?([0-9.,]+)([A-Za-z]{1,12})?([$%])?", re.ASCII)
_DIGITS: Final = frozenset("0123456789")


class _NumberError(Exception):
    """Internal: why a number was refused (bad, ambiguous, too_large, too_precise, not_positive)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _number(text: str) -> Decimal:
    """The digits-and-separators core of a number (no units, no suffix); positive, <= 18 decimals."""
    if _PLAIN.fullmatch(text):
        plain = text
    elif _GROUPED.fullmatch(text):
        plain = text.replace(",", "")
    elif (match := _DECIMAL_COMMA.fullmatch(text)) and len(match[1]) != 3:
        plain = text.replace(",", ".")
    elif "," in text:
        raise _NumberError("ambiguous")
    else:
        raise _NumberError("bad")
    _, _, decimals = plain.partition(".")
    if len(decimals) > MAX_DECIMALS:
        raise _NumberError("too_precise")
    value = Decimal(plain)
    if value == 0:
        raise _NumberError("not_positive")
    return value


def _shift(value: Decimal, digits: int) -> Decimal:
    """value * 10**digits, exactly, written without an exponent."""
    if not digits:
        return value
    sign, coefficient, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    shifted = Decimal((sign, coefficient, exponent + digits))
    if shifted > MAX_VALUE:
        raise _NumberError("too_large")
    return shifted.quantize(Decimal(1)) if exponent + digits > 0 else shifted


def _checked(value: Decimal) -> Decimal:
    if value > MAX_VALUE:
        raise _NumberError("too_large")
    return value


def parse_number(text: str, *, allow_suffix: bool = False) -> Decimal:
    """A positive number as users type it (see the module docstring); `k`/`m` only with allow_suffix.

    Raises `TradeParseError` with reason bad_number, ambiguous_number, too_large or too_precise.
    """
    core = text
    digits = 0
    if allow_suffix and text[-1:] in ("k", "K", "m", "M"):
        core, digits = text[:-1], 3 if text[-1] in "kK" else 6
    try:
        return _checked(_shift(_number(core), digits))
    except _NumberError as error:
        raise _number_error(error, "bad_number", text, "1000.5") from None


# --------------------------------------------------------------------------------------------- symbols

_SYMBOL = re.compile(r"([A-Za-z0-9]{1,20})(?:[/_-]([A-Za-z0-9]{1,20}))?", re.ASCII)


def _has_letter(word: str) -> bool:
    return any(c.isalpha() for c in word)


def parse_symbol(text: str) -> SymbolRef:
    """`btc`, `BTC/USDT`, `btc-usdt`, `BTC_USDT`, `BTCUSDT`, `ETHBTC` -> a `SymbolRef`. Raises bad_symbol."""
    match = _SYMBOL.fullmatch(text)
    if match is None or (match[2] is None and text.lower() in KEYWORDS):
        raise TradeParseError("bad_symbol", token=_echo(text), example="BTC/USDT")
    base = match[1].upper()
    ref = SymbolRef(base, match[2].upper(), explicit_quote=True) if match[2] is not None else _split(base)
    if not (_has_letter(ref.base) and _has_letter(ref.quote)) or ref.base == ref.quote:
        raise TradeParseError("bad_symbol", token=_echo(text), example="BTC/USDT")
    return ref


def _split(word: str) -> SymbolRef:
    if word not in KNOWN_QUOTES and word not in NO_SPLIT:
        for quote in KNOWN_QUOTES:
            base = word[: -len(quote)]
            if word.endswith(quote) and base and _has_letter(base):
                return SymbolRef(base, quote, explicit_quote=True)
    return SymbolRef(word, DEFAULT_QUOTE)


def _is_symbol_word(token: str) -> bool:
    """Could this token be a symbol (rather than a keyword or an amount)?"""
    return token.lower() not in KEYWORDS and not _is_value(token, ())


# ------------------------------------------------------------------------------------------- tokenising


def _echo(token: str) -> str:
    """A token safe to show back to the user: at most MAX_ECHO characters."""
    return token if len(token) <= MAX_ECHO else token[: MAX_ECHO - 1] + "…"


_KEY_VALUE = re.compile(
    r"(sl|stop|stoploss|stop-loss|stop_loss|tp|take|takeprofit|take-profit|take_profit|at|limit|price)"
    r"[=:](.*)",
    re.IGNORECASE | re.ASCII,
)


def _tokenize(args: str) -> list[str]:
    if len(args) > MAX_INPUT:
        raise TradeParseError("too_long", max=str(MAX_INPUT))
    tokens: list[str] = []
    for word in args.split():
        for piece in re.split(r"(@)", word):
            if not piece:
                continue
            match = _KEY_VALUE.fullmatch(piece)
            if match:
                tokens.append(match[1])
                if match[2]:
                    tokens.append(match[2])
            else:
                tokens.append(piece)
    if len(tokens) > MAX_TOKENS:
        raise TradeParseError("too_long", max=str(MAX_INPUT))
    return tokens


def _is_value(token: str, units: tuple[str, ...] | frozenset[str]) -> bool:
    """Does this token look like an amount or a price (possibly a malformed one)?

    A token such as `1INCH` or `1000PEPE` is a symbol, not 1 with the unit INCH: digits followed by letters
    count as a value only when the letters are `k`/`m`, a known quote, one of `units`, or any of these
    prefixed by `k`/`m`, or when the number has a decimal point or comma (`0.5sol`).
    """
    low = token.lower()
    if low in ALL_WORDS or low in _NON_FINITE:
        return True
    if token[0] in "$+-.,%":
        return True
    if token[0] not in _DIGITS:
        return False
    number = token.rstrip("$%")
    letters_at = next((i for i, c in enumerate(number) if c not in "0123456789.,"), len(number))
    head, tail = number[:letters_at], number[letters_at:]
    if not tail or "." in head or "," in head:
        return True
    if not (tail.isascii() and tail.isalpha()):
        pair = _SYMBOL.fullmatch(token)  # `1INCH/USDT` is a symbol; `1e5`, `1_000`, `12:30` malformed numbers
        return not (pair and pair[2] and _has_letter(pair[1]) and _has_letter(pair[2]))
    return _unit_of(tail, units) is not None


def _unit_of(letters: str, units: tuple[str, ...] | frozenset[str]) -> tuple[int, str | None] | None:
    """Attached letters -> (decimal shift, unit): `k` -> (3, None), `kusdt` -> (3, USDT), `btc` -> (0, BTC).

    None when the letters are not a unit we can name (the caller decides whether that is an error).
    """
    low, up = letters.lower(), letters.upper()
    known = set(KNOWN_QUOTES) | set(units)
    if low in ("k", "m"):
        return (3 if low == "k" else 6), None
    if up in known:
        return 0, up
    if low[0] in "km" and up[1:] in known:
        return (3 if low[0] == "k" else 6), up[1:]
    return None


@dataclass
class _Cursor:
    tokens: list[str]
    at: int = 0

    def peek(self, ahead: int = 0) -> str | None:
        index = self.at + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        if token is not None:
            self.at += 1
        return token


@dataclass
class _Raw:
    """A value token before its meaning is known (that needs the symbol and the order type)."""

    token: str
    kind: str  # number | percent | all
    value: Decimal | None = None
    dollar: bool = False
    letters: str | None = None
    unit_word: str | None = None  # a separate unit token: `100 USDT`
    error: _NumberError | None = None  # a malformed number, reported once its role is known


def _lex(cur: _Cursor) -> _Raw:
    token = cur.take()
    assert token is not None
    if token.lower() in ALL_WORDS:
        return _Raw(token, "all")
    if token.lower() in _NON_FINITE or token.lstrip("$")[:1] in ("-", "+"):
        return _Raw(token, "number", error=_NumberError("not_positive"))
    match = _VALUE.fullmatch(token)
    if match and match[4] is None and cur.peek() == "%":
        cur.take()
        token += "%"
        match = _VALUE.fullmatch(token)
    if match is None:
        return _Raw(token, "number", error=_NumberError("bad"))
    dollar, core, letters, post = match.groups()
    kind = "percent" if post == "%" else "number"
    if (dollar and post) or (letters and post == "%"):
        return _Raw(token, kind, error=_NumberError("bad"))
    try:
        value = _number(core)
    except _NumberError as error:
        return _Raw(token, kind, error=error)
    return _Raw(token, kind, value=value, dollar=bool(dollar or post == "$"), letters=letters)


def _take_unit(cur: _Cursor, raw: _Raw, units: tuple[str, ...]) -> None:
    """`100 USDT`: a separate currency word right after a number belongs to it."""
    word = cur.peek()
    multiplier_only = raw.letters is None or raw.letters.lower() in ("k", "m")
    if raw.kind != "number" or not multiplier_only or raw.dollar or word is None or not _is_symbol_word(word):
        return
    if word.upper() in set(KNOWN_QUOTES) | set(units):
        raw.unit_word = word.upper()
        cur.take()


# ------------------------------------------------------------------------------------------- the parser


def _number_error(error: _NumberError, key: str, token: str, example: str) -> TradeParseError:
    if error.reason in ("ambiguous", "too_large", "too_precise"):
        reason = {"ambiguous": "ambiguous_number", "too_large": "too_large", "too_precise": "too_precise"}
        return TradeParseError(reason[error.reason], token=_echo(token), example=example)
    return TradeParseError(key, token=_echo(token), example=example)


def _examples(side: str, base: str) -> dict[str, str]:
    return {
        "market": f"/{side} {base} 100" if side == "buy" else f"/{side} {base} 50%",
        "limit": f"/{side} {base} 0.01 @ 60000",
        "protect": f"/buy {base} 100 sl 58000 tp 65000",
    }


def _resolve_amount(
    raw: _Raw, sym: SymbolRef, *, leading: bool, limit: bool, example: str
) -> tuple[Decimal | None, AmountUnit, SymbolRef]:
    """The amount's value and unit; a quote unit may switch the pair's default quote (`BTC 100 EUR`)."""
    if raw.error is not None:
        key = "bad_percent" if raw.kind == "percent" else "bad_amount"
        raise _number_error(raw.error, key, raw.token, example)
    if raw.kind == "all":
        return None, AmountUnit.ALL, sym
    assert raw.value is not None
    shift, unit = 0, raw.unit_word
    if raw.letters:
        found = _unit_of(raw.letters, (sym.base, sym.quote))
        if found is None:
            raise TradeParseError("bad_amount", token=_echo(raw.token), example=example)
        shift, attached = found
        if attached and unit:
            raise TradeParseError("bad_amount", token=_echo(raw.token), example=example)
        unit = attached or unit
    if raw.kind == "percent":
        if raw.value > 100 or shift:
            raise TradeParseError("bad_percent", token=_echo(raw.token), example=example)
        return raw.value, AmountUnit.PERCENT, sym
    try:
        value = _checked(_shift(raw.value, shift))
    except _NumberError as error:
        raise _number_error(error, "bad_amount", raw.token, example) from None
    if raw.dollar and unit:
        raise TradeParseError("bad_amount", token=_echo(raw.token), example=example)
    if raw.dollar:
        unit = "$"
    if unit is None:
        kind = AmountUnit.BASE if leading or limit else AmountUnit.QUOTE
    elif unit == sym.base:
        kind = AmountUnit.BASE
    elif unit == sym.quote or (unit in ("$", "USD") and sym.quote in USD_QUOTES):
        kind = AmountUnit.QUOTE
    elif unit in KNOWN_QUOTES and not sym.explicit_quote:
        sym, kind = replace(sym, quote=unit, explicit_quote=True), AmountUnit.QUOTE
    else:
        raise TradeParseError("unit_mismatch", unit=_echo(unit), base=sym.base, quote=sym.quote)
    if kind is AmountUnit.BASE and shift:
        raise TradeParseError("bad_amount", token=_echo(raw.token), example=example)
    return value, kind, sym


def _resolve_price(raw: _Raw, sym: SymbolRef, example: str) -> Decimal:
    if raw.error is not None:
        raise _number_error(raw.error, "bad_price", raw.token, example)
    if raw.kind != "number" or raw.value is None:
        raise TradeParseError("bad_price", token=_echo(raw.token), example=example)
    shift, unit = 0, raw.unit_word
    if raw.letters:
        found = _unit_of(raw.letters, (sym.base, sym.quote))
        if found is None or (found[1] and unit):
            raise TradeParseError("bad_price", token=_echo(raw.token), example=example)
        shift, unit = found[0], found[1] or unit
    if raw.dollar:
        if unit:
            raise TradeParseError("bad_price", token=_echo(raw.token), example=example)
        unit = "$"
    if unit is not None and unit != sym.quote and not (unit in ("$", "USD") and sym.quote in USD_QUOTES):
        raise TradeParseError("unit_mismatch", unit=_echo(unit), base=sym.base, quote=sym.quote)
    try:
        return _checked(_shift(raw.value, shift))
    except _NumberError as error:
        raise _number_error(error, "bad_price", raw.token, example) from None


def _read_price(cur: _Cursor, keyword: str, units: tuple[str, ...], example: str) -> _Raw:
    token = cur.peek()
    if token is None or token.lower() in KEYWORDS - ALL_WORDS:
        raise TradeParseError("missing_price", keyword=_echo(keyword), example=example)
    if not _is_value(token, units):
        raise TradeParseError("bad_price", token=_echo(token), example=example)
    raw = _lex(cur)
    if raw.error is not None:
        raise _number_error(raw.error, "bad_price", raw.token, example)
    _take_unit(cur, raw, units)
    return raw


def _amount_lex(cur: _Cursor, example: str) -> _Raw:
    raw = _lex(cur)
    if raw.error is not None:
        key = "bad_percent" if raw.kind == "percent" else "bad_amount"
        raise _number_error(raw.error, key, raw.token, example)
    return raw


def _parse_order(side: Side, tokens: list[str]) -> TradeRequest:
    cur = _Cursor(tokens)
    ex = _examples(side.value, "BTC")
    lead: _Raw | None = None
    first = cur.peek()
    if first is None:
        raise TradeParseError("missing_symbol", example=ex["market"])
    if _is_value(first, ()):
        lead = _amount_lex(cur, ex["market"])
        after, then = cur.peek(), cur.peek(1)
        if after and then and _is_symbol_word(after) and _is_symbol_word(then):
            _take_unit(cur, lead, ())  # `/buy 100 USDT BTC`
    token = cur.peek()
    if (token is None or token.lower() in KEYWORDS - ALL_WORDS) and lead is not None and lead.letters:
        found = _unit_of(lead.letters, ())  # `/buy 0.01btc`: the attached unit names the symbol
        token = found[1] if found else lead.letters
    else:
        cur.take()
    if token is None or token.lower() in KEYWORDS - ALL_WORDS:
        raise TradeParseError("missing_symbol", example=ex["market"])
    if _is_value(token, ()):  # only possible after a leading amount
        raise TradeParseError("too_many_numbers", token=_echo(token), example=ex["limit"])
    sym = parse_symbol(token)
    units = (sym.base, sym.quote)
    ex = _examples(side.value, sym.base)

    trail: _Raw | None = None
    nxt = cur.peek()
    if nxt is not None and _is_value(nxt, units):
        if lead is not None:
            raise TradeParseError("too_many_numbers", token=_echo(nxt), example=ex["limit"])
        trail = _amount_lex(cur, ex["market"])
        _take_unit(cur, trail, units)

    prices: dict[str, _Raw] = {}
    while (token := cur.take()) is not None:
        low = token.lower()
        slot = (
            "limit" if low in PRICE_WORDS else "sl" if low in SL_WORDS else "tp" if low in TP_WORDS else None
        )
        if slot is not None:
            example = ex["limit"] if slot == "limit" else ex["protect"]
            if slot in prices:
                raise TradeParseError("duplicate", token=_echo(token), example=example)
            prices[slot] = _read_price(cur, token, units, example)
        elif _is_value(token, units) and (lead or trail):
            raise TradeParseError("too_many_numbers", token=_echo(token), example=ex["limit"])
        else:
            raise TradeParseError("unexpected", token=_echo(token), example=ex["limit"])

    amount_raw = lead or trail
    if amount_raw is None:
        raise TradeParseError("missing_amount", example=ex["market"])
    limit = "limit" in prices
    amount, unit, sym = _resolve_amount(
        amount_raw, sym, leading=lead is not None, limit=limit, example=ex["limit" if limit else "market"]
    )
    if side is Side.BUY and unit in (AmountUnit.PERCENT, AmountUnit.ALL):
        raise TradeParseError("sell_only", token=_echo(amount_raw.token), example=ex["market"])
    if side is Side.SELL and ("sl" in prices or "tp" in prices):
        word = next(t for t in tokens if t.lower() in SL_WORDS | TP_WORDS)
        raise TradeParseError("protect_on_sell", token=_echo(word), example=ex["protect"])
    limit_price = _resolve_price(prices["limit"], sym, ex["limit"]) if limit else None
    stop_loss = _resolve_price(prices["sl"], sym, ex["protect"]) if "sl" in prices else None
    take_profit = _resolve_price(prices["tp"], sym, ex["protect"]) if "tp" in prices else None
    _check_protections(limit_price, stop_loss, take_profit, ex["protect"])
    return TradeRequest(
        kind=RequestKind.ORDER,
        side=side,
        symbol=sym.symbol,
        base=sym.base,
        quote=sym.quote,
        amount=amount,
        amount_unit=unit,
        order_type=OrderType.LIMIT if limit else OrderType.MARKET,
        limit_price=limit_price,
        stop_loss=stop_loss,
        take_profit=take_profit,
    )


def _plain(value: Decimal) -> str:
    return format(value, "f")


def _check_protections(
    price: Decimal | None, stop_loss: Decimal | None, take_profit: Decimal | None, example: str
) -> None:
    """For a buy: stop-loss below the limit price, take-profit above it, stop-loss below take-profit."""
    if price is not None and stop_loss is not None and stop_loss >= price:
        raise TradeParseError(
            "sl_above_price", stop_loss=_plain(stop_loss), price=_plain(price), example=example
        )
    if price is not None and take_profit is not None and take_profit <= price:
        raise TradeParseError(
            "tp_below_price", take_profit=_plain(take_profit), price=_plain(price), example=example
        )
    if stop_loss is not None and take_profit is not None and stop_loss >= take_profit:
        raise TradeParseError(
            "sl_above_tp", stop_loss=_plain(stop_loss), take_profit=_plain(take_profit), example=example
        )


def _symbol_at(cur: _Cursor, example: str) -> SymbolRef:
    token = cur.take()
    if token is None or token.lower() in KEYWORDS or _is_value(token, ()):
        raise TradeParseError("missing_symbol", example=example)
    return parse_symbol(token)


def _no_more(cur: _Cursor, example: str) -> None:
    token = cur.take()
    if token is not None:
        raise TradeParseError("unexpected", token=_echo(token), example=example)


def _parse_protect(which: Protection, tokens: list[str]) -> TradeRequest:
    command = "sl" if which is Protection.STOP_LOSS else "tp"
    cur = _Cursor(tokens)
    sym = _symbol_at(cur, f"/{command} BTC {58000 if command == 'sl' else 65000}")
    example = f"/{command} {sym.base} {58000 if command == 'sl' else 65000}"
    token = cur.peek()
    if token is None:
        raise TradeParseError("missing_price", keyword=f"/{command}", example=example)
    value: Decimal | None = None
    if token.lower() in OFF_WORDS:
        cur.take()
    else:
        value = _resolve_price(_read_price(cur, f"/{command}", (sym.base, sym.quote), example), sym, example)
    _no_more(cur, example)
    return TradeRequest(
        kind=RequestKind.PROTECT,
        symbol=sym.symbol,
        base=sym.base,
        quote=sym.quote,
        stop_loss=value if which is Protection.STOP_LOSS else None,
        take_profit=value if which is Protection.TAKE_PROFIT else None,
        protect=which,
    )


def _parse_close(tokens: list[str]) -> TradeRequest:
    cur = _Cursor(tokens)
    first = cur.peek()
    if first is None:
        raise TradeParseError("missing_target", example="/close BTC")
    if first.lower() == ALL:
        cur.take()
        _no_more(cur, "/close all")
        return TradeRequest(kind=RequestKind.CLOSE, target=ALL)
    sym = _symbol_at(cur, "/close BTC")
    _no_more(cur, f"/close {sym.base}")
    return TradeRequest(
        kind=RequestKind.CLOSE, symbol=sym.symbol, base=sym.base, quote=sym.quote, target=sym.symbol
    )


_ORDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-:.]{0,63}", re.ASCII)


def _parse_cancel(tokens: list[str]) -> TradeRequest:
    cur = _Cursor(tokens)
    token = cur.take()
    if token is None:
        raise TradeParseError("missing_target", example="/cancel 12345")
    if token.lower() == ALL:
        _no_more(cur, "/cancel all")
        return TradeRequest(kind=RequestKind.CANCEL, target=ALL)
    order_id = token.removeprefix("#")
    if not _ORDER_ID.fullmatch(order_id):
        raise TradeParseError("bad_order_id", token=_echo(token), example="/cancel 12345")
    _no_more(cur, "/cancel 12345")
    return TradeRequest(kind=RequestKind.CANCEL, target=order_id)


def parse_trade_command(command: str, args: str) -> TradeRequest:
    """Parse the text after /buy, /sell, /sl, /tp, /close or /cancel (`command` without or with the slash).

    Raises `TradeParseError` (a `services.errors.ValidationError`) and nothing else.
    """
    name = command.strip().lstrip("/").lower()
    if name not in COMMANDS:
        raise TradeParseError("unknown_command", command=_echo(command))
    tokens = _tokenize(args)
    if name in ("buy", "sell"):
        return _parse_order(Side(name), tokens)
    if name in ("sl", "tp"):
        return _parse_protect(Protection.STOP_LOSS if name == "sl" else Protection.TAKE_PROFIT, tokens)
    if name == "close":
        return _parse_close(tokens)
    return _parse_cancel(tokens)
