"""Free text, typed or transcribed, -> an `Intent`: a bot command, a question with buttons, or nothing.

One parser serves voice and text. Typed commands (`/buy BTC 100`) pass through unchanged. Phrases map to
the bot's commands with their arguments:

    buy a hundred dollars of bitcoin              -> /buy BTC 100
    buy zero point one bitcoin at market          -> /buy 0.1 BTC
    buy 0.1 eth at 3000 with stop loss at 2800    -> /buy 0.1 ETH @ 3000 sl 2800
    sell half my ethereum                         -> /sell ETH 50%
    what's my balance / show my positions         -> /balance, /positions
    signal for solana                             -> /signal SOL
    analyze ETH on the four hour chart            -> /analyze ETH 4h
    set an alert when bitcoin goes above 70k      -> /alert BTC > 70000
    close everything                              -> /close all
    купи биткоин на сто долларов                  -> /buy BTC 100
    vende la mitad de mi ethereum                 -> /sell ETH 50%

Nothing here executes anything: commands that move money (`moves_money`) go to the same confirmation
card as typed ones. When a phrase leaves a choice open (no amount, no coin, "bitcoin" alone, an alert
price without a direction) the result is a question with options instead of a guess; each option's
`text` goes back through `parse_intent` when chosen. Every trading command produced here is checked
with `services.trading.parser.parse_trade_command`; one it would refuse is reported, never returned.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Final

from services.intents import lexicon as lx
from services.intents.numbers import read_number
from services.trading.parser import MAX_DECIMALS, MAX_VALUE, TradeParseError, parse_trade_command

__all__ = [
    "MONEY_COMMANDS",
    "TRADE_COMMANDS",
    "Intent",
    "IntentKind",
    "IntentOption",
    "parse_intent",
]

MONEY_COMMANDS: Final = frozenset({"buy", "sell", "close", "sl", "tp", "cancel", "panic"})
"""Commands that move money or change orders: never run without the confirmation card."""
TRADE_COMMANDS: Final = frozenset({"buy", "sell", "close", "sl", "tp", "cancel"})
"""Commands read by `parse_trade_command`."""
BUY_AMOUNTS: Final = (Decimal(25), Decimal(50), Decimal(100), Decimal(250))
SELL_PERCENTS: Final = (Decimal(25), Decimal(50))
MAX_TEXT: Final = 500


class IntentKind(StrEnum):
    COMMAND = "command"  # `command` is what to run
    CLARIFY = "clarify"  # ask `message_key` and offer `options`
    UNKNOWN = "unknown"  # say `message_key` (intent.unknown, intent.negated or a trade.parse.* reason)


@dataclass(frozen=True, slots=True)
class IntentOption:
    """A button: `label_key` with `params` is its caption; `text` goes back through `parse_intent`."""

    label_key: str
    text: str
    params: Mapping[str, str] = field(default_factory=dict)
    moves_money: bool = False


@dataclass(frozen=True, slots=True)
class Intent:
    kind: IntentKind
    command: str | None = None
    moves_money: bool = False
    message_key: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    options: tuple[IntentOption, ...] = ()
    language: str = "en"

    @property
    def question_key(self) -> str | None:
        return self.message_key if self.kind is IntentKind.CLARIFY else None

    @property
    def command_name(self) -> str | None:
        """`buy` for `/buy BTC 100`."""
        if not self.command:
            return None
        return self.command.split(maxsplit=1)[0].lstrip("/").split("@", 1)[0].lower()

    @property
    def command_args(self) -> str:
        parts = (self.command or "").split(maxsplit=1)
        return parts[1] if len(parts) > 1 else ""


# ------------------------------------------------------------------------------------------------ tokens


@dataclass(slots=True)
class _Tok:
    kind: str  # num | coin | tf | concept | word
    text: str
    value: Decimal | None = None
    coin: str | None = None
    tf: str | None = None  # a valid timeframe, or "" for one /analyze does not offer
    concept: str | None = None


def _fold(word: str) -> str:
    return word.replace("ё", "е")


def _phrase_table(table: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    return {tuple(_fold(k).split()): v for k, v in table.items()}


_CONCEPTS: Final = {lang: _phrase_table(table) for lang, table in lx.CONCEPTS.items()}
_COIN_PHRASES: Final = {tuple(_fold(name).split()): t for t, names in lx.COINS.items() for name in names}
_STANDALONE_TF: Final = _phrase_table(lx.STANDALONE_TIMEFRAMES)
_PHRASE_LEN: Final = 5
_TF_TOKEN = re.compile(r"(\d{1,2})(m|min|h|hr|d)|([mhd])(\d{1,2})")
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
_SPANISH_LETTERS = re.compile(r"[ñ¿¡áéíóú]", re.IGNORECASE)
_UPPER_TICKER = re.compile(r"[A-Z][A-Z0-9]{1,9}")
_FUZZY_WORD = re.compile(r"[a-zа-я]{5,}")
_TIME_UNITS: Final = {lx.HOUR: "h", lx.MINUTE: "m", lx.DAY: "d"}


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("’", "'").replace("‘", "'")
    number = r"(\d[\d,]*(?:\.\d+)?k?|\.\d+)"
    text = re.sub(r"\$\s*" + number, r" \1 dollars ", text)
    text = re.sub(number + r"\s*\$", r" \1 dollars ", text)
    text = re.sub(r"€\s*" + number, r" \1 euros ", text)
    text = re.sub(number + r"\s*€", r" \1 euros ", text)
    text = re.sub(r"(\d)\s*%", r"\1 percent ", text)
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)
    text = re.sub(r"(?<=\d),(?=\d)", ".", text)
    text = re.sub(r"(?<=\w)-(?=\w)", " ", text)
    text = text.replace("&", " and ").replace("@", " @ ")
    text = re.sub(r"(?<=[^\W\d_])'s\b", "", text)
    text = text.replace("'", "")
    text = re.sub(r"[^\w.@]+", " ", text)
    return re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)


def _language(words: Sequence[str], locale: str) -> str:
    joined = " ".join(words)
    if _CYRILLIC.search(joined):
        return "ru"
    if locale == "es" or _SPANISH_LETTERS.search(joined):
        return "es"
    hits = sum(1 for w in words if w in lx.SPANISH_MARKERS)
    return "es" if hits >= 2 else "en"


def _match(table: Mapping[tuple[str, ...], str], low: Sequence[str], i: int) -> tuple[str, int] | None:
    for size in range(min(_PHRASE_LEN, len(low) - i), 0, -1):
        found = table.get(tuple(low[i : i + size]))
        if found is not None:
            return found, size
    return None


def _prefix_timeframe(word: str) -> str | None:
    for prefix, tf in lx.PREFIX_TIMEFRAMES:
        if word.startswith(prefix):
            return tf
    return None


def _time_unit(word: str | None, concepts: Mapping[tuple[str, ...], str]) -> str | None:
    if word is None:
        return None
    concept = concepts.get((word,))
    if concept in _TIME_UNITS:
        return _TIME_UNITS[concept]
    for prefix, unit in lx.RU_TIME_UNITS:
        if word.startswith(prefix):
            return _TIME_UNITS[unit]
    return None


def _timeframe(count: Decimal, unit: str) -> str:
    if count != count.to_integral_value() or count <= 0:
        return ""
    tf = f"{int(count)}{unit}"
    return tf if tf in lx.TIMEFRAMES else ""


def _coin_word(original: str, low: str, *, capitals: bool) -> str | None:
    """The ticker a word names: a known name or ticker, a near miss of a long name, or (when `capitals`)
    any other word written in capitals (`WIF`)."""
    found = _COIN_PHRASES.get((low,))
    if found is not None:
        return found
    if low.endswith("s") and (found := _COIN_PHRASES.get((low[:-1],))) is not None:
        return found
    if _FUZZY_WORD.fullmatch(low):
        close = difflib.get_close_matches(low, lx.FUZZY_NAMES, n=1, cutoff=0.8)
        if close:
            return _COIN_PHRASES[(close[0],)]
    if capitals and _UPPER_TICKER.fullmatch(original) and original not in lx.NOT_TICKERS:
        return original
    return None


def _scan(text: str, locale: str) -> tuple[str, list[_Tok]]:
    originals = _clean(text).split()
    low = [_fold(w.lower()) for w in originals]
    lang = _language(low, locale)
    lettered = [w for w in originals if any(c.isalpha() for c in w)]
    shouting = sum(w.isupper() for w in lettered) * 2 > len(lettered)  # capitals mean nothing then
    concepts = _CONCEPTS.get(lang, _CONCEPTS["en"])
    toks: list[_Tok] = []
    i, n = 0, len(low)
    while i < n:
        word = low[i]
        if (tf := _match(_STANDALONE_TF, low, i)) is not None:
            toks.append(_Tok("tf", word, tf=tf[0]))
            i += tf[1]
            continue
        coin = _match(_COIN_PHRASES, low, i)
        if coin is not None and coin[1] > 1:
            toks.append(_Tok("coin", word, coin=coin[0]))
            i += coin[1]
            continue
        number = read_number(low, i, lang) or (read_number(low, i, "en") if lang != "en" else None)
        if number is not None:
            value, used = number
            unit = _time_unit(low[i + used] if i + used < n else None, concepts)
            if unit is not None:
                toks.append(_Tok("tf", word, tf=_timeframe(value, unit)))
                i += used + 1
            else:
                toks.append(_Tok("num", word, value=value))
                i += used
            continue
        if (match := _TF_TOKEN.fullmatch(word)) is not None:
            count, unit = (match[1], match[2]) if match[1] else (match[4], match[3])
            toks.append(_Tok("tf", word, tf=_timeframe(Decimal(count), unit[0])))
            i += 1
            continue
        if i == 0 and word in ("by", "bye", "bae") and n > 1:
            toks.append(_Tok("concept", word, concept=lx.BUY))
            i += 1
            continue
        if i == 0 and word == "cell" and n > 1:
            toks.append(_Tok("concept", word, concept=lx.SELL))
            i += 1
            continue
        concept = _match(concepts, low, i)
        if concept is not None:
            toks.append(_Tok("concept", word, concept=concept[0]))
            i += concept[1]
            continue
        ticker = _coin_word(originals[i], word, capitals=not shouting)
        if ticker is not None:
            toks.append(_Tok("coin", word, coin=ticker))
            i += 1
            continue
        if (tf_word := _prefix_timeframe(word)) is not None:
            toks.append(_Tok("tf", word, tf=tf_word))
            i += 1
            continue
        toks.append(_Tok("word", word))
        i += 1
    return lang, toks


# ------------------------------------------------------------------------------------------------- slots

QUOTE, BASE, PERCENT_AMOUNT, ALL_AMOUNT, BARE = "quote", "base", "percent", "all", "bare"


@dataclass(slots=True)
class _Amount:
    unit: str  # quote | base | percent | all | bare
    value: Decimal | None = None
    currency: str = "USDT"  # quote amounts: USDT (dollars) or EUR
    before_coin: bool = False  # a bare number said before the coin (`buy 100 doge`)


@dataclass(slots=True)
class _Slots:
    concepts: list[str] = field(default_factory=list)
    coins: list[str] = field(default_factory=list)
    amounts: list[_Amount] = field(default_factory=list)
    limit: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    above: Decimal | None = None
    below: Decimal | None = None
    reach: Decimal | None = None
    move: Decimal | None = None  # signed percentage for /alert SYMBOL +5%
    timeframe: str | None = None
    numbers: list[Decimal] = field(default_factory=list)

    def has(self, *concepts: str) -> bool:
        return any(c in self.concepts for c in concepts)

    def first(self, *concepts: str) -> int:
        return min((self.concepts.index(c) for c in concepts if c in self.concepts), default=-1)


def _preceding(toks: Sequence[_Tok], k: int) -> list[str]:
    """Concepts right before token k (nearest first), skipping filler words, at most three."""
    chain: list[str] = []
    j = k - 1
    while j >= 0 and len(chain) < 3:
        tok = toks[j]
        if tok.kind == "concept" and tok.concept is not None:
            if tok.concept in (lx.OF, lx.FOR) and chain:
                break
            chain.append(tok.concept)
        elif tok.kind != "word":
            break
        j -= 1
    return chain


def _next(toks: Sequence[_Tok], k: int) -> _Tok | None:
    return toks[k + 1] if k + 1 < len(toks) else None


def _coin_after(toks: Sequence[_Tok], k: int) -> str | None:
    """A coin right after token k, allowing `of` / `my` between (`0.1 of my bitcoin`)."""
    j = k + 1
    while j < len(toks) and j <= k + 3:
        tok = toks[j]
        if tok.kind == "coin":
            return tok.coin
        if not (tok.kind == "word" or (tok.kind == "concept" and tok.concept == lx.OF)):
            return None
        j += 1
    return None


def _slots(toks: list[_Tok]) -> _Slots:
    slots = _Slots()
    used: set[int] = set()
    seen_coin = False
    for k, tok in enumerate(toks):
        if tok.kind == "coin" and tok.coin is not None:
            if tok.coin not in slots.coins:
                slots.coins.append(tok.coin)
            seen_coin = True
        elif tok.kind == "tf" and slots.timeframe is None:
            slots.timeframe = tok.tf
        elif tok.kind == "concept" and tok.concept is not None:
            slots.concepts.append(tok.concept)
            if k in used:
                continue
            if tok.concept == lx.HALF:
                slots.amounts.append(_Amount(PERCENT_AMOUNT, Decimal(50)))
            elif tok.concept == lx.QUARTER:
                slots.amounts.append(_Amount(PERCENT_AMOUNT, Decimal(25)))
            elif tok.concept == lx.ALL:
                slots.amounts.append(_Amount(ALL_AMOUNT))
        elif tok.kind == "num" and tok.value is not None:
            value = tok.value
            slots.numbers.append(value)
            before = _preceding(toks, k)
            nxt = _next(toks, k)
            nxt_concept = nxt.concept if nxt is not None and nxt.kind == "concept" else None
            if nxt_concept == lx.PERCENT:
                if lx.RISE in before or lx.ABOVE in before:
                    slots.move = value
                elif lx.FALL in before or lx.BELOW in before:
                    slots.move = -value
                else:
                    slots.amounts.append(_Amount(PERCENT_AMOUNT, value))
            elif before and before[0] == lx.AT and lx.STOP in before[1:]:
                slots.stop_loss = value
            elif before and before[0] == lx.AT and lx.PROFIT in before[1:]:
                slots.take_profit = value
            elif before and before[0] == lx.STOP:
                slots.stop_loss = value
            elif before and before[0] == lx.PROFIT:
                slots.take_profit = value
            elif before and before[0] == lx.AT and nxt_concept != lx.MARKET:
                slots.limit = value
            elif before and before[0] in (lx.ABOVE, lx.RISE):
                slots.above = value
            elif before and before[0] in (lx.BELOW, lx.FALL):
                slots.below = value
            elif before and before[0] == lx.REACH:
                slots.reach = value
            elif nxt_concept in (lx.USD, lx.EUR):
                currency = "EUR" if nxt_concept == lx.EUR else "USDT"
                slots.amounts.append(_Amount(QUOTE, value, currency))
            elif nxt_concept == lx.QUARTER:
                slots.amounts.append(_Amount(PERCENT_AMOUNT, value * 25))
                used.add(k + 1)
            elif _coin_after(toks, k) is not None:
                slots.amounts.append(_Amount(BASE, value))
            elif before and before[0] == lx.FOR:
                slots.amounts.append(_Amount(QUOTE, value))
            else:
                slots.amounts.append(_Amount(BARE, value, before_coin=not seen_coin))
    return slots


# ------------------------------------------------------------------------------------------------ output


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _valid_number(value: Decimal | None) -> bool:
    if value is None or not value.is_finite() or value <= 0 or value > MAX_VALUE:
        return False
    exponent = value.normalize().as_tuple().exponent
    return not (isinstance(exponent, int) and -exponent > MAX_DECIMALS)


def _command(command: str, language: str) -> Intent:
    name = command.split(maxsplit=1)[0].lstrip("/")
    if name in TRADE_COMMANDS:
        try:
            parse_trade_command(name, command.split(maxsplit=1)[1] if " " in command else "")
        except TradeParseError as error:
            params = {k: str(v) for k, v in error.params.items()}
            return Intent(IntentKind.UNKNOWN, message_key=error.message_key, params=params, language=language)
    return Intent(IntentKind.COMMAND, command=command, moves_money=name in MONEY_COMMANDS, language=language)


def _parses(text: str) -> bool:
    """False for a trade command `parse_trade_command` refuses; True for anything else."""
    name, _, args = text.partition(" ")
    if not name.startswith("/") or name[1:] not in TRADE_COMMANDS:
        return True
    try:
        parse_trade_command(name, args)
    except TradeParseError:
        return False
    return True


def _ask(key: str, options: Sequence[IntentOption], language: str, **params: str) -> Intent:
    offered = tuple(o for o in options if _parses(o.text))
    if options and not offered:
        return _unknown(language)
    return Intent(
        IntentKind.CLARIFY,
        moves_money=any(o.moves_money for o in offered),
        message_key=key,
        params=params,
        options=offered,
        language=language,
    )


def _unknown(language: str, key: str = "intent.unknown") -> Intent:
    return Intent(IntentKind.UNKNOWN, message_key=key, language=language)


def _option(label_key: str, text: str, **params: str) -> IntentOption:
    name = text.split(maxsplit=1)[0].lstrip("/") if text.startswith("/") else ""
    return IntentOption(label_key, text, params, moves_money=name in MONEY_COMMANDS)


def _order_text(side: str, coin: str, amount: _Amount, s: _Slots) -> str:
    value = _fmt(amount.value) if amount.value is not None else ""
    limit = f" @ {_fmt(s.limit)}" if s.limit is not None else ""
    if amount.unit == QUOTE:
        unit = f" {amount.currency}" if s.limit is not None or amount.currency != "USDT" else ""
        text = f"/{side} {coin} {value}{unit}{limit}"
    elif amount.unit == BASE:
        text = f"/{side} {value} {coin}{limit}"
    elif amount.unit == PERCENT_AMOUNT:
        text = f"/{side} {coin} {value}%{limit}"
    else:
        text = f"/{side} {coin} all{limit}"
    if side == "buy":
        if s.stop_loss is not None:
            text += f" sl {_fmt(s.stop_loss)}"
        if s.take_profit is not None:
            text += f" tp {_fmt(s.take_profit)}"
    return text


def _which_coin(s: _Slots, language: str, make: str, label: str = "intent.option.coin") -> Intent:
    coins = s.coins if len(s.coins) > 1 else list(lx.DEFAULT_COINS)
    options = [_option(label, make.format(coin=c), symbol=c) for c in coins]
    return _ask("intent.clarify.which_coin", options, language)


def _amount_fits(amount: _Amount) -> bool:
    if amount.unit == ALL_AMOUNT:
        return True
    if not _valid_number(amount.value):
        return False
    return amount.unit != PERCENT_AMOUNT or (amount.value is not None and amount.value <= 100)


def _order(side: str, s: _Slots, language: str) -> Intent:
    amounts = [a for a in s.amounts if side == "sell" or a.unit not in (PERCENT_AMOUNT, ALL_AMOUNT)]
    if side == "sell" and (s.stop_loss is not None or s.take_profit is not None):
        return _unknown(language)
    if len(s.coins) != 1:
        if side == "sell" and not s.coins and any(a.unit == ALL_AMOUNT for a in amounts):
            return _ask(
                "intent.clarify.close_what",
                [
                    _option("intent.option.close_all", "/close all"),
                    _option("intent.option.positions", "/positions"),
                ],
                language,
            )
        if len(amounts) == 1 and _amount_fits(amounts[0]):
            amount = amounts[0]
            if amount.unit == BARE:
                amount = _Amount(QUOTE, amount.value)
            coins = s.coins if len(s.coins) > 1 else list(lx.DEFAULT_COINS)
            options = [
                _option("intent.option.coin", _order_text(side, c, amount, s), symbol=c) for c in coins
            ]
            return _ask("intent.clarify.which_coin", options, language)
        return _which_coin(s, language, f"{side} {{coin}}", "intent.option.coin")
    coin = s.coins[0]
    if len(amounts) != 1 or not _amount_fits(amounts[0]):
        if side == "buy":
            base = _Slots(limit=s.limit, stop_loss=s.stop_loss, take_profit=s.take_profit)
            options = [
                _option(
                    "intent.option.usd", _order_text("buy", coin, _Amount(QUOTE, v), base), amount=_fmt(v)
                )
                for v in BUY_AMOUNTS
            ]
            return _ask("intent.clarify.buy_amount", options, language, symbol=coin)
        options = [
            _option("intent.option.percent", f"/sell {coin} {_fmt(p)}%", percent=_fmt(p))
            for p in SELL_PERCENTS
        ]
        options.append(_option("intent.option.all", f"/sell {coin} all"))
        return _ask("intent.clarify.sell_amount", options, language, symbol=coin)
    amount = amounts[0]
    if amount.unit == BARE:
        if amount.before_coin:
            amount = _Amount(BASE, amount.value)
        else:
            assert amount.value is not None
            shown = _fmt(amount.value)
            options = [
                _option(
                    "intent.option.usd",
                    _order_text(side, coin, _Amount(QUOTE, amount.value), s),
                    amount=shown,
                ),
                _option(
                    "intent.option.base",
                    _order_text(side, coin, _Amount(BASE, amount.value), s),
                    amount=shown,
                    symbol=coin,
                ),
            ]
            return _ask("intent.clarify.amount_unit", options, language, symbol=coin, amount=shown)
    return _command(_order_text(side, coin, amount, s), language)


def _close(s: _Slots, language: str) -> Intent:
    if len(s.coins) == 1:
        return _command(f"/close {s.coins[0]}", language)
    if not s.coins and any(a.unit == ALL_AMOUNT for a in s.amounts):
        return _command("/close all", language)
    if len(s.coins) > 1:
        return _which_coin(s, language, "/close {coin}")
    return _ask(
        "intent.clarify.close_what",
        [_option("intent.option.close_all", "/close all"), _option("intent.option.positions", "/positions")],
        language,
    )


def _protect(s: _Slots, language: str) -> Intent:
    if s.has(lx.STOP) and s.has(lx.PROFIT):
        return _unknown(language)
    command = "sl" if s.has(lx.STOP) else "tp"
    if len(s.coins) != 1:
        return _which_coin(s, language, f"{command} {{coin}}")
    coin = s.coins[0]
    if s.has(lx.OFF, lx.CANCEL):
        return _command(f"/{command} {coin} off", language)
    price = s.stop_loss if command == "sl" else s.take_profit
    bare = [a.value for a in s.amounts if a.unit in (BARE, QUOTE)]
    price = price or s.limit or (bare[0] if len(bare) == 1 else None)
    if not _valid_number(price):
        return _ask(
            "intent.clarify.protect_price", [], language, symbol=coin, example=f"/{command} {coin} 60000"
        )
    assert price is not None
    return _command(f"/{command} {coin} {_fmt(price)}", language)


def _cancel(s: _Slots, language: str) -> Intent:
    if any(a.unit == ALL_AMOUNT for a in s.amounts):
        return _command("/cancel all", language)
    ids = [v for v in s.numbers if v == v.to_integral_value() and v > 0]
    if len(ids) == 1:
        return _command(f"/cancel {int(ids[0])}", language)
    return _unknown(language)


def _alert(s: _Slots, language: str) -> Intent:
    if len(s.coins) != 1:
        return _which_coin(s, language, "alert {coin}")
    coin = s.coins[0]
    if s.move is not None and _valid_number(abs(s.move)) and abs(s.move) <= 1000:
        sign = "+" if s.move > 0 else "-"
        return _command(f"/alert {coin} {sign}{_fmt(abs(s.move))}%", language)
    if _valid_number(s.above):
        assert s.above is not None
        return _command(f"/alert {coin} > {_fmt(s.above)}", language)
    if _valid_number(s.below):
        assert s.below is not None
        return _command(f"/alert {coin} < {_fmt(s.below)}", language)
    bare = [a.value for a in s.amounts if a.unit in (BARE, QUOTE) and a.value is not None]
    price = (
        s.reach if s.reach is not None else s.limit if s.limit is not None else (bare[0] if bare else None)
    )
    if _valid_number(price):
        assert price is not None
        shown = _fmt(price)
        options = [
            _option("intent.option.above", f"/alert {coin} > {shown}", price=shown),
            _option("intent.option.below", f"/alert {coin} < {shown}", price=shown),
        ]
        return _ask("intent.clarify.alert_direction", options, language, symbol=coin, price=shown)
    return _ask("intent.clarify.alert_price", [], language, symbol=coin, example=f"/alert {coin} > 70000")


def _analyze(s: _Slots, language: str) -> Intent:
    suffix = f" {s.timeframe}" if s.timeframe else ""
    if len(s.coins) != 1:
        return _which_coin(s, language, "/analyze {coin}" + suffix, "intent.option.analyze")
    coin = s.coins[0]
    if s.timeframe == "":
        options = [
            _option("intent.option.timeframe", f"/analyze {coin} {tf}", timeframe=tf)
            for tf in ("1h", "4h", "1d")
        ]
        return _ask("intent.clarify.timeframe", options, language, symbol=coin)
    return _command(f"/analyze {coin}{suffix}", language)


def _signal(s: _Slots, language: str) -> Intent:
    if len(s.coins) != 1:
        return _which_coin(s, language, "/signal {coin}", "intent.option.signal")
    return _command(f"/signal {s.coins[0]}", language)


def _decide(s: _Slots, language: str) -> Intent:
    actions = (lx.BUY, lx.SELL, lx.CLOSE, lx.CANCEL, lx.STOP, lx.PROFIT, lx.ALERT)
    neg = s.first(lx.NEG)
    if neg >= 0 and any(i > neg for i in (s.first(a) for a in actions) if i >= 0):
        return _unknown(language, "intent.negated")
    if s.has(lx.SHOULD) and s.has(lx.BUY, lx.SELL):
        return _signal(s, language)
    thresholds = s.above is not None or s.below is not None or s.reach is not None or s.move is not None
    if s.has(lx.ALERT) or (thresholds and not s.has(lx.BUY, lx.SELL, lx.STOP, lx.PROFIT, lx.CLOSE)):
        return _alert(s, language)
    if s.has(lx.STOP, lx.PROFIT) and not s.has(lx.BUY, lx.SELL):
        return _protect(s, language)
    if s.has(lx.CANCEL):
        return _cancel(s, language)
    if s.has(lx.CLOSE):
        return _close(s, language)
    if s.has(lx.BUY) and s.has(lx.SELL):
        coin = s.coins[0] if len(s.coins) == 1 else None
        if coin is None:
            return _unknown(language)
        options = [
            _option("intent.option.buy", f"buy {coin}", symbol=coin),
            _option("intent.option.sell", f"sell {coin}", symbol=coin),
        ]
        return _ask("intent.clarify.side", options, language, symbol=coin)
    if s.has(lx.BUY):
        return _order("buy", s, language)
    if s.has(lx.SELL):
        return _order("sell", s, language)
    if s.has(lx.SIGNAL):
        return _signal(s, language)
    if s.has(lx.ANALYZE, lx.CHART) or (s.timeframe is not None and not s.has(lx.BALANCE, lx.POSITIONS)):
        return _analyze(s, language)
    for concept, command in (
        (lx.BALANCE, "/balance"),
        (lx.POSITIONS, "/positions"),
        (lx.PNL, "/pnl"),
        (lx.ORDERS, "/orders"),
    ):
        if s.has(concept):
            return _command(command, language)
    if s.coins and s.has(lx.HOW):
        return _analyze(s, language)
    if len(s.coins) == 1:
        coin = s.coins[0]
        if s.amounts:
            options = [
                _option("intent.option.buy", f"buy {coin}", symbol=coin),
                _option("intent.option.sell", f"sell {coin}", symbol=coin),
            ]
            return _ask("intent.clarify.side", options, language, symbol=coin)
        options = [
            _option("intent.option.analyze", f"/analyze {coin}", symbol=coin),
            _option("intent.option.buy", f"buy {coin}", symbol=coin),
            _option("intent.option.signal", f"/signal {coin}", symbol=coin),
        ]
        return _ask("intent.clarify.coin_action", options, language, symbol=coin)
    return _unknown(language)


def parse_intent(text: str, locale: str = "en") -> Intent:
    """What the user asked for. `locale` is the user's language (a hint; the text decides)."""
    stripped = " ".join(text.split())
    if stripped.startswith("/"):
        name = stripped.split(maxsplit=1)[0].lstrip("/").split("@", 1)[0].lower()
        return Intent(
            IntentKind.COMMAND, command=stripped, moves_money=name in MONEY_COMMANDS, language=locale
        )
    if not stripped or len(stripped) > MAX_TEXT:
        return _unknown(locale)
    language, toks = _scan(stripped, locale)
    return _decide(_slots(toks), language)
