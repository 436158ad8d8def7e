"""Billing: the plan catalogue and credit packs, and the one entitlement check."""

from services.billing.entitlements import Decision, Entitlements, Feature
from services.billing.errors import (
    CreditsRequired,
    DailyQuotaReached,
    EntitlementError,
    ExchangeLimitReached,
    PlanRequired,
    UnknownPack,
    UnknownPlan,
)
from services.billing.plans import BillingSettings, Catalogue, CreditPack, Plan, PlanLimits, PlanSettings

__all__ = [
    "BillingSettings",
    "Catalogue",
    "CreditPack",
    "CreditsRequired",
    "DailyQuotaReached",
    "Decision",
    "EntitlementError",
    "Entitlements",
    "ExchangeLimitReached",
    "Feature",
    "Plan",
    "PlanLimits",
    "PlanRequired",
    "PlanSettings",
    "UnknownPack",
    "UnknownPlan",
]
