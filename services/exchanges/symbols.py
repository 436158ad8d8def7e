"""Symbol normalisation and "did you mean" suggestions over an exchange's markets."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

_SEPARATORS = re.compile(r"[\s\-_:]+")
PREFERRED_QUOTES = ("USDT", "USDC", "USD", "EUR", "BTC")


def normalize_symbol(symbol: str) -> str:
    """``" btc-usdt "`` -> ``"BTC/USDT"``: upper case, ``-``/``_``/space separators as ``/``."""
    return _SEPARATORS.sub("/", symbol.strip().upper()).strip("/")


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def suggest_symbols(query: str, symbols: Iterable[str], limit: int = 3, cutoff: float = 0.6) -> list[str]:
    """The symbols closest to ``query`` (e.g. ``"BTCC"`` -> ``["BTC/USDT"]``), best first.

    A symbol is scored by the best difflib ratio of the query against the symbol, its base+quote without a
    separator and, for queries without a quote, its base alone; only candidates within 0.15 of the best
    score (only exact ones if there is one) are kept, ties broken by the preferred quotes (USDT first)."""
    q = normalize_symbol(query)
    if not q:
        return []
    q_flat = q.replace("/", "")
    q_base, _, q_quote = q.partition("/")
    scored: list[tuple[float, int, str]] = []
    for symbol in symbols:
        base, _, quote = symbol.partition("/")
        quote = quote.split(":")[0]
        score = max(_ratio(q, symbol), _ratio(q_flat, base + quote))
        if not q_quote:
            score = max(score, _ratio(q_base, base))
        else:
            score = max(score, (_ratio(q_base, base) + _ratio(q_quote, quote)) / 2)
        if score >= cutoff:
            rank = PREFERRED_QUOTES.index(quote) if quote in PREFERRED_QUOTES else len(PREFERRED_QUOTES)
            scored.append((score, rank, symbol))
    if not scored:
        return []
    best = max(s for s, _, _ in scored)
    window = 0.0 if best >= 0.99 else 0.15  # an exact match (e.g. "BTCUSDT") stands alone
    kept = [item for item in scored if item[0] >= best - window - 1e-9]
    kept.sort(key=lambda item: (-item[0], item[1], item[2]))
    return [symbol for _, _, symbol in kept[:limit]]
