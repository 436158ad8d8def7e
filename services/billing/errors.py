"""Errors of plans and entitlements. Each names the plan that would allow what was refused, so the error
router can offer the upgrade (or the credit packs) right under the message."""

from __future__ import annotations

from typing import Any

from services.errors import FeatureUnavailable, NotFoundError


class EntitlementError(FeatureUnavailable):
    """The user's plan does not allow this. `required_plan` is the cheapest plan that does (None when no
    plan would: the limit is already the highest)."""

    message_key = "billing.errors.plan_required"

    def __init__(
        self,
        message_key: str | None = None,
        *,
        feature: str,
        plan: str,
        required_plan: str | None,
        **params: Any,
    ) -> None:
        super().__init__(message_key, feature=feature, plan=plan, required_plan=required_plan, **params)
        self.feature = feature
        self.plan = plan
        self.required_plan = required_plan


class PlanRequired(EntitlementError):
    """A feature the plan does not include at all (live trading on Free, auto-trade on Basic, ...)."""

    message_key = "billing.errors.plan_required"


class ExchangeLimitReached(EntitlementError):
    """More live exchanges than the plan allows (params: limit, connected, exchange)."""

    message_key = "billing.errors.exchange_limit"


class DailyQuotaReached(EntitlementError):
    """The plan's daily quota is used up (params: limit, used, resets_at)."""

    message_key = "billing.errors.daily_quota"


class CreditsRequired(EntitlementError):
    """New live entries need a positive credit balance and no debt (params: balance, debt). The user is
    offered the credit packs."""

    message_key = "billing.errors.credits_required"


class UnknownPlan(NotFoundError):
    message_key = "billing.errors.unknown_plan"


class UnknownPack(NotFoundError):
    message_key = "billing.errors.unknown_pack"
