from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from services.risk.limits import AccountState, RiskLimits, check_order

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LIMITS = RiskLimits(max_position_pct=D(25), max_open_positions=2, max_daily_loss_pct=D(5))


def state(**kw: object) -> AccountState:
    values: dict[str, object] = dict(
        equity=D(10000), open_positions=0, position_value=D(0), has_position=False, realized_today=D(0)
    )
    values.update(kw)
    return AccountState(**values)  # type: ignore[arg-type]


def test_within_limits() -> None:
    assert check_order(LIMITS, state(), side="buy", notional=D(2500), now=NOW).allowed


def test_position_size_says_by_how_much() -> None:
    decision = check_order(LIMITS, state(position_value=D(1000)), side="buy", notional=D(2000), now=NOW)
    assert not decision.allowed and decision.message_key == "risk.position_size"
    assert decision.params["over"] == D(500) and decision.params["max_order"] == D(1500)
    assert decision.params["pct"] == D("30.0")


def test_max_open_positions_only_for_new_symbols() -> None:
    full = state(open_positions=2)
    assert check_order(LIMITS, full, side="buy", notional=D(10), now=NOW).message_key == "risk.max_positions"
    assert check_order(LIMITS, state(open_positions=2, has_position=True), side="buy", notional=D(10),
                       now=NOW).allowed


def test_daily_loss_pauses_buys_but_never_sells() -> None:
    losing = state(realized_today=D(-500))
    assert check_order(LIMITS, losing, side="buy", notional=D(10), now=NOW).message_key == "risk.daily_loss"
    assert check_order(LIMITS, losing, side="sell", notional=D(10), now=NOW).allowed


def test_kill_switch_pause() -> None:
    paused = state(paused_until=NOW + timedelta(hours=1), pause_reason="panic")
    decision = check_order(LIMITS, paused, side="buy", notional=D(10), now=NOW)
    assert decision.message_key == "risk.paused_kill_switch"
    assert check_order(LIMITS, paused, side="buy", notional=D(10), now=NOW + timedelta(hours=2)).allowed
