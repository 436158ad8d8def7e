"""The one entitlement check: may this user use this feature now, on their plan?

The user's plan is that of their running subscription (active or trialing, period not ended; the highest
one if several), else Free. Each feature is decided here and nowhere else:

* ``live_trading`` (context: ``exchange``): the plan allows live trading on that many exchanges; the
  exchanges the user connected first are the ones allowed (so a downgrade keeps the oldest ones working).
  With an exchange not yet connected it asks whether one more may be connected.
* ``live_entry`` (context: ``exchange``): opening a live position: ``live_trading`` and credits. Refused
  while the credit balance is zero (negative balances are held as debt) or any debt is outstanding.
  Closing positions, stop-losses and take-profits are never refused.
* ``ai_signal``: the plan's daily quota of AI signals (UTC days), counted in ``usage_counters``.
  ``check``/``require`` only look; ``use`` counts one signal atomically, never past the quota.
* ``auto_trade``, ``copy_follow``, ``copy_lead``, ``white_label``: included in the plan or not.

Paper trading and TA signals are on every plan and need no check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db.types import utcnow
from services.billing.errors import (
    CreditsRequired,
    DailyQuotaReached,
    EntitlementError,
    ExchangeLimitReached,
    PlanRequired,
)
from services.billing.plans import Catalogue, Plan, PlanLimits
from services.billing.repository import BillingRepository
from services.credits.ledger import CreditLedger


class Feature(StrEnum):
    LIVE_TRADING = "live_trading"
    LIVE_ENTRY = "live_entry"
    AI_SIGNAL = "ai_signal"
    AUTO_TRADE = "auto_trade"
    COPY_FOLLOW = "copy_follow"
    COPY_LEAD = "copy_lead"
    WHITE_LABEL = "white_label"


METERED = frozenset({Feature.AI_SIGNAL})
_INCLUDED: dict[Feature, Callable[[PlanLimits], bool]] = {
    Feature.AUTO_TRADE: lambda limits: limits.auto_trade,
    Feature.COPY_FOLLOW: lambda limits: limits.copy_follow,
    Feature.COPY_LEAD: lambda limits: limits.copy_lead,
    Feature.WHITE_LABEL: lambda limits: limits.white_label,
}


@dataclass(frozen=True, slots=True)
class Decision:
    feature: Feature
    plan: str
    allowed: bool
    error: EntitlementError | None = None
    limit: int | None = None  # the plan's limit where there is one (None: unlimited or not a limit)
    used: int | None = None  # exchanges connected, signals used today

    def raise_if_refused(self) -> Decision:
        if self.error is not None:
            raise self.error
        return self


def _allows_exchanges(count: int) -> Callable[[PlanLimits], bool]:
    return lambda limits: limits.live_exchanges is None or limits.live_exchanges >= count


def _allows_signals(count: int) -> Callable[[PlanLimits], bool]:
    return lambda limits: limits.ai_signals_per_day is None or limits.ai_signals_per_day >= count


class Entitlements:
    def __init__(
        self,
        session: AsyncSession,
        catalogue: Catalogue,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.session = session
        self.catalogue = catalogue
        self.repo = BillingRepository(session)
        self.ledger = CreditLedger(session, clock=clock)
        self.clock = clock

    async def plan(self, user_id: int) -> Plan:
        """The plan the user is on now."""
        plans = [
            self.catalogue.find_plan(code) for code in await self.repo.running_plans(user_id, self.clock())
        ]
        known = [plan for plan in plans if plan is not None]
        return max(known, key=lambda plan: plan.rank) if known else self.catalogue.free

    async def check(self, user_id: int, feature: Feature | str, **context: Any) -> Decision:
        """Decide without changing anything."""
        feature = Feature(feature)
        plan = await self.plan(user_id)
        if feature is Feature.LIVE_TRADING:
            return await self._live_trading(user_id, plan, context.get("exchange"))
        if feature is Feature.LIVE_ENTRY:
            return await self._live_entry(user_id, plan, context.get("exchange"))
        if feature is Feature.AI_SIGNAL:
            return await self._ai_signal(user_id, plan, count=False)
        return self._included(feature, plan)

    async def require(self, user_id: int, feature: Feature | str, **context: Any) -> Decision:
        """`check`, raising the decision's error when refused."""
        return (await self.check(user_id, feature, **context)).raise_if_refused()

    async def use(self, user_id: int, feature: Feature | str, **context: Any) -> Decision:
        """`require`, and for a metered feature count this use against the quota in the same step (joins
        the caller's transaction, which commits it)."""
        feature = Feature(feature)
        if feature not in METERED:
            return await self.require(user_id, feature, **context)
        plan = await self.plan(user_id)
        return (await self._ai_signal(user_id, plan, count=True)).raise_if_refused()

    async def usage_today(self, user_id: int, feature: Feature | str) -> int:
        return await self.repo.usage(user_id, Feature(feature).value, self.clock().astimezone(UTC).date())

    # -------------------------------------------------------------------------------------- features

    def _included(self, feature: Feature, plan: Plan) -> Decision:
        allows = _INCLUDED[feature]
        if allows(plan.limits):
            return Decision(feature, plan.code, True)
        return self._refuse(PlanRequired, feature, plan, allows)

    async def _live_trading(self, user_id: int, plan: Plan, exchange: str | None) -> Decision:
        feature = Feature.LIVE_TRADING
        limit = plan.limits.live_exchanges
        connected = await self.repo.live_exchanges(user_id)
        if not plan.limits.live_trading:
            return self._refuse(
                PlanRequired, feature, plan, _allows_exchanges(1), limit=0, used=len(connected)
            )
        if exchange is None:  # live trading in general, on the exchanges already allowed
            return Decision(feature, plan.code, True, limit=limit, used=len(connected))
        # The exchange's place among the connected ones (one not connected yet would come last).
        needed = connected.index(exchange) + 1 if exchange in connected else len(connected) + 1
        if limit is None or needed <= limit:
            return Decision(feature, plan.code, True, limit=limit, used=len(connected))
        return self._refuse(
            ExchangeLimitReached,
            feature,
            plan,
            _allows_exchanges(needed),
            limit=limit,
            used=len(connected),
            exchange=exchange,
            connected=len(connected),
        )

    async def _live_entry(self, user_id: int, plan: Plan, exchange: str | None) -> Decision:
        trading = await self._live_trading(user_id, plan, exchange)
        if not trading.allowed:
            return Decision(
                Feature.LIVE_ENTRY,
                plan.code,
                False,
                trading.error,
                limit=trading.limit,
                used=trading.used,
            )
        credits = await self.ledger.balance(user_id)
        if credits.allows_live_entries:
            return Decision(Feature.LIVE_ENTRY, plan.code, True, limit=trading.limit, used=trading.used)
        error = CreditsRequired(
            feature=Feature.LIVE_ENTRY.value,
            plan=plan.code,
            required_plan=None,
            balance=credits.balance,
            debt=credits.debt,
        )
        return Decision(Feature.LIVE_ENTRY, plan.code, False, error)

    async def _ai_signal(self, user_id: int, plan: Plan, *, count: bool) -> Decision:
        feature = Feature.AI_SIGNAL
        limit = plan.limits.ai_signals_per_day
        now = self.clock().astimezone(UTC)
        day = now.date()
        if count:
            used = await self.repo.count_use(user_id, feature.value, day, limit)
            if used is not None:
                return Decision(feature, plan.code, True, limit=limit, used=used)
            used = await self.repo.usage(user_id, feature.value, day)
        else:
            used = await self.repo.usage(user_id, feature.value, day)
            if limit is None or used < limit:
                return Decision(feature, plan.code, True, limit=limit, used=used)
        resets_at = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
        return self._refuse(
            DailyQuotaReached,
            feature,
            plan,
            _allows_signals(used + 1),
            limit=limit,
            used=used,
            resets_at=resets_at,
        )

    def _refuse(
        self,
        error_type: type[EntitlementError],
        feature: Feature,
        plan: Plan,
        allows: Callable[[PlanLimits], bool],
        *,
        limit: int | None = None,
        used: int | None = None,
        **params: Any,
    ) -> Decision:
        upgrade = self.catalogue.cheapest(allows)
        required = upgrade.code if upgrade is not None and upgrade.rank > plan.rank else None
        extra = {name: value for name, value in params.items() if value is not None}
        if limit is not None:
            extra["limit"] = limit
        if used is not None:
            extra["used"] = used
        error = error_type(feature=feature.value, plan=plan.code, required_plan=required, **extra)
        return Decision(feature, plan.code, False, error, limit=limit, used=used)
