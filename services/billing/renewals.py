"""Plans running out: expiry of ended periods and a reminder before a plan ends.

* A plan paid through Telegram is not renewed by anyone: when its period ends it is ``expired``.
* A Stripe subscription is renewed by ``invoice.paid`` (which moves its period on). One whose period ended
  is expired only after `grace` with no renewal, or at once when it was set to end at the period's end
  (Stripe's ``customer.subscription.deleted`` normally gets there first).
* A reminder goes out `remind_before` a plan ends, once per period, for plans that will end (not for
  Stripe subscriptions that renew). Each reminder is recorded in ``payment_events`` (the subscription's
  provider, event id ``reminder:sub:<id>:<period end>``), so a second run, or a second process, sends none.

Entitlements already stop counting a plan whose period has ended; expiry makes the row say so and tells the
user which plan they are on now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Subscription, User
from db.scoping import of_tenant
from db.types import utcnow
from services.billing.entitlements import Entitlements
from services.billing.plans import Catalogue
from services.billing.purchases import PROVIDERS, PurchaseService

RUNNING = ("active", "trialing", "past_due")
STRIPE = "stripe"
DEFAULT_GRACE = timedelta(days=3)
DEFAULT_REMIND_BEFORE = timedelta(days=3)


@dataclass(frozen=True, slots=True)
class PlanNotice:
    subscription_id: int
    user_id: int
    telegram_id: int
    locale: str | None
    key: str
    params: dict[str, Any] = field(default_factory=dict)


def reminder_event_id(subscription_id: int, period_end: datetime) -> str:
    return f"reminder:sub:{subscription_id}:{int(period_end.timestamp())}"


class RenewalService:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        catalogue: Catalogue,
        *,
        grace: timedelta = DEFAULT_GRACE,
        remind_before: timedelta = DEFAULT_REMIND_BEFORE,
        clock: Callable[[], datetime] = utcnow,
        batch: int = 200,
        tenant_id: int | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.session_factory = session_factory
        self.catalogue = catalogue
        self.grace = grace
        self.remind_before = remind_before
        self.clock = clock
        self.batch = batch

    def _plan_name(self, code: str) -> str:
        plan = self.catalogue.find_plan(code)
        return plan.name if plan is not None else code

    async def expire(self) -> list[PlanNotice]:
        """Mark ended plans expired (see the module's rules); one notice per plan expired now."""
        now = self.clock()
        ended = or_(
            Subscription.provider != STRIPE,
            Subscription.cancel_at_period_end.is_(True),
            Subscription.current_period_end <= now - self.grace,
        )
        due = and_(
            Subscription.status.in_(RUNNING),
            Subscription.current_period_end <= now,
            ended,
        )
        notices: list[PlanNotice] = []
        async with self.session_factory() as session:
            rows = (
                await session.execute(
                    select(Subscription.id, Subscription.plan, Subscription.user_id, User.telegram_id)
                    .add_columns(User.locale, User.language_code)
                    .join(User, User.id == Subscription.user_id)
                    .where(due, of_tenant(Subscription.user_id, self.tenant_id))
                    .order_by(Subscription.current_period_end)
                    .limit(self.batch)
                )
            ).all()
            entitlements = Entitlements(session, self.catalogue, clock=self.clock)
            for row in rows:
                # Guarded by the same condition: a renewal that landed meanwhile keeps the plan.
                changed = await session.execute(
                    update(Subscription)
                    .where(Subscription.id == row.id, due)
                    .values(status="expired", updated_at=now)
                    .execution_options(synchronize_session=False)
                )
                if getattr(changed, "rowcount", 0) != 1:
                    continue
                current = await entitlements.plan(row.user_id)
                notices.append(
                    PlanNotice(
                        row.id,
                        row.user_id,
                        row.telegram_id,
                        row.locale or row.language_code,
                        "billing.plan.expired",
                        {"plan": self._plan_name(row.plan), "current_plan": current.name},
                    )
                )
            await session.commit()
        return notices

    async def remind(self) -> list[PlanNotice]:
        """A reminder for each plan ending within `remind_before` that will not renew, once per period."""
        now = self.clock()
        notices: list[PlanNotice] = []
        async with self.session_factory() as session:
            rows = (
                await session.execute(
                    select(
                        Subscription.id,
                        Subscription.plan,
                        Subscription.provider,
                        Subscription.user_id,
                        Subscription.current_period_end,
                        User.telegram_id,
                        User.locale,
                        User.language_code,
                    )
                    .join(User, User.id == Subscription.user_id)
                    .where(
                        Subscription.status.in_(("active", "trialing")),
                        Subscription.current_period_end > now,
                        Subscription.current_period_end <= now + self.remind_before,
                        or_(Subscription.provider != STRIPE, Subscription.cancel_at_period_end.is_(True)),
                        of_tenant(Subscription.user_id, self.tenant_id),
                    )
                    .order_by(Subscription.current_period_end)
                    .limit(self.batch)
                )
            ).all()
            purchases = PurchaseService(session, self.catalogue, clock=self.clock)
            for row in rows:
                first = await purchases.record_event(
                    row.provider if row.provider in PROVIDERS else STRIPE,
                    reminder_event_id(row.id, row.current_period_end),
                    "plan.reminder",
                    {"subscription_id": row.id, "user_id": row.user_id},
                )
                if not first:
                    continue
                left = row.current_period_end - now
                notices.append(
                    PlanNotice(
                        row.id,
                        row.user_id,
                        row.telegram_id,
                        row.locale or row.language_code,
                        "billing.plan.ending_soon",
                        {
                            "plan": self._plan_name(row.plan),
                            "until": row.current_period_end.strftime("%Y-%m-%d"),
                            "count": max(1, round(left / timedelta(days=1))),  # days left
                        },
                    )
                )
            await session.commit()
        return notices


__all__ = ["DEFAULT_GRACE", "DEFAULT_REMIND_BEFORE", "PlanNotice", "RenewalService", "reminder_event_id"]
