"""Queries behind entitlements: the user's running subscriptions, connected live exchanges and metered
use of features. Never commits."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ExchangeAccount, Subscription, UsageCounter
from db.repositories._dialect import dialect_insert

RUNNING_STATUSES = ("active", "trialing")  # a subscription that grants its plan until its period ends
USAGE: Table = UsageCounter.__table__  # type: ignore[assignment]


class BillingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def running_plans(self, user_id: int, now: datetime) -> list[str]:
        """Plan codes of the user's subscriptions that are running and whose period has not ended."""
        stmt = select(Subscription.plan).where(
            Subscription.user_id == user_id,
            Subscription.status.in_(RUNNING_STATUSES),
            Subscription.current_period_end > now,
        )
        return list((await self.session.scalars(stmt)).all())

    async def live_exchanges(self, user_id: int) -> list[str]:
        """The user's connected live exchanges, in the order they were first connected."""
        first = func.min(ExchangeAccount.id)
        stmt = (
            select(ExchangeAccount.exchange)
            .where(
                ExchangeAccount.user_id == user_id,
                ExchangeAccount.is_paper.is_(False),
                ExchangeAccount.removed_at.is_(None),
            )
            .group_by(ExchangeAccount.exchange)
            .order_by(first)
        )
        return list((await self.session.scalars(stmt)).all())

    async def usage(self, user_id: int, feature: str, day: date) -> int:
        stmt = select(USAGE.c.count).where(
            USAGE.c.user_id == user_id, USAGE.c.feature == feature, USAGE.c.day == day
        )
        return int(await self.session.scalar(stmt) or 0)

    async def count_use(self, user_id: int, feature: str, day: date, limit: int | None) -> int | None:
        """Count one use, atomically and only while under `limit` (None: no limit): the new count, or
        None when the limit was already reached."""
        if limit is not None and limit <= 0:
            return None
        insert = dialect_insert(self.session, USAGE).values(
            user_id=user_id, feature=feature, day=day, count=1
        )
        stmt = insert.on_conflict_do_update(
            index_elements=[USAGE.c.user_id, USAGE.c.feature, USAGE.c.day],
            set_={"count": USAGE.c.count + 1},
            where=None if limit is None else USAGE.c.count < limit,
        ).returning(USAGE.c.count)
        value = (await self.session.execute(stmt)).scalar_one_or_none()
        return None if value is None else int(value)
