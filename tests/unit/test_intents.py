"""Free text -> intents: a table of phrases, number words, and round trips through the trade parser."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.intents import IntentKind, parse_intent, words_to_number
from services.intents.lexicon import TIMEFRAMES
from services.trading.parser import AmountUnit, RequestKind, parse_trade_command

D = Decimal

COMMANDS = [
    # the phrases
    ("buy a hundred dollars of bitcoin", "/buy BTC 100"),
    ("buy zero point one bitcoin at market", "/buy 0.1 BTC"),
    ("sell half my ethereum", "/sell ETH 50%"),
    ("what's my balance", "/balance"),
    ("show my positions", "/positions"),
    ("signal for solana", "/signal SOL"),
    ("analyze ETH on the four hour chart", "/analyze ETH 4h"),
    ("set an alert when bitcoin goes above seventy thousand", "/alert BTC > 70000"),
    ("close everything", "/close all"),
    # numbers, units and prices
    ("buy 1.5k dollars of sol", "/buy SOL 1500"),
    ("buy $100 of BTC", "/buy BTC 100"),
    ("buy two and a half solana at 150", "/buy 2.5 SOL @ 150"),
    ("buy 100 dollars of bitcoin at 60000", "/buy BTC 100 USDT @ 60000"),
    (
        "buy 0.1 eth at 3000 with stop loss at 2800 and take profit at 3500",
        "/buy 0.1 ETH @ 3000 sl 2800 tp 3500",
    ),
    ("buy a hundred euros of ethereum", "/buy ETH 100 EUR"),
    ("buy 100 doge", "/buy 100 DOGE"),
    ("buy bitcoin for 250 dollars", "/buy BTC 250"),
    ("purchase fifty bucks worth of cardano", "/buy ADA 50"),
    ("buy 100 dollars of WIF", "/buy WIF 100"),
    ("BUY 100 DOLLARS OF BITCOIN", "/buy BTC 100"),
    ("SELL HALF MY ETH", "/sell ETH 50%"),
    ("analyze LINK daily", "/analyze LINK 1d"),
    ("buy 500 dollars of binance coin", "/buy BNB 500"),
    ("sell fifty percent of my eth", "/sell ETH 50%"),
    ("sell a quarter of my bitcoin", "/sell BTC 25%"),
    ("sell three quarters of my xrp", "/sell XRP 75%"),
    ("sell all my solana", "/sell SOL all"),
    ("sell 0.5 ether at 4000", "/sell 0.5 ETH @ 4000"),
    ("sell 200 dollars of dogecoin", "/sell DOGE 200"),
    # other commands
    ("close bitcoin", "/close BTC"),
    ("close all my positions", "/close all"),
    ("show me the daily chart for btc", "/analyze BTC 1d"),
    ("analyze sol 15 minute", "/analyze SOL 15m"),
    ("analyze ripple on the hourly", "/analyze XRP 1h"),
    ("how is bitcoin doing", "/analyze BTC"),
    ("alert me if solana rises 5 percent", "/alert SOL +5%"),
    ("notify me when ethereum drops below 3,000", "/alert ETH < 3000"),
    ("set stop loss on bitcoin at 58000", "/sl BTC 58000"),
    ("take profit for eth at four thousand", "/tp ETH 4000"),
    ("remove the take profit on eth", "/tp ETH off"),
    ("cancel all orders", "/cancel all"),
    ("cancel order 123", "/cancel 123"),
    ("should I buy bitcoin", "/signal BTC"),
    ("what's my pnl", "/pnl"),
    ("show my open orders", "/orders"),
    # typed commands pass through
    ("/buy BTC 100", "/buy BTC 100"),
    ("  /analyze   eth 4h ", "/analyze eth 4h"),
    # what tiny.en makes of espeak-ng's voice
    ("Buy 100 dollars a Bitcoin.", "/buy BTC 100"),
    ("By 100 dollars a bit, coin.", "/buy BTC 100"),
    ("Buy 0.1-bit coin at market.", "/buy 0.1 BTC"),
    ("Buy, 0.1, Bitcoin at market.", "/buy 0.1 BTC"),
    ("Well, it's my balance.", "/balance"),
    ("Show my position.", "/positions"),
    ("Signal for Solaga.", "/signal SOL"),
    ("Sell half my Etherium.", "/sell ETH 50%"),
    ("And I'll be to ETH on the 4-rower chart.", "/analyze ETH 4h"),
    ("Set an alert when Bitcoin goes above 70,000.", "/alert BTC > 70000"),
    ("Close everything.", "/close all"),
]

RUSSIAN = [
    ("купи биткоин на сто долларов", "/buy BTC 100"),
    ("купи ноль целых одну десятую биткоина", "/buy 0.1 BTC"),
    ("купи полтора эфира", "/buy 1.5 ETH"),
    ("продай половину эфира", "/sell ETH 50%"),
    ("продай весь эфир", "/sell ETH all"),
    ("продай двадцать пять процентов соланы", "/sell SOL 25%"),
    ("какой мой баланс", "/balance"),
    ("покажи мои позиции", "/positions"),
    ("закрой всё", "/close all"),
    ("закрой все позиции", "/close all"),
    ("проанализируй эфир на четырёхчасовом графике", "/analyze ETH 4h"),
    ("анализ биткоина на дневном графике", "/analyze BTC 1d"),
]

SPANISH = [
    ("compra cien dólares de bitcoin", "/buy BTC 100"),
    ("compra cero punto uno bitcoin", "/buy 0.1 BTC"),
    ("compra doscientos cincuenta dólares de solana", "/buy SOL 250"),
    ("vende la mitad de mi ethereum", "/sell ETH 50%"),
    ("vende todo mi solana", "/sell SOL all"),
    ("vende treinta por ciento de mi bitcoin", "/sell BTC 30%"),
    ("cuál es mi saldo", "/balance"),
    ("muestra mis posiciones", "/positions"),
    ("cierra todo", "/close all"),
    ("cierra todas las posiciones", "/close all"),
    ("analiza bitcoin en el gráfico de cuatro horas", "/analyze BTC 4h"),
]

MONEY = {"buy", "sell", "close", "sl", "tp", "cancel"}


def _assert_trade_round_trip(command: str) -> None:
    name, _, args = command.partition(" ")
    if name.lstrip("/") in MONEY:
        parse_trade_command(name, args)


@pytest.mark.parametrize(("text", "command"), COMMANDS + RUSSIAN + SPANISH)
def test_phrase_becomes_command(text: str, command: str) -> None:
    locale = "ru" if text in dict(RUSSIAN) else "es" if text in dict(SPANISH) else "en"
    intent = parse_intent(text, locale)
    assert intent.kind is IntentKind.COMMAND, (intent.message_key, intent.options)
    assert intent.command == command
    assert intent.moves_money == (command.split()[0].lstrip("/") in MONEY)
    _assert_trade_round_trip(command)


def test_spanish_is_recognised_without_the_locale() -> None:
    assert parse_intent("compra cien dólares de bitcoin").command == "/buy BTC 100"


@pytest.mark.parametrize(
    ("text", "question", "options"),
    [
        (
            "buy bitcoin",
            "intent.clarify.buy_amount",
            ["/buy BTC 25", "/buy BTC 50", "/buy BTC 100", "/buy BTC 250"],
        ),
        ("sell ether", "intent.clarify.sell_amount", ["/sell ETH 25%", "/sell ETH 50%", "/sell ETH all"]),
        ("bitcoin", "intent.clarify.coin_action", ["/analyze BTC", "buy BTC", "/signal BTC"]),
        ("buy bitcoin 100", "intent.clarify.amount_unit", ["/buy BTC 100", "/buy 100 BTC"]),
        (
            "buy a hundred dollars",
            "intent.clarify.which_coin",
            ["/buy BTC 100", "/buy ETH 100", "/buy SOL 100"],
        ),
        ("signal", "intent.clarify.which_coin", ["/signal BTC", "/signal ETH", "/signal SOL"]),
        ("close", "intent.clarify.close_what", ["/close all", "/positions"]),
        ("sell everything", "intent.clarify.close_what", ["/close all", "/positions"]),
        (
            "let me know when eth hits 4000",
            "intent.clarify.alert_direction",
            ["/alert ETH > 4000", "/alert ETH < 4000"],
        ),
        (
            "analyze bitcoin on the two hour chart",
            "intent.clarify.timeframe",
            ["/analyze BTC 1h", "/analyze BTC 4h", "/analyze BTC 1d"],
        ),
        (
            "And I'll be to each on the 4-hour chart.",
            "intent.clarify.which_coin",
            ["/analyze BTC 4h", "/analyze ETH 4h", "/analyze SOL 4h"],
        ),
        ("a hundred dollars of bitcoin", "intent.clarify.side", ["buy BTC", "sell BTC"]),
    ],
)
def test_ambiguity_asks(text: str, question: str, options: list[str]) -> None:
    intent = parse_intent(text)
    assert intent.kind is IntentKind.CLARIFY
    assert intent.question_key == question
    assert [o.text for o in intent.options] == options
    for option in intent.options:
        if option.text.startswith("/"):
            _assert_trade_round_trip(option.text)
        assert option.moves_money == (option.text.split()[0].lstrip("/") in MONEY and option.text[0] == "/")


def test_option_follow_ups_lead_to_commands() -> None:
    first = parse_intent("bitcoin")
    follow = parse_intent(next(o.text for o in first.options if o.label_key == "intent.option.buy"))
    assert follow.question_key == "intent.clarify.buy_amount"
    assert parse_intent(follow.options[2].text).command == "/buy BTC 100"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("don't buy bitcoin", "intent.negated"),
        ("не покупай биткоин", "intent.negated"),
        ("hello there", "intent.unknown"),
        ("", "intent.unknown"),
    ],
)
def test_nothing_to_do(text: str, key: str) -> None:
    intent = parse_intent(text)
    assert intent.kind is IntentKind.UNKNOWN
    assert intent.message_key == key
    assert intent.command is None


def test_a_command_the_trade_parser_refuses_is_reported() -> None:
    intent = parse_intent("buy 0.1 eth at 3000 with stop loss at 3100")
    assert intent.kind is IntentKind.UNKNOWN
    assert intent.message_key == "trade.parse.sl_above_price"


def test_money_moving_phrases_are_flagged() -> None:
    assert parse_intent("buy a hundred dollars of bitcoin").moves_money
    assert parse_intent("close everything").moves_money
    assert not parse_intent("what's my balance").moves_money
    assert not parse_intent("set an alert when bitcoin goes above seventy thousand").moves_money


def test_timeframes_match_the_market_service() -> None:
    from services.market.data import TIMEFRAME_MS

    assert set(TIMEFRAMES) == set(TIMEFRAME_MS)


# ----------------------------------------------------------------------------------------- number words

_UNITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TEENS = (
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def _below_thousand(n: int, *, use_and: bool, hyphen: bool, article: bool) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words += ["a" if article and hundreds == 1 else _UNITS[hundreds], "hundred"]
        if rest and use_and:
            words.append("and")
    if rest >= 20:
        tens, unit = divmod(rest, 10)
        if unit and hyphen:
            words.append(f"{_TENS[tens]}-{_UNITS[unit]}")
        else:
            words += [_TENS[tens], *([_UNITS[unit]] if unit else [])]
    elif rest >= 10:
        words.append(_TEENS[rest - 10])
    elif rest:
        words.append(_UNITS[rest])
    return words


def english_words(n: int, *, use_and: bool = False, hyphen: bool = False, article: bool = False) -> str:
    """`n` (0..999,999,999) in English words, in one of several common styles."""
    if n == 0:
        return "zero"
    words: list[str] = []
    for scale, name in ((10**6, "million"), (10**3, "thousand")):
        count, n = divmod(n, scale)
        if count:
            words += [*_below_thousand(count, use_and=use_and, hyphen=hyphen, article=article), name]
    if n:
        if words and n < 100 and use_and:
            words.append("and")
        words += _below_thousand(n, use_and=use_and, hyphen=hyphen, article=article and not words)
    return " ".join(words)


_styles = st.fixed_dictionaries({"use_and": st.booleans(), "hyphen": st.booleans(), "article": st.booleans()})


@given(st.integers(min_value=0, max_value=1_000_000), _styles)
def test_integer_words_round_trip(n: int, style: dict[str, bool]) -> None:
    assert words_to_number(english_words(n, **style)) == n


@given(st.integers(min_value=0, max_value=999), st.text(alphabet="0123456789", min_size=1, max_size=4))
def test_decimal_words_round_trip(whole: int, digits: str) -> None:
    text = english_words(whole) + " point " + " ".join(_UNITS[int(d)] for d in digits)
    assert words_to_number(text) == D(f"{whole}.{digits}")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("zero point zero five", "0.05"),
        ("point oh five", "0.05"),
        ("two and a half", "2.5"),
        ("one point five million", "1500000"),
        ("twenty five hundred", "2500"),
        ("a thousand and one", "1001"),
        ("five grand", "5000"),
        ("1.5k", "1500"),
        ("70 thousand", "70000"),
        ("seventy thousand", "70000"),
    ],
)
def test_english_number_forms(text: str, value: str) -> None:
    assert words_to_number(text) == D(value)


@pytest.mark.parametrize(
    ("lang", "text", "value"),
    [
        ("ru", "сто", "100"),
        ("ru", "двести пятьдесят", "250"),
        ("ru", "семьдесят тысяч", "70000"),
        ("ru", "ноль целых пять десятых", "0.5"),
        ("ru", "ноль точка один", "0.1"),
        ("ru", "полтора", "1.5"),
        ("ru", "два с половиной", "2.5"),
        ("es", "cien", "100"),
        ("es", "treinta y cinco", "35"),
        ("es", "mil", "1000"),
        ("es", "setenta mil", "70000"),
        ("es", "dos mil quinientos", "2500"),
        ("es", "cero coma cinco", "0.5"),
        ("es", "dos y medio", "2.5"),
    ],
)
def test_russian_and_spanish_numbers(lang: str, text: str, value: str) -> None:
    assert words_to_number(text, lang) == D(value)


@pytest.mark.parametrize("text", ["one one", "hundred hundred", "and", "point", "twenty ten", "a"])
def test_not_one_number(text: str) -> None:
    assert words_to_number(text) is None


# ------------------------------------------------------------------------------ phrases -> trade commands

_COIN_NAMES = {"BTC": "bitcoin", "ETH": "ethereum", "SOL": "solana", "XRP": "ripple", "DOGE": "dogecoin"}
coins = st.sampled_from(sorted(_COIN_NAMES))


@given(st.integers(min_value=1, max_value=1_000_000), coins, _styles)
def test_quote_amount_in_words_round_trips(n: int, coin: str, style: dict[str, bool]) -> None:
    intent = parse_intent(f"buy {english_words(n, **style)} dollars of {_COIN_NAMES[coin]}")
    assert intent.command == f"/buy {coin} {n}"
    request = parse_trade_command("buy", intent.command_args)
    assert (request.base, request.amount, request.amount_unit) == (coin, D(n), AmountUnit.QUOTE)


@given(st.integers(min_value=0, max_value=99), st.text(alphabet="0123456789", min_size=1, max_size=3), coins)
def test_base_amount_in_words_round_trips(whole: int, digits: str, coin: str) -> None:
    value = D(f"{whole}.{digits}")
    if value == 0:
        return
    spoken = english_words(whole) + " point " + " ".join(_UNITS[int(d)] for d in digits)
    intent = parse_intent(f"buy {spoken} {_COIN_NAMES[coin]} at market")
    assert intent.kind is IntentKind.COMMAND
    request = parse_trade_command("buy", intent.command_args)
    assert (request.base, request.amount, request.amount_unit) == (coin, value, AmountUnit.BASE)


@given(st.integers(min_value=1, max_value=100), coins)
def test_percent_in_words_round_trips(p: int, coin: str) -> None:
    intent = parse_intent(f"sell {english_words(p)} percent of my {_COIN_NAMES[coin]}")
    assert intent.command == f"/sell {coin} {p}%"
    request = parse_trade_command("sell", intent.command_args)
    assert (request.amount, request.amount_unit) == (D(p), AmountUnit.PERCENT)


_fragments = st.lists(
    st.sampled_from(
        [
            "buy", "sell", "close", "cancel", "stop loss", "take profit", "at", "for", "of", "my", "all",
            "half", "a quarter", "percent", "dollars", "euros", "bitcoin", "eth", "sol", "WIF", "at market",
            "above", "below", "alert", "chart", "four hour", "daily", "a hundred", "zero point one", "1.5k",
            "70,000", "$50", "25%", "two and a half", "seventy thousand", "everything", "and", "order", "12",
            "0", "99999999999999", "0.0000000000000000001", "купи", "продай", "на", "сто", "долларов",
        ]
    ),
    max_size=9,
)  # fmt: skip


@settings(max_examples=400)
@given(_fragments)
def test_every_trading_command_parses(words: list[str]) -> None:
    intent = parse_intent(" ".join(words))
    if intent.kind is IntentKind.COMMAND:
        assert intent.command is not None
        _assert_trade_round_trip(intent.command)
        assert intent.moves_money == (intent.command_name in MONEY)
    for option in intent.options:
        if option.text.startswith("/"):
            _assert_trade_round_trip(option.text)


@settings(max_examples=300)
@given(st.text(max_size=120))
def test_any_text_gives_an_intent(text: str) -> None:
    intent = parse_intent(text)
    if intent.kind is IntentKind.COMMAND and not text.strip().startswith("/"):
        assert intent.command is not None
        _assert_trade_round_trip(intent.command)


def test_close_all_round_trips() -> None:
    request = parse_trade_command("close", parse_intent("close everything").command_args)
    assert request.kind is RequestKind.CLOSE
