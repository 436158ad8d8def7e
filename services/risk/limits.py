"""Risk checks every order passes. Pure: given the account's state and the order, allow or refuse,
saying which limit and by how much."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)
HUNDRED = Decimal(100)
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_position_pct: Decimal = Decimal(25)  # of equity, per symbol, after the order
    max_open_positions: int = 10
    max_daily_loss_pct: Decimal = Decimal(5)  # of equity at the start of the day


@dataclass(frozen=True, slots=True)
class RiskCeilings:
    """The most a plan lets a user set each limit to; `None`: no ceiling."""

    max_position_pct: Decimal | None = None
    max_open_positions: int | None = None
    max_daily_loss_pct: Decimal | None = None


NO_CEILINGS = RiskCeilings()


def _lower(value: Any, ceiling: Any) -> Any:
    return value if ceiling is None or value <= ceiling else ceiling


def clamp(limits: RiskLimits, ceilings: RiskCeilings) -> RiskLimits:
    """The limits in force: the user's own, each lowered to its plan's ceiling (never raised). A
    downgrade therefore takes effect at once, and an upgrade gives back the user's own setting."""
    return RiskLimits(
        max_position_pct=_lower(limits.max_position_pct, ceilings.max_position_pct),
        max_open_positions=_lower(limits.max_open_positions, ceilings.max_open_positions),
        max_daily_loss_pct=_lower(limits.max_daily_loss_pct, ceilings.max_daily_loss_pct),
    )


@dataclass(frozen=True, slots=True)
class AccountState:
    equity: Decimal  # quote value of everything the account holds
    open_positions: int
    position_value: Decimal  # current value of the position in this order's symbol
    has_position: bool
    realized_today: Decimal  # negative when losing
    paused_until: datetime | None = None
    pause_reason: str | None = None
    ceilings: RiskCeilings = NO_CEILINGS  # of the user's plan now: the limits are clamped to them


@dataclass(frozen=True, slots=True)
class RiskDecision:
    allowed: bool
    message_key: str = "risk.ok"
    params: dict[str, Any] = field(default_factory=dict)


def check_order(
    limits: RiskLimits,
    state: AccountState,
    *,
    side: str,
    notional: Decimal,
    now: datetime,
) -> RiskDecision:
    """Sells that reduce a position are always allowed (a stop-loss must never be blocked);
    buys must fit every limit, each clamped to the plan's ceiling (`state.ceilings`)."""
    if side == "sell":
        return RiskDecision(True)
    if state.paused_until is not None and state.paused_until > now:
        return RiskDecision(
            False,
            "risk.paused_kill_switch" if state.pause_reason == "panic" else "risk.paused_daily_loss",
            {"until": state.paused_until},
        )
    limits = clamp(limits, state.ceilings)
    equity = state.equity
    if equity <= 0:
        return RiskDecision(False, "risk.no_equity", {})
    loss_limit = equity * limits.max_daily_loss_pct / HUNDRED
    if -state.realized_today >= loss_limit:
        return RiskDecision(
            False,
            "risk.daily_loss",
            {
                "loss": (-state.realized_today).quantize(CENT),
                "limit": loss_limit.quantize(CENT),
                "pct": limits.max_daily_loss_pct,
            },
        )
    if not state.has_position and state.open_positions >= limits.max_open_positions:
        return RiskDecision(
            False, "risk.max_positions", {"open": state.open_positions, "limit": limits.max_open_positions}
        )
    max_value = equity * limits.max_position_pct / HUNDRED
    after = state.position_value + notional
    if after > max_value:
        return RiskDecision(
            False,
            "risk.position_size",
            {
                "pct": (after / equity * HUNDRED).quantize(Decimal("0.1")),
                "limit_pct": limits.max_position_pct,
                "over": (after - max_value).quantize(CENT),
                "max_order": max(max_value - state.position_value, ZERO).quantize(CENT),
            },
        )
    return RiskDecision(True)


def max_affordable(limits: RiskLimits, state: AccountState) -> Decimal:
    """The largest buy (quote) the position-size limit allows now."""
    limits = clamp(limits, state.ceilings)
    return max(state.equity * limits.max_position_pct / HUNDRED - state.position_value, ZERO)
