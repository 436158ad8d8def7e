"""Amounts in the smallest currency unit, formatted for people."""

from __future__ import annotations

ZERO_DECIMAL = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "inr": "₹", "rub": "₽"}


def format_amount(amount: int, currency: str) -> str:
    currency = currency.lower()
    if currency in ZERO_DECIMAL:
        number = f"{amount:,}"
    else:
        sign = "-" if amount < 0 else ""
        whole, cents = divmod(abs(amount), 100)
        number = f"{sign}{whole:,}.{cents:02d}"
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"
