"""Numbers as people say them: words or digits, in English, Russian and Spanish.

`read_number(words, start, lang)` reads the longest number at `words[start]` (lower-case tokens) and returns
its value and how many tokens it used. It understands

* digits: `100`, `0.1`, `.5`, `1.5k`, `70k`, and digits followed by a scale word (`70 thousand`);
* English: `a hundred`, `one hundred and five`, `twenty five hundred`, `seventy thousand`, `zero point one`,
  `point oh five`, `two and a half`, `one point five million`, `five grand`;
* Russian: `сто`, `двести пятьдесят`, `семьдесят тысяч`, `ноль точка один`, `ноль целых пять десятых`,
  `полтора`, `два с половиной`;
* Spanish: `cien`, `ciento veinte`, `treinta y cinco`, `mil`, `setenta mil`, `cero punto uno`,
  `cero coma cinco`, `dos y medio`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Final, NamedTuple

__all__ = ["LEXICONS", "NumberLexicon", "read_number", "words_to_number"]

UNIT, TEEN, TENS, HUNDREDS, HUNDRED, SCALE = "unit", "teen", "tens", "hundreds", "hundred", "scale"
# Within one group (below a thousand) values come in strictly falling ranks: hundreds, tens, units.
_RANK: Final = {UNIT: 1, TEEN: 2, TENS: 2, HUNDREDS: 3, HUNDRED: 3}
_DIGITS = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(k?)")
_DIGIT_STRING = re.compile(r"\d+")


class NumberLexicon(NamedTuple):
    words: Mapping[str, tuple[int, str]]  # word -> (value, kind)
    articles: frozenset[str] = frozenset()  # `a` in `a hundred`: 1 before a multiplier
    conjunctions: frozenset[str] = frozenset()  # `and` / `y` inside a number
    points: frozenset[str] = frozenset()  # decimal point words: digits follow one by one
    zeros_after_point: frozenset[str] = frozenset()  # `oh` in `point oh five`
    halves: Mapping[tuple[str, ...], Decimal] = {}  # trailing fractions: (`and`, `a`, `half`) -> 0.5
    specials: Mapping[str, Decimal] = {}  # whole-number words with a fraction: `полтора` -> 1.5
    whole_marks: frozenset[str] = frozenset()  # `целых` in `ноль целых пять десятых`
    denominators: Mapping[str, int] = {}  # `десятых` -> 10


def _table(*groups: tuple[str, Mapping[str, int]]) -> dict[str, tuple[int, str]]:
    return {word: (value, kind) for kind, table in groups for word, value in table.items()}


_EN_UNITS = {
    w: i
    for i, w in enumerate(("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"))
}
_TEEN_WORDS: Final = (
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
_EN_TEENS = {w: 10 + i for i, w in enumerate(_TEEN_WORDS)}
_EN_TENS = {
    w: 20 + 10 * i
    for i, w in enumerate(("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"))
}
EN: Final = NumberLexicon(
    words=_table(
        (UNIT, _EN_UNITS),
        (TEEN, _EN_TEENS),
        (TENS, _EN_TENS | {"fourty": 40}),
        (HUNDRED, {"hundred": 100}),
        (SCALE, {"thousand": 1000, "grand": 1000, "k": 1000, "million": 10**6, "billion": 10**9}),
    ),
    articles=frozenset({"a", "an"}),
    conjunctions=frozenset({"and"}),
    points=frozenset({"point", "dot"}),
    zeros_after_point=frozenset({"oh", "o"}),
    halves={
        ("and", "a", "half"): Decimal("0.5"),
        ("and", "half"): Decimal("0.5"),
        ("and", "a", "quarter"): Decimal("0.25"),
    },
)

_RU_UNITS = {
    "ноль": 0, "нуль": 0, "один": 1, "одна": 1, "одну": 1, "одно": 1, "одного": 1, "два": 2, "две": 2,
    "двух": 2, "три": 3, "трёх": 3, "трех": 3, "четыре": 4, "четырёх": 4, "четырех": 4, "пять": 5, "пяти": 5,
    "шесть": 6, "шести": 6, "семь": 7, "семи": 7, "восемь": 8, "восьми": 8, "девять": 9, "девяти": 9,
}  # fmt: skip
_RU_TEENS = {
    "десять": 10, "десяти": 10, "одиннадцать": 11, "двенадцать": 12, "тринадцать": 13, "четырнадцать": 14,
    "пятнадцать": 15, "пятнадцати": 15, "шестнадцать": 16, "семнадцать": 17, "восемнадцать": 18,
    "девятнадцать": 19,
}  # fmt: skip
_RU_TENS = {
    "двадцать": 20, "двадцати": 20, "тридцать": 30, "тридцати": 30, "сорок": 40, "сорока": 40,
    "пятьдесят": 50, "пятидесяти": 50, "шестьдесят": 60, "семьдесят": 70, "восемьдесят": 80,
    "девяносто": 90,
}  # fmt: skip
_RU_HUNDREDS = {
    "сто": 100, "ста": 100, "двести": 200, "двухсот": 200, "триста": 300, "трёхсот": 300, "трехсот": 300,
    "четыреста": 400, "пятьсот": 500, "пятисот": 500, "шестьсот": 600, "семьсот": 700, "восемьсот": 800,
    "девятьсот": 900,
}  # fmt: skip
_RU_SCALES = {
    "тысяча": 1000, "тысячи": 1000, "тысяч": 1000, "тысячу": 1000, "тыс": 1000, "тысячей": 1000,
    "миллион": 10**6, "миллиона": 10**6, "миллионов": 10**6, "млн": 10**6,
}  # fmt: skip
RU: Final = NumberLexicon(
    words=_table(
        (UNIT, _RU_UNITS), (TEEN, _RU_TEENS), (TENS, _RU_TENS), (HUNDREDS, _RU_HUNDREDS), (SCALE, _RU_SCALES)
    ),
    points=frozenset({"точка", "запятая"}),
    halves={("с", "половиной"): Decimal("0.5"), ("с", "четвертью"): Decimal("0.25")},
    specials={"полтора": Decimal("1.5"), "полторы": Decimal("1.5")},
    whole_marks=frozenset({"целых", "целая", "целой"}),
    denominators={
        "десятая": 10, "десятых": 10, "десятую": 10, "десятые": 10,
        "сотая": 100, "сотых": 100, "сотую": 100, "сотые": 100,
        "тысячная": 1000, "тысячных": 1000, "тысячную": 1000,
    },
)  # fmt: skip

_ES_UNITS = {
    "cero": 0, "uno": 1, "un": 1, "una": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6,
    "siete": 7, "ocho": 8, "nueve": 9,
}  # fmt: skip
_ES_TEENS = {
    "diez": 10, "once": 11, "doce": 12, "trece": 13, "catorce": 14, "quince": 15, "dieciséis": 16,
    "dieciseis": 16, "diecisiete": 17, "dieciocho": 18, "diecinueve": 19, "veinte": 20, "veintiuno": 21,
    "veintiún": 21, "veintiun": 21, "veintiuna": 21, "veintidós": 22, "veintidos": 22, "veintitrés": 23,
    "veintitres": 23, "veinticuatro": 24, "veinticinco": 25, "veintiséis": 26, "veintiseis": 26,
    "veintisiete": 27, "veintiocho": 28, "veintinueve": 29,
}  # fmt: skip
_ES_TENS = {
    "treinta": 30, "cuarenta": 40, "cincuenta": 50, "sesenta": 60, "setenta": 70, "ochenta": 80,
    "noventa": 90,
}  # fmt: skip
_ES_HUNDREDS = {
    "cien": 100, "ciento": 100, "doscientos": 200, "doscientas": 200, "trescientos": 300,
    "trescientas": 300, "cuatrocientos": 400, "cuatrocientas": 400, "quinientos": 500, "quinientas": 500,
    "seiscientos": 600, "seiscientas": 600, "setecientos": 700, "setecientas": 700, "ochocientos": 800,
    "ochocientas": 800, "novecientos": 900, "novecientas": 900,
}  # fmt: skip
ES: Final = NumberLexicon(
    words=_table(
        (UNIT, _ES_UNITS),
        (TEEN, _ES_TEENS),
        (TENS, _ES_TENS),
        (HUNDREDS, _ES_HUNDREDS),
        (SCALE, {"mil": 1000, "millón": 10**6, "millon": 10**6, "millones": 10**6}),
    ),
    conjunctions=frozenset({"y"}),
    points=frozenset({"punto", "coma"}),
    halves={("y", "medio"): Decimal("0.5"), ("y", "media"): Decimal("0.5"), ("y", "cuarto"): Decimal("0.25")},
)

LEXICONS: Final[Mapping[str, NumberLexicon]] = {"en": EN, "ru": RU, "es": ES}


def _digits(token: str) -> Decimal | None:
    match = _DIGITS.fullmatch(token)
    if match is None:
        return None
    try:
        value = Decimal(match[1])
    except InvalidOperation:
        return None
    return value * 1000 if match[2] else value


def _starts_half(words: Sequence[str], at: int, lex: NumberLexicon) -> tuple[Decimal, int] | None:
    for pattern, value in lex.halves.items():
        if tuple(words[at : at + len(pattern)]) == pattern:
            return value, len(pattern)
    return None


def _digit_word(word: str, lex: NumberLexicon) -> str | None:
    if word in lex.zeros_after_point:
        return "0"
    entry = lex.words.get(word)
    if entry is not None and entry[1] == UNIT:
        return str(entry[0])
    if _DIGIT_STRING.fullmatch(word):
        return word
    return None


def read_number(words: Sequence[str], start: int, lang: str = "en") -> tuple[Decimal, int] | None:
    """The number starting at `words[start]` and the count of tokens it spans, or None."""
    lex = LEXICONS.get(lang, EN)
    n = len(words)
    total = Decimal(0)  # sum of completed scale groups (thousands, millions)
    group = Decimal(0)  # the part below the next scale word
    last: str | None = None  # kind of the previous token in the number
    last_scale: int | None = None
    seen = False
    j = start
    while j < n:
        word = words[j]
        nxt = words[j + 1] if j + 1 < n else None
        entry = lex.words.get(word)
        if not seen and word in lex.articles and nxt is not None:
            follow = lex.words.get(nxt)
            if follow is not None and follow[1] in (HUNDRED, SCALE) and nxt != "k":
                group, last, seen, j = Decimal(1), UNIT, True, j + 1
                continue
            return None
        if last is None and not seen and (value := _digits(word)) is not None:
            group, last, seen, j = value, "digits", True, j + 1
            if "." in word or word.endswith("k"):
                last = "decimal"
            continue
        if last is None and not seen and word in lex.specials:
            group, last, seen, j = lex.specials[word], "decimal", True, j + 1
            continue
        if entry is not None:
            value_int, kind = entry
            rank = _RANK.get(kind)
            if kind == SCALE:
                if last == "decimal" and total == 0:
                    group = group * value_int
                    total, group, last, last_scale, seen, j = group, Decimal(0), SCALE, value_int, True, j + 1
                    break
                if last_scale is not None and value_int >= last_scale:
                    break
                if word == "k" and last in (None, SCALE):
                    break
                total += (group if seen and group else Decimal(1)) * value_int
                group, last, last_scale, seen, j = Decimal(0), SCALE, value_int, True, j + 1
                continue
            if kind == HUNDRED:
                if last not in (UNIT, TEEN, TENS, "digits") or not 1 <= group < 100:
                    break
                group, last, j = group * 100, HUNDRED, j + 1
                continue
            assert rank is not None
            if last == "decimal":
                break
            if value_int == 0 and seen:
                break
            previous_rank = 4 if last in (None, SCALE) else _RANK.get(last, 0) if last != "digits" else 0
            if last == "conj":
                previous_rank = 3 if group % 100 == 0 else 2
            if rank >= previous_rank:
                break
            if kind == UNIT and last == TENS and value_int == 0:
                break
            group += value_int
            last, seen, j = kind, True, j + 1
            if value_int == 0:
                last = "zero"
            continue
        if seen and word in lex.conjunctions and nxt is not None:
            half = _starts_half(words, j, lex)
            if half is not None and last != "decimal":
                group += half[0]
                j += half[1]
                last = "decimal"
                break
            follow = lex.words.get(nxt)
            if follow is not None and follow[1] in (UNIT, TEEN, TENS) and last in (HUNDRED, SCALE, TENS):
                if last == TENS and follow[1] != UNIT:
                    break
                last, j = "conj", j + 1
                continue
            break
        if seen and (half := _starts_half(words, j, lex)) is not None and last not in ("decimal", "conj"):
            group += half[0]
            j += half[1]
            last = "decimal"
            break
        if word in lex.points and last not in ("decimal", "conj"):
            digits: list[str] = []
            k = j + 1
            while k < n and (d := _digit_word(words[k], lex)) is not None:
                digits.append(d)
                k += 1
                if _DIGIT_STRING.fullmatch(words[k - 1]):
                    break
            if not digits:
                break
            group += Decimal("0." + "".join(digits))
            last, seen, j = "decimal", True, k
            continue
        if seen and word in lex.whole_marks and last not in ("decimal", "conj"):
            fraction = _read_fraction(words, j + 1, lex)
            if fraction is None:
                break
            group += fraction[0]
            last, j = "decimal", j + 1 + fraction[1]
            continue
        break
    if not seen:
        return None
    value = total + group
    entry = lex.words.get(words[j]) if last == "decimal" and j < n and total == 0 else None
    if entry is not None and entry[1] == SCALE:
        value, j = value * entry[0], j + 1
    return value, j - start


def _read_fraction(words: Sequence[str], start: int, lex: NumberLexicon) -> tuple[Decimal, int] | None:
    """`пять десятых` -> (0.5, 2): a count then a denominator word."""
    numerator = read_number(words, start, "ru") if lex is RU else None
    if numerator is None:
        return None
    value, used = numerator
    at = start + used
    if at >= len(words) or words[at] not in lex.denominators:
        return None
    return value / lex.denominators[words[at]], used + 1


def words_to_number(text: str, lang: str = "en") -> Decimal | None:
    """The value of `text` when all of it is one number (`"seventy thousand"` -> 70000), else None."""
    words = text.lower().replace("-", " ").replace(",", " ").split()
    if not words:
        return None
    found = read_number(words, 0, lang)
    if found is None or found[1] != len(words):
        return None
    return found[0]
