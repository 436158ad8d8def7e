"""Numbers as traders read them: exact Decimals, thousands separated, no float noise."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal


def amount(value: Decimal, max_places: int = 8) -> str:
    """A quantity: up to `max_places` decimals, trailing zeros dropped (0.00150000 -> 0.0015)."""
    quantized = value.quantize(Decimal(1).scaleb(-max_places), rounding=ROUND_HALF_EVEN)
    text = f"{quantized:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def money(value: Decimal) -> str:
    """A sum in a quote currency: 2 decimals, more for tiny sums so they do not read as zero."""
    if value != 0 and abs(value) < 1:
        return amount(value, 6)
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):,f}"


def price(value: Decimal) -> str:
    """A price: 2 decimals above 100, more significant digits below."""
    if abs(value) >= 100:
        return money(value)
    if abs(value) >= 1:
        return amount(value, 4)
    return amount(value, 8)


def signed(value: Decimal) -> str:
    text = money(value)
    return text if value < 0 else f"+{text}"


def pct(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):+f}"


def price_float(value: float) -> str:
    """An indicator-derived price (a statistic in binary floating point), shown like a price."""
    return price(Decimal(repr(value)))
