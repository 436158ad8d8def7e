"""How much a signal's buy spends."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

RISK_PER_TRADE_PCT = Decimal(1)  # of equity, lost if the stop-loss is hit


def size_by_risk(equity: Decimal, entry: Decimal, stop: Decimal | None, max_position_pct: Decimal) -> Decimal:
    """1% of equity at risk down to the stop-loss, never more than the position limit allows (half of it
    when there is no stop, or the stop is on the wrong side)."""
    cap = equity * max_position_pct / 100
    if stop is None or stop >= entry:
        amount = cap / 2
    else:
        amount = min(cap, equity * RISK_PER_TRADE_PCT / 100 / ((entry - stop) / entry))
    return amount.quantize(Decimal("0.01"), rounding=ROUND_DOWN)
