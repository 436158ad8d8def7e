"""The plan catalogue and the credit packs, built from one settings group (`BillingSettings`).

Prices are whole US cents. A Telegram Stars price is derived from the USD price with `stars_per_usd`
(rounded up to a whole Star), so every price is configured in exactly one place.

Plans, cheapest first (defaults):

=========== ======== ============== ============== ========== ================= ============ ==========
plan        price    live exchanges AI signals/day auto-trade copy trading      white-label  credits/mo
=========== ======== ============== ============== ========== ================= ============ ==========
free        $0       0 (paper only) 3              no         no                no           0
basic       $29/mo   1              20             no         no                no           100
pro         $99/mo   3              unlimited      yes        follower, leader  no           500
enterprise  $499/mo  unlimited      unlimited      yes        follower, leader  yes          3,000
=========== ======== ============== ============== ========== ================= ============ ==========

Risk ceilings (the most a user may set each of their own risk limits to; the limits an order is checked
against are the user's own, clamped to their plan's ceilings now):

=========== =============== ============== ==============
plan        position/equity open positions daily loss
=========== =============== ============== ==============
free        25%             10             5%
basic       35%             15             8%
pro         50%             30             15%
enterprise  no ceiling      no ceiling     no ceiling
=========== =============== ============== ==============

A credit costs $0.10 and covers $1 of realised profit on live trades; packs of 100, 500 and 2,000 credits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.billing.errors import UnknownPack, UnknownPlan
from services.risk.limits import RiskCeilings

FREE = "free"
BASIC = "basic"
PRO = "pro"
ENTERPRISE = "enterprise"
PLAN_CODES = (FREE, BASIC, PRO, ENTERPRISE)  # cheapest first: the order is the upgrade path
PACK_PREFIX = "credits_"
CENTS = Decimal(100)


class PlanSettings(BaseModel):
    """One plan's price, monthly credits and limits. `None` means unlimited."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    price_usd_cents: int = Field(ge=0)
    monthly_credits: int = Field(ge=0)
    live_exchanges: int | None = Field(ge=0)
    ai_signals_per_day: int | None = Field(ge=0)
    auto_trade: bool = False
    copy_follow: bool = False
    copy_lead: bool = False
    white_label: bool = False
    # Risk ceilings: the most the plan lets a user set their own limit to (None: no ceiling).
    max_position_pct: Decimal | None = Field(default=None, gt=0, le=100)  # of equity, per position
    max_open_positions: int | None = Field(default=None, gt=0)
    max_daily_loss_pct: Decimal | None = Field(default=None, gt=0, le=100)  # of equity

    @field_validator(
        "live_exchanges",
        "ai_signals_per_day",
        "max_position_pct",
        "max_open_positions",
        "max_daily_loss_pct",
        mode="before",
    )
    @classmethod
    def _unlimited(cls, value: Any) -> Any:
        """`unlimited` (or `none`, `null`) in an environment variable means no limit."""
        if isinstance(value, str) and value.strip().lower() in ("unlimited", "none", "null"):
            return None
        return value


DEFAULT_PLANS: dict[str, dict[str, Any]] = {
    FREE: {
        "name": "Free",
        "price_usd_cents": 0,
        "monthly_credits": 0,
        "live_exchanges": 0,
        "ai_signals_per_day": 3,
        "max_position_pct": Decimal(25),
        "max_open_positions": 10,
        "max_daily_loss_pct": Decimal(5),
    },
    BASIC: {
        "name": "Basic",
        "price_usd_cents": 2900,
        "monthly_credits": 100,
        "live_exchanges": 1,
        "ai_signals_per_day": 20,
        "max_position_pct": Decimal(35),
        "max_open_positions": 15,
        "max_daily_loss_pct": Decimal(8),
    },
    PRO: {
        "name": "Pro",
        "price_usd_cents": 9900,
        "monthly_credits": 500,
        "live_exchanges": 3,
        "ai_signals_per_day": None,
        "auto_trade": True,
        "copy_follow": True,
        "copy_lead": True,
        "max_position_pct": Decimal(50),
        "max_open_positions": 30,
        "max_daily_loss_pct": Decimal(15),
    },
    ENTERPRISE: {
        "name": "Enterprise",
        "price_usd_cents": 49900,
        "monthly_credits": 3000,
        "live_exchanges": None,
        "ai_signals_per_day": None,
        "auto_trade": True,
        "copy_follow": True,
        "copy_lead": True,
        "white_label": True,
        "max_position_pct": None,
        "max_open_positions": None,
        "max_daily_loss_pct": None,
    },
}


class BillingSettings(BaseModel):
    """Everything priced or limited by the business model. The bot's settings hold it as `billing`, so
    each field is an environment variable: `BILLING__CREDIT_PRICE_USD_CENTS=10`,
    `BILLING__PRO__PRICE_USD_CENTS=9900`, `BILLING__CREDIT_PACKS=[100,500,2000]`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    credit_price_usd_cents: int = Field(default=10, gt=0)
    credit_packs: tuple[int, ...] = (100, 500, 2000)
    # What a buyer pays for Telegram Stars is about $0.02 a Star, so $1 ~ 50 Stars.
    stars_per_usd: Decimal = Field(default=Decimal(50), gt=0)
    plan_period_days: int = Field(default=30, gt=0)

    free: PlanSettings = Field(default_factory=lambda: PlanSettings(**DEFAULT_PLANS[FREE]))
    basic: PlanSettings = Field(default_factory=lambda: PlanSettings(**DEFAULT_PLANS[BASIC]))
    pro: PlanSettings = Field(default_factory=lambda: PlanSettings(**DEFAULT_PLANS[PRO]))
    enterprise: PlanSettings = Field(default_factory=lambda: PlanSettings(**DEFAULT_PLANS[ENTERPRISE]))

    @model_validator(mode="before")
    @classmethod
    def _fill_plans(cls, data: Any) -> Any:
        """A plan given in part (one environment variable) keeps its defaults for the rest."""
        if isinstance(data, dict):
            data = dict(data)
            for code in PLAN_CODES:
                given = data.get(code)
                if isinstance(given, dict):
                    data[code] = {**DEFAULT_PLANS[code], **given}
        return data

    @field_validator("credit_packs")
    @classmethod
    def _packs(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("at least one credit pack is needed")
        if any(size <= 0 for size in value):
            raise ValueError("a credit pack holds a positive number of credits")
        if len(set(value)) != len(value):
            raise ValueError("credit packs must differ in size")
        return tuple(sorted(value))

    @model_validator(mode="after")
    def _free_is_free(self) -> BillingSettings:
        if self.free.price_usd_cents != 0:
            raise ValueError("the free plan has no price")
        return self


@dataclass(frozen=True, slots=True)
class PlanLimits:
    live_exchanges: int | None  # None: unlimited
    ai_signals_per_day: int | None  # None: unlimited
    auto_trade: bool
    copy_follow: bool
    copy_lead: bool
    white_label: bool
    max_position_pct: Decimal | None = None  # risk ceilings, None: no ceiling
    max_open_positions: int | None = None
    max_daily_loss_pct: Decimal | None = None

    @property
    def live_trading(self) -> bool:
        return self.live_exchanges is None or self.live_exchanges > 0

    @property
    def risk_ceilings(self) -> RiskCeilings:
        return RiskCeilings(
            max_position_pct=self.max_position_pct,
            max_open_positions=self.max_open_positions,
            max_daily_loss_pct=self.max_daily_loss_pct,
        )


@dataclass(frozen=True, slots=True)
class Plan:
    code: str
    name: str
    rank: int  # position on the upgrade path, 0 = free
    price_usd_cents: int
    stars_price: int  # per period, in Telegram Stars
    monthly_credits: Decimal
    period_days: int
    limits: PlanLimits

    @property
    def price_usd(self) -> Decimal:
        return Decimal(self.price_usd_cents) / CENTS

    @property
    def is_free(self) -> bool:
        return self.price_usd_cents == 0


@dataclass(frozen=True, slots=True)
class CreditPack:
    code: str  # "credits_100"
    credits: Decimal
    price_usd_cents: int
    stars_price: int

    @property
    def price_usd(self) -> Decimal:
        return Decimal(self.price_usd_cents) / CENTS


def stars_for(price_usd_cents: int, stars_per_usd: Decimal) -> int:
    """A USD price in Telegram Stars, rounded up to a whole Star (0 for a free item)."""
    return math.ceil(Decimal(price_usd_cents) * stars_per_usd / CENTS)


def pack_code(credits: int) -> str:
    return f"{PACK_PREFIX}{credits}"


class Catalogue:
    """The plans and packs on sale, as configured."""

    def __init__(self, settings: BillingSettings | None = None) -> None:
        self.settings = settings or BillingSettings()
        s = self.settings
        plans = []
        for rank, code in enumerate(PLAN_CODES):
            ps: PlanSettings = getattr(s, code)
            plans.append(
                Plan(
                    code=code,
                    name=ps.name,
                    rank=rank,
                    price_usd_cents=ps.price_usd_cents,
                    stars_price=stars_for(ps.price_usd_cents, s.stars_per_usd),
                    monthly_credits=Decimal(ps.monthly_credits),
                    period_days=s.plan_period_days,
                    limits=PlanLimits(
                        live_exchanges=ps.live_exchanges,
                        ai_signals_per_day=ps.ai_signals_per_day,
                        auto_trade=ps.auto_trade,
                        copy_follow=ps.copy_follow,
                        copy_lead=ps.copy_lead,
                        white_label=ps.white_label,
                        max_position_pct=ps.max_position_pct,
                        max_open_positions=ps.max_open_positions,
                        max_daily_loss_pct=ps.max_daily_loss_pct,
                    ),
                )
            )
        self._plans = tuple(plans)
        self._plans_by_code = {plan.code: plan for plan in plans}
        packs = []
        for size in s.credit_packs:
            cents = size * s.credit_price_usd_cents
            packs.append(
                CreditPack(
                    code=pack_code(size),
                    credits=Decimal(size),
                    price_usd_cents=cents,
                    stars_price=stars_for(cents, s.stars_per_usd),
                )
            )
        self._packs = tuple(packs)
        self._packs_by_code = {pack.code: pack for pack in packs}

    @property
    def credit_price_usd(self) -> Decimal:
        return Decimal(self.settings.credit_price_usd_cents) / CENTS

    @property
    def free(self) -> Plan:
        return self._plans[0]

    def plans(self) -> tuple[Plan, ...]:
        """Every plan, cheapest first."""
        return self._plans

    def paid_plans(self) -> tuple[Plan, ...]:
        return tuple(plan for plan in self._plans if not plan.is_free)

    def plan(self, code: str) -> Plan:
        try:
            return self._plans_by_code[code]
        except KeyError:
            raise UnknownPlan(plan=code) from None

    def find_plan(self, code: str) -> Plan | None:
        return self._plans_by_code.get(code)

    def packs(self) -> tuple[CreditPack, ...]:
        """Every credit pack, smallest first."""
        return self._packs

    def pack(self, code: str) -> CreditPack:
        try:
            return self._packs_by_code[code]
        except KeyError:
            raise UnknownPack(pack=code) from None

    def cheapest(self, allows: Callable[[PlanLimits], bool]) -> Plan | None:
        """The cheapest plan whose limits allow something (None when no plan does)."""
        return next((plan for plan in self._plans if allows(plan.limits)), None)
