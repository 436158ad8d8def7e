"""Per-plan risk ceilings: the limits in force are the user's own clamped to their plan's ceilings (pure),
typed values are parsed and bounded, and the ceilings are configured per plan like the other plan fields."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError as PydanticValidationError

from services.billing import Catalogue
from services.billing.plans import BillingSettings
from services.errors import ValidationError
from services.risk.limits import (
    NO_CEILINGS,
    AccountState,
    RiskCeilings,
    RiskLimits,
    check_order,
    clamp,
    max_affordable,
)
from services.risk.settings import RiskSetting, parse_value, setting_of

NOW = datetime(2026, 1, 1, tzinfo=UTC)
OWN = RiskLimits(max_position_pct=D(50), max_open_positions=30, max_daily_loss_pct=D(15))
FREE = RiskCeilings(max_position_pct=D(25), max_open_positions=10, max_daily_loss_pct=D(5))


def state(ceilings: RiskCeilings = NO_CEILINGS, **kw: object) -> AccountState:
    values: dict[str, object] = dict(
        equity=D(10000), open_positions=0, position_value=D(0), has_position=False, realized_today=D(0)
    )
    values.update(kw)
    return AccountState(ceilings=ceilings, **values)  # type: ignore[arg-type]


def test_clamp_lowers_each_limit_to_its_ceiling_and_never_raises_one() -> None:
    assert clamp(OWN, FREE) == RiskLimits(D(25), 10, D(5))
    low = RiskLimits(max_position_pct=D(10), max_open_positions=3, max_daily_loss_pct=D(2))
    assert clamp(low, FREE) == low
    assert clamp(OWN, NO_CEILINGS) == OWN
    partial = RiskCeilings(max_open_positions=5)
    assert clamp(OWN, partial) == RiskLimits(D(50), 5, D(15))


@given(
    own=st.decimals(min_value=D("0.1"), max_value=D(100), places=2),
    ceiling=st.none() | st.decimals(min_value=D("0.1"), max_value=D(100), places=2),
)
def test_clamp_is_the_smaller_of_setting_and_ceiling(own: D, ceiling: D | None) -> None:
    limits = clamp(RiskLimits(max_position_pct=own), RiskCeilings(max_position_pct=ceiling))
    assert limits.max_position_pct == (own if ceiling is None else min(own, ceiling))


def test_orders_are_checked_against_the_clamped_limits() -> None:
    # own 50% of 10,000: 3,000 would pass; the Free ceiling (25%) refuses it and names 25
    assert check_order(OWN, state(), side="buy", notional=D(3000), now=NOW).allowed
    decision = check_order(OWN, state(FREE), side="buy", notional=D(3000), now=NOW)
    assert decision.message_key == "risk.position_size" and decision.params["limit_pct"] == D(25)
    assert max_affordable(OWN, state(FREE)) == D(2500)

    full = state(FREE, open_positions=10)
    decision = check_order(OWN, full, side="buy", notional=D(10), now=NOW)
    assert decision.message_key == "risk.max_positions" and decision.params["limit"] == 10

    losing = state(FREE, realized_today=D(-600))
    decision = check_order(OWN, losing, side="buy", notional=D(10), now=NOW)
    assert decision.message_key == "risk.daily_loss" and decision.params["pct"] == D(5)
    assert check_order(OWN, losing, side="sell", notional=D(10), now=NOW).allowed  # sells never blocked


def test_default_ceilings_differ_by_plan_and_keep_todays_defaults_within_every_one() -> None:
    catalogue = Catalogue()
    ceilings = [plan.limits.risk_ceilings for plan in catalogue.plans()]
    assert ceilings == [
        RiskCeilings(D(25), 10, D(5)),
        RiskCeilings(D(35), 15, D(8)),
        RiskCeilings(D(50), 30, D(15)),
        RiskCeilings(None, None, None),
    ]
    defaults = RiskLimits()  # TRADING__MAX_* defaults, copied into a new user's profile
    assert all(clamp(defaults, c) == defaults for c in ceilings)


def test_ceilings_are_configured_per_plan() -> None:
    settings = BillingSettings.model_validate(
        {
            "pro": {"max_position_pct": "60", "max_open_positions": "unlimited"},
            "free": {"max_daily_loss_pct": 3},
        }
    )
    catalogue = Catalogue(settings)
    assert catalogue.plan("pro").limits.risk_ceilings == RiskCeilings(D(60), None, D(15))
    assert catalogue.free.limits.risk_ceilings == RiskCeilings(D(25), 10, D(3))
    with pytest.raises(PydanticValidationError):
        BillingSettings.model_validate({"basic": {"max_position_pct": 0}})
    with pytest.raises(PydanticValidationError):
        BillingSettings.model_validate({"basic": {"max_daily_loss_pct": 101}})


@pytest.mark.parametrize(
    ("setting", "text", "expected"),
    [
        (RiskSetting.POSITION, "20", D(20)),
        (RiskSetting.POSITION, "12.5%", D("12.5")),
        (RiskSetting.POSITION, "7,25", D("7.25")),
        (RiskSetting.POSITIONS, "5", D(5)),
        (RiskSetting.POSITIONS, "5.0", D(5)),
        (RiskSetting.DAILY, "3", D(3)),
        (RiskSetting.DAILY, "100", D(100)),
    ],
)
def test_typed_values(setting: RiskSetting, text: str, expected: D) -> None:
    assert parse_value(setting, text) == expected


@pytest.mark.parametrize(
    ("setting", "text"),
    [
        (RiskSetting.POSITION, "0"),
        (RiskSetting.POSITION, "-5"),
        (RiskSetting.POSITION, "101"),
        (RiskSetting.POSITION, "1e9"),
        (RiskSetting.POSITION, "12.345"),
        (RiskSetting.POSITION, "abc"),
        (RiskSetting.POSITION, "nan"),
        (RiskSetting.POSITION, "inf"),
        (RiskSetting.POSITIONS, "0"),
        (RiskSetting.POSITIONS, "2.5"),
        (RiskSetting.POSITIONS, "1000"),
        (RiskSetting.DAILY, "-1"),
        (RiskSetting.DAILY, "0.01"),
    ],
)
def test_zero_negative_or_absurd_values_are_refused(setting: RiskSetting, text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_value(setting, text)
    assert caught.value.message_key == f"risk_settings.errors.bad_value.{setting.value}"
    assert {"value", "min", "max"} <= set(caught.value.params)


@given(st.text(max_size=20))
def test_any_typed_text_parses_or_is_refused(text: str) -> None:
    for setting in RiskSetting:
        try:
            value = parse_value(setting, text)
        except ValidationError:
            continue
        assert D("0.1") <= value <= 100


def test_setting_names() -> None:
    assert setting_of("Position") is RiskSetting.POSITION
    assert setting_of("positions") is RiskSetting.POSITIONS
    assert setting_of("daily") is RiskSetting.DAILY
    with pytest.raises(ValidationError):
        setting_of("leverage")


@pytest.mark.parametrize("locale", ["en", "ru", "es"])
def test_every_risk_text_renders_in_every_locale(locale: str) -> None:
    from handlers.errors import describe, remedy
    from handlers.risk import card_text, pick_text
    from services.i18n import I18n
    from services.risk.settings import RiskCeilingExceeded, RiskOverview

    t = I18n().translator(locale)
    capped = RiskOverview(plan="free", own=OWN, ceilings=FREE, effective=clamp(OWN, FREE))
    unlimited = RiskOverview(plan="enterprise", own=OWN, ceilings=NO_CEILINGS, effective=OWN)
    texts = [card_text(t, capped), card_text(t, unlimited, saved=RiskSetting.DAILY)]
    texts += [pick_text(t, overview, s) for overview in (capped, unlimited) for s in RiskSetting]
    for setting in RiskSetting:
        for key, required in (("above_ceiling", "pro"), ("above_every_plan", None)):
            error = RiskCeilingExceeded(
                f"risk_settings.errors.{key}.{setting.value}",
                feature="risk_limits",
                plan="free",
                required_plan=required,
                setting=setting.value,
                value=D(30),
                ceiling=D(10),
            )
            texts.append(describe(t, error))
            assert remedy(t, error) is not None  # the plans button
        with pytest.raises(ValidationError) as caught:
            parse_value(setting, "x")
        texts.append(describe(t, caught.value))
    texts.append(t("risk_settings.errors.usage"))
    for text in texts:
        assert "{" not in text and "risk_settings." not in text and "billing." not in text, text
    assert "50%" in texts[0] and "25%" in texts[0] and t("risk_settings.capped") in texts[0]
