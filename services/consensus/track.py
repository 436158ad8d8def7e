"""Scoring a resolved signal and its votes.

The realised return r = realised / entry - 1 is ``up`` above the signal's flat band, ``down`` below minus
the band, ``flat`` within it. A vote's Brier score is (p_up - y)^2 with p_up its implied probability of a
rise (p for buy, 1 - p for sell, 0.5 for hold) and y = 1 for up, 0 for down, 0.5 for flat: 0 is a perfect
forecast, 0.25 a coin's. A vote is a hit when buy meets up, sell meets down or hold meets flat. The
signal itself is scored the same way, with its weighted ``probability_up`` and its verdict.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

Outcome = Literal["up", "down", "flat"]
UNRESOLVABLE = "unresolvable"
_Y: dict[str, float] = {"up": 1.0, "down": 0.0, "flat": 0.5}
_HIT = {("buy", "up"), ("sell", "down"), ("hold", "flat")}


def outcome_of(entry: Decimal, realised: Decimal, flat_band_pct: float) -> Outcome:
    if entry <= 0:
        raise ValueError("entry price must be positive")
    change_pct = float((realised / entry - 1) * 100)
    if change_pct > flat_band_pct:
        return "up"
    if change_pct < -flat_band_pct:
        return "down"
    return "flat"


def brier(p_up: float, outcome: str) -> float:
    return (p_up - _Y[outcome]) ** 2


def is_hit(action: str, outcome: str) -> bool:
    return (action, outcome) in _HIT


def p_up_of(action: str, probability: float | None) -> float:
    p = 0.5 if probability is None else probability
    return {"buy": p, "sell": 1.0 - p}.get(action, 0.5)


__all__ = ["UNRESOLVABLE", "Outcome", "brier", "is_hit", "outcome_of", "p_up_of"]
