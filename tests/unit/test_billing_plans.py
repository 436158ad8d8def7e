"""The plan catalogue and credit packs: defaults, prices in USD and Stars, configuration in one place."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.billing import Catalogue, UnknownPack, UnknownPlan
from services.billing.plans import BillingSettings, stars_for


def test_default_plans() -> None:
    catalogue = Catalogue()
    rows = [
        (
            p.code,
            p.price_usd_cents,
            p.monthly_credits,
            p.limits.live_exchanges,
            p.limits.ai_signals_per_day,
            p.limits.auto_trade,
            p.limits.copy_follow,
            p.limits.copy_lead,
            p.limits.white_label,
        )
        for p in catalogue.plans()
    ]
    assert rows == [
        ("free", 0, 0, 0, 3, False, False, False, False),
        ("basic", 2900, 100, 1, 20, False, False, False, False),
        ("pro", 9900, 500, 3, None, True, True, True, False),
        ("enterprise", 49900, 3000, None, None, True, True, True, True),
    ]
    assert [p.rank for p in catalogue.plans()] == [0, 1, 2, 3]
    assert catalogue.plan("pro").price_usd == Decimal("99.00")
    assert catalogue.plan("basic").stars_price == 1450
    assert catalogue.free.is_free and not catalogue.free.limits.live_trading
    assert [p.code for p in catalogue.paid_plans()] == ["basic", "pro", "enterprise"]


def test_default_packs_cost_ten_cents_a_credit() -> None:
    catalogue = Catalogue()
    assert catalogue.credit_price_usd == Decimal("0.10")
    assert [(p.code, p.credits, p.price_usd, p.stars_price) for p in catalogue.packs()] == [
        ("credits_100", Decimal(100), Decimal(10), 500),
        ("credits_500", Decimal(500), Decimal(50), 2500),
        ("credits_2000", Decimal(2000), Decimal(200), 10000),
    ]


def test_unknown_codes() -> None:
    catalogue = Catalogue()
    with pytest.raises(UnknownPlan):
        catalogue.plan("gold")
    with pytest.raises(UnknownPack):
        catalogue.pack("credits_7")
    assert catalogue.find_plan("gold") is None


def test_stars_are_rounded_up() -> None:
    assert stars_for(0, Decimal(50)) == 0
    assert stars_for(1, Decimal(50)) == 1
    assert stars_for(999, Decimal("76.9")) == 769


def test_everything_is_configured_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    class Settings(BaseSettings):
        model_config = SettingsConfigDict(env_nested_delimiter="__")
        billing: BillingSettings = Field(default_factory=BillingSettings)

    monkeypatch.setenv("BILLING__CREDIT_PRICE_USD_CENTS", "8")
    monkeypatch.setenv("BILLING__CREDIT_PACKS", "[250, 50]")
    monkeypatch.setenv("BILLING__STARS_PER_USD", "77")
    monkeypatch.setenv("BILLING__PRO__PRICE_USD_CENTS", "7900")
    monkeypatch.setenv("BILLING__BASIC__AI_SIGNALS_PER_DAY", "30")
    monkeypatch.setenv("BILLING__BASIC__LIVE_EXCHANGES", "unlimited")
    catalogue = Catalogue(Settings().billing)
    assert [(p.code, p.price_usd_cents, p.stars_price) for p in catalogue.packs()] == [
        ("credits_50", 400, 308),
        ("credits_250", 2000, 1540),
    ]
    pro = catalogue.plan("pro")
    assert (pro.price_usd_cents, pro.monthly_credits, pro.limits.live_exchanges) == (7900, 500, 3)
    assert catalogue.plan("basic").limits.ai_signals_per_day == 30
    assert catalogue.plan("basic").limits.live_exchanges is None
    assert catalogue.plan("basic").name == "Basic"


@pytest.mark.parametrize(
    "override",
    [
        {"credit_packs": []},
        {"credit_packs": [100, 100]},
        {"credit_packs": [0]},
        {"free": {"price_usd_cents": 100}},
        {"credit_price_usd_cents": 0},
        {"pro": {"live_exchanges": -1}},
        {"pro": {"unknown": 1}},
    ],
)
def test_invalid_settings_are_refused(override: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        BillingSettings.model_validate(override)


def test_cheapest_plan_allowing_something() -> None:
    catalogue = Catalogue()
    pick = catalogue.cheapest(lambda limits: limits.copy_lead)
    assert pick is not None and pick.code == "pro"
    assert catalogue.cheapest(lambda limits: False) is None
