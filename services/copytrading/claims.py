"""The fan-out state of a leader action, shared by every process on the database.

A worker claims an action before fanning it out: a conditional UPDATE that succeeds for one worker only
(`fanned_out_at` unset, no live lease), setting `fanout_owner` (a token of this claim) and a lease it renews
while it works. Whoever claims first does the work; the others skip it. A worker that died leaves its lease
to run out, then the sweep (`unfinished`) hands the action to another worker, which replays the copies
(each idempotent by its client order id) and finishes it. The card is posted once: `published_at` is set
by a conditional UPDATE before posting. `finish` sets `fanned_out_at`; the leader's report is sent by the
worker that finished it, so once. `fanout_attempts` counts claims: an action that failed that often is left
alone (and logged), not retried forever.

The same statements serialise on SQLite (one writer) and on PostgreSQL (row lock of the UPDATE, the second
one re-checks the condition after the first commits).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Leader, LeaderAction
from db.scoping import of_tenant
from db.types import utcnow


@dataclass(frozen=True, slots=True)
class Claim:
    action_id: int
    owner: str
    attempt: int  # 1 the first time this action is worked on


class FanOutClaims:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        lease: timedelta = timedelta(seconds=60),
        max_attempts: int = 5,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.session_factory = session_factory
        self.lease = lease
        self.max_attempts = max_attempts
        self.clock = clock

    def _free(self, now: datetime) -> ColumnElement[bool]:
        return or_(LeaderAction.fanout_lease_until.is_(None), LeaderAction.fanout_lease_until < now)

    async def _update(self, action_id: int, *where: Any, **values: Any) -> bool:
        async with self.session_factory() as session:
            result = await session.execute(
                update(LeaderAction)
                .where(LeaderAction.id == action_id, *where)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def claim(self, action_id: int) -> Claim | None:
        """This worker's claim on the action; None when it is finished, held by a live lease, or given up."""
        owner, now = uuid.uuid4().hex, self.clock()
        won = await self._update(
            action_id,
            LeaderAction.fanned_out_at.is_(None),
            LeaderAction.fanout_attempts < self.max_attempts,
            self._free(now),
            fanout_owner=owner,
            fanout_lease_until=now + self.lease,
            fanout_attempts=LeaderAction.fanout_attempts + 1,
        )
        if not won:
            return None
        async with self.session_factory() as session:
            attempt = await session.scalar(
                select(LeaderAction.fanout_attempts).where(LeaderAction.id == action_id)
            )
        return Claim(action_id, owner, int(attempt or 1))

    async def renew(self, claim: Claim) -> bool:
        """Push the lease on; False when the claim was lost (its lease ran out and another took it)."""
        return await self._update(
            claim.action_id,
            LeaderAction.fanout_owner == claim.owner,
            LeaderAction.fanned_out_at.is_(None),
            fanout_lease_until=self.clock() + self.lease,
        )

    async def release(self, claim: Claim) -> bool:
        """Give the action back unfinished (the next sweep takes it again)."""
        return await self._update(
            claim.action_id,
            LeaderAction.fanout_owner == claim.owner,
            LeaderAction.fanned_out_at.is_(None),
            fanout_lease_until=None,
        )

    async def claim_publication(self, claim: Claim) -> bool:
        """True once per action: the one holder allowed to post its card."""
        return await self._update(
            claim.action_id,
            LeaderAction.fanout_owner == claim.owner,
            LeaderAction.published_at.is_(None),
            published_at=self.clock(),
        )

    async def finish(self, claim: Claim) -> bool:
        """Mark the action fanned out; True for the one claim that did (it reports to the leader)."""
        return await self._update(
            claim.action_id,
            LeaderAction.fanout_owner == claim.owner,
            LeaderAction.fanned_out_at.is_(None),
            fanned_out_at=self.clock(),
            fanout_lease_until=None,
        )

    async def unfinished(
        self, tenant_id: int | None = None, *, older_than: timedelta = timedelta(0), limit: int = 500
    ) -> list[int]:
        """Actions (of the tenant's leaders) whose fan-out is not finished and that no live lease holds,
        recorded at least `older_than` ago, oldest first."""
        now = self.clock()
        async with self.session_factory() as session:
            rows = await session.scalars(
                select(LeaderAction.id)
                .where(
                    LeaderAction.fanned_out_at.is_(None),
                    LeaderAction.fanout_attempts < self.max_attempts,
                    self._free(now),
                    LeaderAction.created_at <= now - older_than,
                    LeaderAction.leader_id.in_(select(Leader.id).where(of_tenant(Leader.user_id, tenant_id))),
                )
                .order_by(LeaderAction.id)
                .limit(limit)
            )
            return list(rows)

    async def given_up(self, tenant_id: int | None = None) -> list[int]:
        """Unfinished actions that failed `max_attempts` times (for logs and alerts)."""
        async with self.session_factory() as session:
            rows = await session.scalars(
                select(LeaderAction.id).where(
                    LeaderAction.fanned_out_at.is_(None),
                    LeaderAction.fanout_attempts >= self.max_attempts,
                    LeaderAction.leader_id.in_(select(Leader.id).where(of_tenant(Leader.user_id, tenant_id))),
                )
            )
            return list(rows)
