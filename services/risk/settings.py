"""A user's own risk limits: seen next to their plan's ceilings, and changed within them.

The limits an order is checked against are the user's own, clamped to their plan's ceilings now
(`services.risk.limits.clamp`), so a downgrade clamps at once without rewriting the user's settings and an
upgrade gives them back. A setting above the plan's ceiling is refused, naming the ceiling and the
cheapest plan that allows the value; nothing changes on bad input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TYPE_CHECKING

from db.repositories import AuditRepository
from services.billing.errors import EntitlementError
from services.errors import ValidationError
from services.risk.limits import RiskCeilings, RiskLimits, clamp

if TYPE_CHECKING:
    from services.billing.entitlements import Entitlements
    from services.billing.plans import PlanLimits
    from services.trading.service import TradingService
    from services.users import UserProfile

FEATURE = "risk_limits"  # the feature named by a refusal (billing.features.risk_limits)


class RiskSetting(StrEnum):
    POSITION = "position"  # max position size, % of equity
    POSITIONS = "positions"  # max open positions
    DAILY = "daily"  # max daily loss, % of equity


FIELDS: dict[RiskSetting, str] = {
    RiskSetting.POSITION: "max_position_pct",
    RiskSetting.POSITIONS: "max_open_positions",
    RiskSetting.DAILY: "max_daily_loss_pct",
}
PRESETS: dict[RiskSetting, tuple[int, ...]] = {
    RiskSetting.POSITION: (5, 10, 25, 35, 50),
    RiskSetting.POSITIONS: (3, 5, 10, 15, 30),
    RiskSetting.DAILY: (2, 5, 8, 15),
}
# What a user may set at all, whatever the plan: anything outside is a mistake, not an ambition.
BOUNDS: dict[RiskSetting, tuple[Decimal, Decimal]] = {
    RiskSetting.POSITION: (Decimal("0.1"), Decimal(100)),
    RiskSetting.POSITIONS: (Decimal(1), Decimal(100)),
    RiskSetting.DAILY: (Decimal("0.1"), Decimal(100)),
}
PCT_PLACES = 2
ALIASES: dict[str, RiskSetting] = {
    "position": RiskSetting.POSITION,
    "size": RiskSetting.POSITION,
    "positions": RiskSetting.POSITIONS,
    "open": RiskSetting.POSITIONS,
    "daily": RiskSetting.DAILY,
    "loss": RiskSetting.DAILY,
}


class RiskCeilingExceeded(EntitlementError):
    """A setting above the plan's ceiling (params: setting, value, ceiling); `required_plan` is the cheapest
    plan that allows the value, None when none does."""

    message_key = "risk_settings.errors.above_ceiling.position"


# ------------------------------------------------------------------------------------------- pure


def setting_of(name: str) -> RiskSetting:
    try:
        return ALIASES[name.strip().lower()]
    except KeyError:
        raise ValidationError("risk_settings.errors.usage") from None


def parse_value(setting: RiskSetting, text: str) -> Decimal:
    """A typed value ("20", "20%", "12,5") checked against the setting's bounds; raises ValidationError."""
    cleaned = text.strip().rstrip("%").strip().replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        low, high = BOUNDS[setting]
        raise ValidationError(
            f"risk_settings.errors.bad_value.{setting.value}", value=text, min=low, max=high
        ) from None
    return check_value(setting, value)


def check_value(setting: RiskSetting, value: Decimal) -> Decimal:
    low, high = BOUNDS[setting]
    whole = setting is RiskSetting.POSITIONS
    places = value.as_tuple().exponent if value.is_finite() else None
    if (
        places is None
        or not isinstance(places, int)
        or not low <= value <= high
        or (whole and value != value.to_integral_value())
        or (not whole and places < -PCT_PLACES)
    ):
        raise ValidationError(
            f"risk_settings.errors.bad_value.{setting.value}", value=str(value), min=low, max=high
        )
    return value.to_integral_value() if whole else value


def ceiling(ceilings: RiskCeilings, setting: RiskSetting) -> Decimal | None:
    value = getattr(ceilings, FIELDS[setting])
    return None if value is None else Decimal(value)


def own_value(limits: RiskLimits, setting: RiskSetting) -> Decimal:
    return Decimal(getattr(limits, FIELDS[setting]))


def _allows(setting: RiskSetting, value: Decimal) -> Callable[[PlanLimits], bool]:
    def allows(limits: PlanLimits) -> bool:
        top = ceiling(limits.risk_ceilings, setting)
        return top is None or value <= top

    return allows


@dataclass(frozen=True, slots=True)
class RiskOverview:
    plan: str  # the plan's code
    own: RiskLimits  # the user's settings
    ceilings: RiskCeilings  # the plan's
    effective: RiskLimits  # what orders are checked against

    def capped(self, setting: RiskSetting) -> bool:
        """The plan's ceiling is lower than the user's own setting (after a downgrade)."""
        return own_value(self.effective, setting) < own_value(self.own, setting)


# ---------------------------------------------------------------------------------------- service


class RiskSettingsService:
    """Reads and changes a user's limits in their trading profile; joins the caller's session and commits
    a change once, with its audit row."""

    def __init__(self, trading: TradingService, entitlements: Entitlements) -> None:
        self.trading = trading
        self.entitlements = entitlements
        self.session = trading.session
        self.audit = AuditRepository(trading.session)

    async def overview(self, user: UserProfile) -> RiskOverview:
        profile, _ = await self.trading.active_account(user)
        plan = await self.entitlements.plan(user.id)
        own = self.trading._limits(profile)
        ceilings = plan.limits.risk_ceilings
        return RiskOverview(plan=plan.code, own=own, ceilings=ceilings, effective=clamp(own, ceilings))

    async def set(self, user: UserProfile, setting: RiskSetting, value: Decimal) -> RiskOverview:
        """Set one limit; raises ValidationError (out of bounds) or RiskCeilingExceeded (above the plan's
        ceiling) without changing anything."""
        value = check_value(setting, value)
        plan = await self.entitlements.plan(user.id)
        top = ceiling(plan.limits.risk_ceilings, setting)
        if top is not None and value > top:
            upgrade = self.entitlements.catalogue.cheapest(_allows(setting, value))
            required = upgrade.code if upgrade is not None and upgrade.rank > plan.rank else None
            key = "above_ceiling" if required else "above_every_plan"
            raise RiskCeilingExceeded(
                f"risk_settings.errors.{key}.{setting.value}",
                feature=FEATURE,
                plan=plan.code,
                required_plan=required,
                setting=setting.value,
                value=value,
                ceiling=top,
            )
        profile, _ = await self.trading.active_account(user)
        field = FIELDS[setting]
        old = Decimal(getattr(profile, field))
        if old != value:
            setattr(profile, field, int(value) if setting is RiskSetting.POSITIONS else value)
            await self.audit.add(
                "risk.limit_changed",
                tenant_id=user.tenant_id,
                user_id=user.id,
                details={"setting": setting.value, "old": _plain(old), "new": _plain(value)},
            )
        await self.session.commit()
        return await self.overview(user)


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")
