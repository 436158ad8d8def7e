"""The signal text format: what the bot posts to a leader's channel and what it reads from posts written by
hand. Pure logic, no I/O.

The family is the one traders know from signal channels::

    BTC/USDT LONG
    Entry 60000 - 61000
    TP 62500 64000
    SL 58500
    Size 5%

Reading is tolerant:

* case, emojis and line breaks do not matter; keycap digits (1️⃣) and enumerations (`1)`) are dropped;
* the pair: `BTC/USDT`, `BTC-USDT`, `BTC_USDT`, `BTCUSDT` (a stablecoin suffix), `#BTC`, `$BTC`, or a bare
  coin right next to the direction word (`BTC LONG`, `Long ETH`); a bare coin gets the USDT quote;
* the direction: `LONG` / `BUY` or `SHORT` / `SELL` (the first one written wins); `Buy zone` / `Sell zone`
  name the direction and start the entries;
* entries: `Entry 60000`, `Entry zone 60000 - 61000` or `60000 to 61000` (a range: two numbers joined by a
  dash or `to`), `Entries: 60000, 60500, 61000` (several); numbers right after the direction word are
  entries (`BTC/USDT LONG 60000`); `Entry: market` / `CMP` / no entry at all means at the market;
* targets: `TP 62500 64000`, `TP1: 62500 TP2: 64000`, `Targets: 62.5k, 64k`, `Take profit 62500`;
* stop: `SL 58500`, `SL 58.5K`, `Stop loss: 58500`, `Stop 58500`;
* `Leverage 10x`, `Lev 20`, `Cross 10x`, `Isolated`: read and ignored (spot has no leverage), flagged;
* `Size 5%` / `Risk 2%` / `Allocation 5%`: the size as a percentage of equity (0 < size <= 100);
* numbers as `parse_number` reads them with the `k`/`m` suffix (`62.5k`, `1,000`, `0,5`); `$60000` and
  `60000 USDT` too; a percentage after a target (`62500 (+2.5%)`) is ignored. Inside one token, commas
  separate several numbers (`62500,64000`) unless the token is a correctly grouped number (`60,000`) or a
  decimal comma that cannot be a list (`0,0345`).

A word that is none of the above ends the list of numbers it follows (`SL 58500 below support 57000` has
one stop), so prose around a signal does not leak into it.

On spot, SHORT is not a short sale: it means sell (exit) the coin, and a copy of it sells what the copy of
the followed entry bought. Its `side` is `sell`.

`parse_signal_post` returns None for a text that is not a signal (no pair, no direction, or no price at
all) and raises `SignalRejected` (a `ValidationError`, key `copy.signal.<reason>`) for a signal that
contradicts itself: a buy with its stop at or above the entry or a target at or below it (mirrored for a
sell), a stop beyond a target, a size outside 0-100 %, or too many numbers.

`render_signal` writes the canonical form above; parsing it gives back the same values.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from services.errors import ValidationError
from services.trading.parser import TradeParseError, parse_number, parse_symbol

__all__ = [
    "MAX_ENTRIES",
    "MAX_TARGETS",
    "REASONS",
    "ParsedSignal",
    "SignalRejected",
    "format_number",
    "parse_signal_post",
    "render_signal",
]

MAX_INPUT: Final = 4096
MAX_ENTRIES: Final = 10
MAX_TARGETS: Final = 10
HUNDRED: Final = Decimal(100)
STABLE_SUFFIXES: Final = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD")

REASONS: Final = (
    "stop_above_entry",  # buy: the stop is at or above the lowest entry
    "stop_below_entry",  # sell: the stop is at or below the highest entry
    "target_below_entry",  # buy: a target at or below the highest entry
    "target_above_entry",  # sell: a target at or above the lowest entry
    "stop_beyond_target",  # market entry: the stop is on the wrong side of a target
    "bad_size",  # size not in (0, 100] %
    "too_many_values",  # more than MAX_ENTRIES entries or MAX_TARGETS targets, or several stops
)
"""Every `copy.signal.<reason>` `SignalRejected` can carry; each needs a text in every locale."""


class SignalRejected(ValidationError):
    """A post that reads as a signal but contradicts itself; `message_key` is `copy.signal.<reason>`."""

    message_key = "copy.signal.invalid"

    def __init__(self, reason: str, /, **params: object) -> None:
        self.reason = reason
        super().__init__(f"copy.signal.{reason}", **params)


@dataclass(frozen=True, slots=True)
class ParsedSignal:
    """A signal. `side` is what a spot account does: buy for LONG, sell (exit) for SHORT.

    entries:      one price, a zone (`entry_is_range`: exactly two, low then high) or several prices;
                  empty means at the market.
    targets:      take-profit prices in the order written.
    stop:         stop-loss price, or None.
    leverage:     the leverage the post named (never used on spot); `leverage_ignored` says one was named.
    size_pct:     the size as a percentage of equity, or None.
    """

    symbol: str
    side: str  # buy | sell
    entries: tuple[Decimal, ...] = ()
    entry_is_range: bool = False
    targets: tuple[Decimal, ...] = ()
    stop: Decimal | None = None
    leverage: Decimal | None = None
    leverage_ignored: bool = False
    size_pct: Decimal | None = None

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/")[1]

    @property
    def direction(self) -> str:
        return "long" if self.side == "buy" else "short"

    @property
    def at_market(self) -> bool:
        return not self.entries

    @property
    def entry_price(self) -> Decimal | None:
        """One reference price: the middle of a zone, the mean of several entries, or the one entry."""
        if not self.entries:
            return None
        return sum(self.entries, Decimal(0)) / len(self.entries)


# ------------------------------------------------------------------------------------------- rendering


def format_number(value: Decimal) -> str:
    """Plain digits, no exponent, no trailing zeros (`62500`, `0.0345`)."""
    text = format(value.normalize(), "f")
    return text


def render_signal(signal: ParsedSignal, *, footer: Iterable[str] = ()) -> str:
    """The canonical text of a signal. Footer lines (the leader's name and record, a link) go last; any words
    in them end the lists above, so the text still parses back to the same signal."""
    lines = [f"{signal.symbol} {signal.direction.upper()}"]
    if signal.entries:
        joiner = " - " if signal.entry_is_range else " "
        lines.append("Entry " + joiner.join(format_number(v) for v in signal.entries))
    else:
        lines.append("Entry market")
    if signal.targets:
        lines.append("TP " + " ".join(format_number(v) for v in signal.targets))
    if signal.stop is not None:
        lines.append(f"SL {format_number(signal.stop)}")
    if signal.size_pct is not None:
        lines.append(f"Size {format_number(signal.size_pct)}%")
    if signal.leverage is not None:
        lines.append(f"Leverage {format_number(signal.leverage)}x (ignored on spot)")
    lines.extend(line for line in footer if line)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- reading

_KEYCAP = re.compile("[0-9#*]\ufe0f?\u20e3")
_PHRASES: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"\btake[\s_-]*profits?\b"), " tp "),
    (re.compile(r"\bstop[\s_-]*loss(?:es)?\b|\bstoploss\b"), " sl "),
    (re.compile(r"\b(?:tp|target|t)\s?[1-9]\s*(?:[:)=]|\.(?!\d))"), " tp "),
    (re.compile(r"\b(?:tp|target)[1-9]\b"), " tp "),
    (re.compile(r"\b(buy|sell)\s+(?:zone|range|area)\b"), r" \1 entry "),
    (re.compile(r"(?<![\w.])\d{1,2}\)"), " "),
)
_TOKEN = re.compile(
    r"""
    (?P<pair>(?=[a-z0-9]*[a-z])[a-z0-9]{1,20}[/_-](?=[a-z0-9]*[a-z])[a-z0-9]{1,20})
    |(?P<tag>[#$](?=[a-z0-9]*[a-z])[a-z0-9]{1,20})
    |(?P<lev>x\d{1,3}(?:\.\d+)?\b|\d{1,3}(?:\.\d+)?x\b)
    |(?P<num>\$?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:[km](?![a-z]))?(?:\s?%)?)
    |(?P<word>[a-z]+)
    |(?P<dash>-|~|–|—)
    """,
    re.VERBOSE,
)

LONG_WORDS: Final = frozenset({"long", "buy", "bullish"})
SHORT_WORDS: Final = frozenset({"short", "sell", "bearish"})
ENTRY_WORDS: Final = frozenset({"entry", "entries", "enter", "ep", "open", "opening"})
TARGET_WORDS: Final = frozenset({"tp", "tps", "target", "targets", "tgt", "tgts"})
STOP_WORDS: Final = frozenset({"sl", "stop", "stops", "invalidation"})
LEVERAGE_WORDS: Final = frozenset({"leverage", "lev", "cross", "isolated", "margin"})
SIZE_WORDS: Final = frozenset({"size", "risk", "allocation", "alloc", "position"})
MARKET_WORDS: Final = frozenset({"market", "cmp", "now"})
# Words that never end a list of numbers.
CONNECTORS: Final = frozenset(
    {
        "to", "and", "or", "at", "from", "zone", "range", "area", "price", "prices", "level", "levels",
        "usdt", "usd", "usdc", "around", "between", "only", "x", "is", "are", "of", "equity", "portfolio",
        "mode", "point", "points", "the", "a", "on", "per", "trade", "loss", "profit", "profits", "below",
        "above", "under", "over",
    }
)  # fmt: skip
# Words that are never a bare coin name.
STOPWORDS: Final = frozenset(
    {
        "signal", "signals", "new", "trade", "coin", "pair", "spot", "futures", "alert", "setup", "vip",
        "free", "call", "now", "market", "exchange", "binance", "bybit", "kucoin", "kraken", "okx", "update",
        "premium", "scalp", "swing", "term", "mid", "short", "long", "buy", "sell", "entry", "tp", "sl",
        "i", "we", "go", "going", "time", "my", "our", "this", "that", "it", "idea", "position",
    }
)  # fmt: skip
SECTION_OF: Final = {
    **{word: "entry" for word in ENTRY_WORDS},
    **{word: "target" for word in TARGET_WORDS},
    **{word: "stop" for word in STOP_WORDS},
    **{word: "leverage" for word in LEVERAGE_WORDS},
    **{word: "size" for word in SIZE_WORDS},
}
_GROUPED = re.compile(r"[1-9][0-9]{0,2}(?:,[0-9]{3})+(?:\.[0-9]+)?")


@dataclass
class _Token:
    kind: str
    text: str


@dataclass
class _Section:
    values: list[Decimal] = field(default_factory=list)
    dash_after_first: bool = False
    market: bool = False


def _normalise(text: str) -> str:
    text = _KEYCAP.sub(" ", text[:MAX_INPUT])
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("–", "-").replace("—", "-").replace("−", "-")
    text = "".join(c if (c.isascii() and (c.isalnum() or c in "./_-#$%,:~()=+\n ")) else " " for c in text)
    for pattern, replacement in _PHRASES:
        text = pattern.sub(replacement, text)
    return text


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        assert kind is not None
        found.append(_Token(kind, match.group(kind)))
    return found


def _numbers(token: str) -> list[Decimal] | None:
    """The numbers one token holds (several when commas separate a list), None when it reads as none."""
    text = token.strip().lstrip("$").rstrip(",")
    if not text:
        return None
    if "," in text and not _GROUPED.fullmatch(text.rstrip("km")):
        parts = [part for part in text.split(",") if part]
        if len(parts) > 1:
            values = [_number(part) for part in parts]
            if all(value is not None for value in values):
                return [value for value in values if value is not None]
    value = _number(text)
    return None if value is None else [value]


def _number(text: str) -> Decimal | None:
    try:
        return parse_number(text, allow_suffix=True)
    except TradeParseError:
        return None


def _symbol_from(text: str, *, bare: bool) -> str | None:
    candidate = text.lstrip("#$").upper()
    if bare and candidate.lower() in STOPWORDS | CONNECTORS | set(SECTION_OF) | MARKET_WORDS:
        return None
    try:
        ref = parse_symbol(candidate.replace("_", "/").replace("-", "/"))
    except TradeParseError:
        return None
    return ref.symbol


def _find_symbol(tokens: Sequence[_Token], direction_at: int) -> str | None:
    for token in tokens:
        if token.kind == "pair":
            base, _, quote = re.split(r"([/_-])", token.text, maxsplit=1)
            if base in STOPWORDS or quote in STOPWORDS or base in SECTION_OF or quote in SECTION_OF:
                continue
            symbol = _symbol_from(token.text, bare=False)
            if symbol is not None:
                return symbol
    for token in tokens:
        if token.kind == "word" and token.text.upper().endswith(STABLE_SUFFIXES):
            symbol = _symbol_from(token.text, bare=True)
            if symbol is not None and symbol.split("/")[1] in STABLE_SUFFIXES:
                return symbol
    for token in tokens:
        if token.kind == "tag":
            symbol = _symbol_from(token.text, bare=False)
            if symbol is not None:
                return symbol
    for index in (direction_at - 1, direction_at + 1):
        if 0 <= index < len(tokens) and tokens[index].kind == "word":
            symbol = _symbol_from(tokens[index].text, bare=True)
            if symbol is not None:
                return symbol
    return None


def parse_signal_post(text: str) -> ParsedSignal | None:
    """Read a signal from a post (see the module docstring). None: not a signal; `SignalRejected`: a signal
    that contradicts itself."""
    tokens = _tokens(_normalise(text))
    side: str | None = None
    direction_at = -1
    for index, token in enumerate(tokens):
        if token.kind == "word" and token.text in LONG_WORDS | SHORT_WORDS:
            side, direction_at = ("buy" if token.text in LONG_WORDS else "sell"), index
            break
    if side is None:
        return None
    symbol = _find_symbol(tokens, direction_at)
    if symbol is None:
        return None

    sections: dict[str, _Section] = {}
    leverage_named = False
    current: str | None = None
    for index, token in enumerate(tokens):
        if token.kind == "word":
            word = token.text
            if index == direction_at:
                current = "entry"
                sections.setdefault(current, _Section())
            elif word in SECTION_OF:
                current = SECTION_OF[word]
                sections.setdefault(current, _Section())
                leverage_named = leverage_named or current == "leverage"
            elif current == "entry" and word in MARKET_WORDS:
                sections["entry"].market = True
            elif word in CONNECTORS or word in LONG_WORDS | SHORT_WORDS:
                if word == "to" and current == "entry" and len(sections["entry"].values) == 1:
                    sections["entry"].dash_after_first = True
            elif current is not None and (sections[current].values or sections[current].market):
                current = None
            elif current is not None and _symbol_from(word, bare=True) == symbol:
                continue
            elif current is not None:
                current = None
        elif token.kind == "dash":
            if current == "entry" and len(sections["entry"].values) == 1:
                sections["entry"].dash_after_first = True
        elif token.kind == "lev":
            leverage_named = True
            if current == "leverage" or "leverage" not in sections:
                section = sections.setdefault("leverage", _Section())
                value = _number(token.text.strip("x"))
                if value is not None and not section.values:
                    section.values.append(value)
            if current == "leverage":
                current = None
        elif token.kind == "num" and current is not None:
            is_pct = token.text.rstrip().endswith("%")
            if is_pct and current not in ("size", "leverage"):
                continue
            values = _numbers(token.text.rstrip("% "))
            if values is None:
                current = None
                continue
            section = sections[current]
            if current in ("size", "leverage") and section.values:
                current = None
                continue
            section.values.extend(values)
            if current == "leverage":
                current = None
        elif token.kind in ("pair", "tag") and current is not None and sections[current].values:
            current = None

    entry = sections.get("entry", _Section())
    targets = tuple(sections.get("target", _Section()).values)
    stops = sections.get("stop", _Section()).values
    size_values = sections.get("size", _Section()).values
    leverage_values = sections.get("leverage", _Section()).values
    if not (entry.values or targets or stops):
        return None
    entries = tuple(entry.values)
    is_range = len(entries) == 2 and entry.dash_after_first
    if is_range:
        entries = (min(entries), max(entries))
    if len(entries) > MAX_ENTRIES or len(targets) > MAX_TARGETS or len(stops) > 1:
        raise SignalRejected("too_many_values", symbol=symbol)
    size = size_values[0] if size_values else None
    if size is not None and not (0 < size <= HUNDRED):
        raise SignalRejected("bad_size", symbol=symbol, size=size)
    signal = ParsedSignal(
        symbol=symbol,
        side=side,
        entries=entries,
        entry_is_range=is_range,
        targets=targets,
        stop=stops[0] if stops else None,
        leverage=leverage_values[0] if leverage_values else None,
        leverage_ignored=leverage_named,
        size_pct=size,
    )
    check_signal(signal)
    return signal


def check_signal(signal: ParsedSignal) -> None:
    """Refuse a signal that contradicts itself (see `REASONS`)."""
    stop, targets, entries = signal.stop, signal.targets, signal.entries
    buy = signal.side == "buy"
    if entries:
        low, high = min(entries), max(entries)
        if stop is not None and (stop >= low if buy else stop <= high):
            reason = "stop_above_entry" if buy else "stop_below_entry"
            raise SignalRejected(reason, symbol=signal.symbol, stop=stop, entry=low if buy else high)
        for target in targets:
            if target <= high if buy else target >= low:
                reason = "target_below_entry" if buy else "target_above_entry"
                raise SignalRejected(reason, symbol=signal.symbol, target=target, entry=high if buy else low)
    elif stop is not None:
        for target in targets:
            if target <= stop if buy else target >= stop:
                raise SignalRejected("stop_beyond_target", symbol=signal.symbol, stop=stop, target=target)
