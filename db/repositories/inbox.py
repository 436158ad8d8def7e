"""The inbox of received Telegram updates.

An update is stored (deduplicated by bot and `update_id`) before Telegram gets its 200, and claimed with a
lease by the process that handles it. The claim's `attempts` value is its fencing token: marking the update
done only succeeds for the latest claim, in the same transaction as the handler's own writes, so a handler
whose lease was taken over has its writes rolled back instead of applied twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from db.batching import NaturalBatcher
from db.models import InboxUpdate, User
from db.native import NativePool

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
_USERS: Table = User.__table__  # type: ignore[assignment]
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


@dataclass(frozen=True, slots=True)
class StoredUpdate:
    """A newly stored update's claim, and the sender's user row when it was asked for.

    `user_row` is None when no user was asked for or none exists yet; `user_looked_up` tells which."""

    claim: InboxClaim
    user_looked_up: bool = False
    user_row: Mapping[str, Any] | None = None


_USER_COLUMNS = tuple(column.name for column in _USERS.c)
_SELECT_USER = select(_USERS).where(
    _USERS.c.tenant_id == bindparam("p_tenant"), _USERS.c.telegram_id == bindparam("p_telegram")
)


def _pg_sql() -> dict[str, str]:
    """The hot path's statements in PostgreSQL's own SQL, for the driver's prepared-statement cache.

    Only table and column names from the models are interpolated; every value is a bound parameter."""
    t, u = _TABLE.name, _USERS.name
    columns = ", ".join(_USER_COLUMNS)
    joined = ", ".join(f"u.{name}" for name in _USER_COLUMNS)
    sender = f"LEFT JOIN {u} AS u ON u.tenant_id = $6 AND u.telegram_id = $7"
    insert = (
        f"INSERT INTO {t} (bot_id, update_id, payload, status, attempts, locked_until, received_at) "  # noqa: S608
        f"VALUES ($1, $2, $3::json, '{PROCESSING}', 1, $4, $5) "
        "ON CONFLICT (bot_id, update_id) DO NOTHING RETURNING id"
    )
    finish = (
        f"UPDATE {t} SET status = $3, processed_at = $4, locked_until = NULL, error = $5 "  # noqa: S608
        f"WHERE id = $1 AND status = '{PROCESSING}' AND attempts = $2"
    )
    return {
        "store": insert,
        # the new row and the sender's user row, in one round trip
        "store_user": (
            f"WITH stored AS ({insert}) SELECT stored.id AS stored_id, {joined} FROM stored {sender}"  # noqa: S608
        ),
        "user": f"SELECT {columns} FROM {u} WHERE tenant_id = $1 AND telegram_id = $2",  # noqa: S608
        "finish": finish,
        # the claim closed and a user's row as it is afterwards, in one round trip
        "finish_user": (
            f"WITH closed AS ({finish} RETURNING id) SELECT (SELECT count(*) FROM closed) AS closed, "  # noqa: S608
            f"{joined} FROM (VALUES (1)) AS one {sender}"
        ),
        # the same, for a batch of items given as arrays (`n` numbers them; NULL keys read no user)
        "store_many": (
            "WITH i AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[], "  # noqa: S608
            "$5::timestamptz[], $6::bigint[], $7::bigint[]) WITH ORDINALITY "
            "AS i(bot_id, update_id, payload, locked_until, received_at, tenant_id, telegram_id, n)), "
            f"stored AS (INSERT INTO {t} (bot_id, update_id, payload, status, attempts, locked_until, "
            f"received_at) SELECT bot_id, update_id, payload::json, '{PROCESSING}', 1, locked_until, "
            "received_at FROM i ORDER BY n ON CONFLICT (bot_id, update_id) DO NOTHING "
            "RETURNING id, bot_id, update_id) "
            f"SELECT i.n, s.id AS stored_id, {joined} FROM i "
            "LEFT JOIN stored AS s ON s.bot_id = i.bot_id AND s.update_id = i.update_id "
            f"LEFT JOIN {u} AS u ON u.tenant_id = i.tenant_id AND u.telegram_id = i.telegram_id ORDER BY i.n"
        ),
        "user_many": (
            f"SELECT i.n, {joined} FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY "  # noqa: S608
            f"AS i(tenant_id, telegram_id, n) LEFT JOIN {u} AS u "
            "ON u.tenant_id = i.tenant_id AND u.telegram_id = i.telegram_id ORDER BY i.n"
        ),
        "finish_many": (
            "WITH i AS (SELECT * FROM unnest($1::bigint[], $2::integer[], $3::text[], $4::timestamptz[], "  # noqa: S608
            "$5::text[], $6::bigint[], $7::bigint[]) WITH ORDINALITY "
            "AS i(id, attempt, status, now, error, tenant_id, telegram_id, n)), "
            f"closed AS (UPDATE {t} AS t SET status = i.status, processed_at = i.now, "
            f"locked_until = NULL, error = i.error FROM i WHERE t.id = i.id AND t.status = '{PROCESSING}' "
            "AND t.attempts = i.attempt RETURNING t.id) "
            f"SELECT i.n, i.id IN (SELECT id FROM closed) AS closed, {joined} FROM i "
            f"LEFT JOIN {u} AS u ON u.tenant_id = i.tenant_id AND u.telegram_id = i.telegram_id ORDER BY i.n"
        ),
    }


_PG = _pg_sql()


@dataclass(frozen=True, slots=True)
class _Store:
    bot_id: int
    update_id: int
    payload: str  # JSON text
    locked_until: datetime
    received_at: datetime
    user: tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class _Finish:
    claim_id: int
    attempt: int
    status: str
    now: datetime
    error: str | None
    user: tuple[int, int] | None


# a stored row's id (None: received before) and the user's row when one was asked for
_Stored = tuple[int | None, Mapping[str, Any] | None]
# whether the claim was closed, and the user's row afterwards when one was asked for
_Closed = tuple[bool, Mapping[str, Any] | None]


def _user_of(record: asyncpg.Record) -> Mapping[str, Any] | None:
    return None if record["id"] is None else {name: record[name] for name in _USER_COLUMNS}


class InboxWriter:
    """The inbox statements every update costs, each in a transaction of its own, without an ORM session.

    On PostgreSQL they run on driver connections of their own (asyncpg) as autocommitted statements,
    batched naturally (`db.batching`): a lone update's statement goes at once; under load, the updates
    that arrive while statements are in flight share the next one. Elsewhere they run through SQLAlchemy
    Core. Closing a claim here is for updates whose handler wrote nothing: a handler's writes go through
    `InboxRepository.finish` on the handler's session instead, so they commit together with the row."""

    def __init__(self, engine: AsyncEngine, *, lanes: int = 2, max_batch: int = 64) -> None:
        self.engine = engine
        # True: each statement is one round trip on a driver connection, cheaper than in a session
        self.native = engine.dialect.name == "postgresql" and engine.dialect.driver == "asyncpg"
        self._pool = NativePool(engine) if self.native else None
        retry = (asyncpg.PostgresError,)  # the server refused the data of one item: the others go on
        self._stores: NaturalBatcher[_Store, _Stored] = NaturalBatcher(
            self._store_one, self._store_many, retry_alone=retry, lanes=lanes, max_batch=max_batch
        )
        self._users: NaturalBatcher[tuple[int, int], Mapping[str, Any] | None] = NaturalBatcher(
            self._user_one, self._user_many, retry_alone=retry, lanes=lanes, max_batch=max_batch
        )
        self._finishes: NaturalBatcher[_Finish, _Closed] = NaturalBatcher(
            self._finish_one, self._finish_many, retry_alone=retry, lanes=lanes, max_batch=max_batch
        )

    @property
    def batchers(self) -> dict[str, NaturalBatcher[Any, Any]]:
        return {"store": self._stores, "user": self._users, "finish": self._finishes}

    def _driver(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        assert self._pool is not None
        return self._pool.connection()

    async def close(self) -> None:
        for batcher in self.batchers.values():
            await batcher.drain()
        if self._pool is not None:
            await self._pool.close()

    async def store(
        self,
        bot_id: int,
        update_id: int,
        payload: dict[str, Any],
        *,
        now: datetime,
        lease: timedelta,
        user: tuple[int, int] | None = None,
    ) -> StoredUpdate | None:
        """Store a new update already claimed by the caller, committed; None when it was received before.

        With `user` (tenant id, Telegram id), that user's row is read along with it."""
        if not self.native:
            return await self._store_core(bot_id, update_id, payload, now=now, lease=lease, user=user)
        item = _Store(bot_id, update_id, json.dumps(payload), now + lease, now, user)
        row_id, row = await self._stores.submit(item)
        if row_id is None:
            return None
        claim = InboxClaim(id=row_id, bot_id=bot_id, update_id=update_id, payload=payload, attempt=1)
        if user is None:
            return StoredUpdate(claim)
        return StoredUpdate(claim, user_looked_up=True, user_row=row)

    async def _store_one(self, item: _Store) -> _Stored:
        args = (item.bot_id, item.update_id, item.payload, item.locked_until, item.received_at)
        async with self._driver() as connection:
            if item.user is None:
                return await connection.fetchval(_PG["store"], *args), None
            record = await connection.fetchrow(_PG["store_user"], *args, *item.user)
        if record is None:
            return None, None
        return record["stored_id"], _user_of(record)

    async def _store_many(self, items: Sequence[_Store]) -> list[_Stored]:
        # an update given twice in one batch is stored by its first item; the others are redeliveries
        first: dict[tuple[int, int], int] = {}
        for index, item in enumerate(items):
            first.setdefault((item.bot_id, item.update_id), index)
        unique = [items[index] for index in sorted(first.values())]
        async with self._driver() as connection:
            records = await connection.fetch(
                _PG["store_many"],
                [i.bot_id for i in unique],
                [i.update_id for i in unique],
                [i.payload for i in unique],
                [i.locked_until for i in unique],
                [i.received_at for i in unique],
                [i.user[0] if i.user else None for i in unique],
                [i.user[1] if i.user else None for i in unique],
            )
        by_key = {
            (item.bot_id, item.update_id): (record["stored_id"], _user_of(record) if item.user else None)
            for item, record in zip(unique, records, strict=True)
        }
        return [
            by_key[(item.bot_id, item.update_id)]
            if first[(item.bot_id, item.update_id)] == index
            else (None, None)
            for index, item in enumerate(items)
        ]

    async def _store_core(
        self,
        bot_id: int,
        update_id: int,
        payload: dict[str, Any],
        *,
        now: datetime,
        lease: timedelta,
        user: tuple[int, int] | None,
    ) -> StoredUpdate | None:
        async with self.engine.begin() as connection:
            claim = await store_claimed(connection, bot_id, update_id, payload, now=now, lease=lease)
            if claim is None or user is None:
                return None if claim is None else StoredUpdate(claim)
            result = await connection.execute(_SELECT_USER, {"p_tenant": user[0], "p_telegram": user[1]})
            row = result.mappings().first()
        return StoredUpdate(claim, user_looked_up=True, user_row=None if row is None else dict(row))

    async def user_row(self, tenant_id: int, telegram_id: int) -> Mapping[str, Any] | None:
        """A user's row, read by one statement of its own (only where `native`: elsewhere a read is no
        cheaper outside the update's session)."""
        if not self.native:
            raise RuntimeError("user_row is for the native driver path")
        return await self._users.submit((tenant_id, telegram_id))

    async def _user_one(self, key: tuple[int, int]) -> Mapping[str, Any] | None:
        async with self._driver() as connection:
            record = await connection.fetchrow(_PG["user"], *key)
        return None if record is None else dict(record.items())

    async def _user_many(self, keys: Sequence[tuple[int, int]]) -> list[Mapping[str, Any] | None]:
        async with self._driver() as connection:
            records = await connection.fetch(
                _PG["user_many"], [key[0] for key in keys], [key[1] for key in keys]
            )
        return [_user_of(record) for record in records]

    async def finish_and_read_user(
        self, claim: InboxClaim, user: tuple[int, int], *, now: datetime
    ) -> tuple[bool, Mapping[str, Any] | None]:
        """Close the claim as done (see `finish`) and read a user's row (tenant id, Telegram id) after it,
        in one statement (only where `native`)."""
        if not self.native:
            raise RuntimeError("finish_and_read_user is for the native driver path")
        return await self._finishes.submit(_Finish(claim.id, claim.attempt, DONE, now, None, user))

    async def finish(
        self, claim: InboxClaim, *, now: datetime, error: str | None = None, failed: bool = False
    ) -> bool:
        """Close the claim in a transaction of its own; False when a later claim took the update over."""
        status = FAILED if failed else DONE
        if not self.native:
            async with self.engine.begin() as connection:
                result = await connection.execute(
                    _FINISH,
                    {
                        "p_id": claim.id,
                        "p_attempt": claim.attempt,
                        "p_status": status,
                        "p_now": now,
                        "p_error": error,
                    },
                )
                return bool(result.rowcount)
        closed, _ = await self._finishes.submit(_Finish(claim.id, claim.attempt, status, now, error, None))
        return closed

    async def _finish_one(self, item: _Finish) -> _Closed:
        args = (item.claim_id, item.attempt, item.status, item.now, item.error)
        async with self._driver() as connection:
            if item.user is None:
                tag = await connection.execute(_PG["finish"], *args)
                return tag.rsplit(" ", 1)[-1] != "0", None
            record = await connection.fetchrow(_PG["finish_user"], *args, *item.user)
        return bool(record["closed"]), _user_of(record)

    async def _finish_many(self, items: Sequence[_Finish]) -> list[_Closed]:
        async with self._driver() as connection:
            records = await connection.fetch(
                _PG["finish_many"],
                [i.claim_id for i in items],
                [i.attempt for i in items],
                [i.status for i in items],
                [i.now for i in items],
                [i.error for i in items],
                [i.user[0] if i.user else None for i in items],
                [i.user[1] if i.user else None for i in items],
            )
        return [
            (bool(record["closed"]), _user_of(record) if item.user else None)
            for item, record in zip(items, records, strict=True)
        ]


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

    async def renew(self, claims: Sequence[InboxClaim], *, until: datetime) -> int:
        """Extend the leases of claims still held (their handlers are still running), so that a long
        handler is not taken over by another process; how many were extended. A claim already closed or
        taken over is left alone (the same fence as `finish`)."""
        by_attempt: dict[int, list[int]] = {}
        for claim in claims:
            by_attempt.setdefault(claim.attempt, []).append(claim.id)
        renewed = 0
        for attempt, ids in by_attempt.items():
            result = await self.session.execute(
                update(InboxUpdate)
                .where(
                    InboxUpdate.id.in_(ids),
                    InboxUpdate.status == PROCESSING,
                    InboxUpdate.attempts == attempt,
                )
                .values(locked_until=until)
            )
            renewed += int(getattr(result, "rowcount", 0) or 0)
        return renewed

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
