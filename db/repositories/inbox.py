"""The inbox of received Telegram updates.

An update is stored (deduplicated by bot and `update_id`) before Telegram gets its 200, and claimed with a
lease by the process that handles it. The claim's `attempts` value is its fencing token: marking the update
done only succeeds for the latest claim, in the same transaction as the handler's own writes, so a handler
whose lease was taken over has its writes rolled back instead of applied twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from db.models import InboxUpdate

PENDING = "pending"
PROCESSING = "processing"
DONE = "done"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class InboxClaim:
    id: int
    bot_id: int
    update_id: int
    payload: dict[str, Any]
    attempt: int


_TABLE: Table = InboxUpdate.__table__  # type: ignore[assignment]
_STORE: dict[str, Any] = {}


def _store_statement(dialect: str) -> Any:
    """Built once per backend: the hot path reuses one statement (and its compiled SQL)."""
    statement = _STORE.get(dialect)
    if statement is None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = _STORE[dialect] = (
            insert(_TABLE)
            .values(
                bot_id=bindparam("p_bot_id"),
                update_id=bindparam("p_update_id"),
                payload=bindparam("p_payload", type_=_TABLE.c.payload.type),
                status=PROCESSING,
                attempts=1,
                locked_until=bindparam("p_locked_until", type_=_TABLE.c.locked_until.type),
                received_at=bindparam("p_received_at", type_=_TABLE.c.received_at.type),
            )
            .on_conflict_do_nothing(index_elements=[_TABLE.c.bot_id, _TABLE.c.update_id])
            .returning(_TABLE.c.id)
        )
    return statement


_FINISH = (
    update(_TABLE)
    .where(
        _TABLE.c.id == bindparam("p_id"),
        _TABLE.c.status == PROCESSING,
        _TABLE.c.attempts == bindparam("p_attempt"),
    )
    .values(
        status=bindparam("p_status"),
        processed_at=bindparam("p_now", type_=_TABLE.c.processed_at.type),
        locked_until=None,
        error=bindparam("p_error"),
    )
)


async def store_claimed(
    connection: AsyncConnection,
    bot_id: int,
    update_id: int,
    payload: dict[str, Any],
    *,
    now: datetime,
    lease: timedelta,
) -> InboxClaim | None:
    """Store a new update already claimed by the caller; None when it was received before.

    Runs on a plain connection (no ORM session): it is the first thing every update costs."""
    result = await connection.execute(
        _store_statement(connection.dialect.name),
        {
            "p_bot_id": bot_id,
            "p_update_id": update_id,
            "p_payload": payload,
            "p_locked_until": now + lease,
            "p_received_at": now,
        },
    )
    row_id = result.scalar_one_or_none()
    if row_id is None:
        return None
    return InboxClaim(id=row_id, bot_id=bot_id, update_id=update_id, payload=payload, attempt=1)


class InboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def store_claimed(
        self, bot_id: int, update_id: int, payload: dict[str, Any], *, now: datetime, lease: timedelta
    ) -> InboxClaim | None:
        """Store a new update already claimed by the caller; None when it was received before."""
        return await store_claimed(
            await self.session.connection(), bot_id, update_id, payload, now=now, lease=lease
        )

    async def claim_due(
        self, bot_id: int, *, now: datetime, lease: timedelta, limit: int, max_attempts: int
    ) -> list[InboxClaim]:
        """Claim updates nobody holds: pending ones and those whose holder's lease ran out."""
        due = (
            select(InboxUpdate.id)
            .where(
                InboxUpdate.bot_id == bot_id,
                InboxUpdate.status.in_((PENDING, PROCESSING)),
                InboxUpdate.attempts < max_attempts,
                or_(InboxUpdate.locked_until.is_(None), InboxUpdate.locked_until < now),
            )
            .order_by(InboxUpdate.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list((await self.session.scalars(due)).all())
        if not ids:
            return []
        stmt = (
            update(InboxUpdate)
            .where(InboxUpdate.id.in_(ids))
            .values(status=PROCESSING, locked_until=now + lease, attempts=InboxUpdate.attempts + 1)
            .returning(InboxUpdate.id, InboxUpdate.update_id, InboxUpdate.payload, InboxUpdate.attempts)
        )
        rows = (await self.session.execute(stmt)).all()
        claims = [
            InboxClaim(id=r.id, bot_id=bot_id, update_id=r.update_id, payload=r.payload, attempt=r.attempts)
            for r in rows
        ]
        claims.sort(key=lambda c: c.update_id)
        return claims

    async def finish(
        self, claim: InboxClaim, *, now: datetime, error: str | None = None, failed: bool = False
    ) -> bool:
        """Close the claim: done (an expected error may be noted) or failed.

        False when a later claim took the update over."""
        connection = await self.session.connection()
        result = await connection.execute(
            _FINISH,
            {
                "p_id": claim.id,
                "p_attempt": claim.attempt,
                "p_status": FAILED if failed else DONE,
                "p_now": now,
                "p_error": error,
            },
        )
        return bool(result.rowcount)

    async def give_up_exhausted(self, bot_id: int, *, max_attempts: int, now: datetime) -> int:
        """Updates that failed `max_attempts` times (a crash each time) are set aside as failed."""
        stmt = (
            update(InboxUpdate)
            .where(
                InboxUpdate.bot_id == bot_id,
                InboxUpdate.status.in_((PENDING, PROCESSING)),
                InboxUpdate.attempts >= max_attempts,
                or_(InboxUpdate.locked_until.is_(None), InboxUpdate.locked_until < now),
            )
            .values(status=FAILED, processed_at=now, locked_until=None, error="too many attempts")
        )
        result = await self.session.execute(stmt)
        return int(getattr(result, "rowcount", 0) or 0)

    async def status_counts(self, bot_id: int | None = None) -> dict[str, int]:
        stmt = select(InboxUpdate.status, func.count()).group_by(InboxUpdate.status)
        if bot_id is not None:
            stmt = stmt.where(InboxUpdate.bot_id == bot_id)
        return {status: int(n) for status, n in (await self.session.execute(stmt)).all()}

    async def get(self, bot_id: int, update_id: int) -> InboxUpdate | None:
        return await self.session.scalar(
            select(InboxUpdate).where(InboxUpdate.bot_id == bot_id, InboxUpdate.update_id == update_id)
        )

    async def release(self, claim: InboxClaim) -> None:
        """Give an unfinished claim back (graceful shutdown), so the next start takes it at once."""
        stmt = (
            update(InboxUpdate)
            .where(
                InboxUpdate.id == claim.id,
                InboxUpdate.status == PROCESSING,
                InboxUpdate.attempts == claim.attempt,
            )
            .values(status=PENDING, locked_until=None, attempts=InboxUpdate.attempts - 1)
        )
        await self.session.execute(stmt)
