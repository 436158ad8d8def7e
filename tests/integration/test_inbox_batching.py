"""The inbox statements batched on PostgreSQL: the same outcomes as one statement per update."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from db import migrate
from db.engine import create_engine, create_session_factory
from db.models import InboxUpdate, Tenant, User
from db.repositories.inbox import DONE, FAILED, PROCESSING, InboxClaim, InboxWriter, StoredUpdate
from db.types import utcnow

pytestmark = pytest.mark.postgres

LEASE = timedelta(seconds=30)
BOT = 42


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url)
    await migrate.upgrade(engine)
    yield engine
    await engine.dispose()


async def _tenant_with_users(engine: AsyncEngine, telegram_ids: range) -> int:
    async with create_session_factory(engine)() as session:
        tenant = Tenant(slug="t", name="T", default_locale="en", bot_id=BOT)
        session.add(tenant)
        await session.flush()
        session.add_all(User(tenant_id=tenant.id, telegram_id=t, first_name=f"U{t}") for t in telegram_ids)
        await session.commit()
        return tenant.id


async def _rows(engine: AsyncEngine) -> dict[int, InboxUpdate]:
    async with create_session_factory(engine)() as session:
        return {row.update_id: row for row in await session.scalars(select(InboxUpdate))}


async def test_a_crowd_of_stores_shares_statements_and_each_gets_its_claim_and_sender(
    pg: AsyncEngine,
) -> None:
    tenant_id = await _tenant_with_users(pg, range(1000, 1030))
    writer = InboxWriter(pg, lanes=1)
    now = utcnow()

    async def store(update_id: int, telegram_id: int | None) -> StoredUpdate | None:
        user = (tenant_id, telegram_id) if telegram_id is not None else None
        return await writer.store(BOT, update_id, {"update_id": update_id}, now=now, lease=LEASE, user=user)

    # users 1000..1029 exist, 2000..2009 do not; some updates name no sender; update 7 comes twice
    calls = [store(i, 1000 + i) for i in range(30)] + [store(100 + i, 2000 + i) for i in range(10)]
    calls += [store(200 + i, None) for i in range(5)] + [store(7, 1007)]
    stored = await asyncio.gather(*calls)
    try:
        assert writer.batchers["store"].batches < len(calls) / 2  # shared statements, not one each
        new = [s for s in stored if s is not None]
        assert len(new) == 45 and stored[-1] is None  # the second delivery of update 7 is a redelivery
        by_update = {s.claim.update_id: s for s in new}
        row = by_update[5].user_row
        assert by_update[5].user_looked_up and row is not None and row["first_name"] == "U1005"
        assert by_update[103].user_looked_up and by_update[103].user_row is None
        assert not by_update[201].user_looked_up
        rows = await _rows(pg)
        assert len(rows) == 45 and {r.status for r in rows.values()} == {PROCESSING}
        assert all(rows[u].id == s.claim.id for u, s in by_update.items())
        # stored again later, each one alone or together: all redeliveries
        again = await asyncio.gather(*(store(i, 1000 + i) for i in range(30)))
        assert again == [None] * 30
    finally:
        await writer.close()


async def test_batched_finishes_close_current_claims_only_and_read_senders_after(pg: AsyncEngine) -> None:
    tenant_id = await _tenant_with_users(pg, range(1000, 1010))
    writer = InboxWriter(pg, lanes=1)
    now = utcnow()
    stored = await asyncio.gather(
        *(writer.store(BOT, i, {"update_id": i}, now=now, lease=LEASE) for i in range(20))
    )
    claims = [s.claim for s in stored if s is not None]
    assert len(claims) == 20
    stale = InboxClaim(id=claims[3].id, bot_id=BOT, update_id=3, payload={}, attempt=2)  # a later attempt's
    try:
        plain, read, unknown = await asyncio.gather(
            asyncio.gather(
                *(writer.finish(c, now=now) for c in claims[:3]),
                writer.finish(stale, now=now),
                *(writer.finish(c, now=now, error="boom", failed=True) for c in claims[4:8]),
            ),
            asyncio.gather(
                *(
                    writer.finish_and_read_user(c, (tenant_id, 1000 + i), now=now)
                    for i, c in enumerate(claims[8:14])
                )
            ),
            asyncio.gather(
                *(writer.finish_and_read_user(c, (tenant_id, 5000), now=now) for c in claims[14:16])
            ),
        )
        assert plain == [True, True, True, False, True, True, True, True]  # the stale attempt closes nothing
        assert [closed for closed, _ in read] == [True] * 6
        assert [row["telegram_id"] for _, row in read if row is not None] == list(range(1000, 1006))
        assert unknown == [(True, None), (True, None)]
        assert writer.batchers["finish"].batches < 16
        # a claim closes once: a second finish of the same claim changes nothing
        assert await asyncio.gather(*(writer.finish(c, now=now) for c in claims[:3])) == [False] * 3
        rows = await _rows(pg)
        assert {rows[i].status for i in range(3)} == {DONE}
        assert rows[3].status == PROCESSING  # the stale attempt did not close it
        assert {rows[i].status for i in range(4, 8)} == {FAILED} and rows[5].error == "boom"
        assert {rows[i].status for i in range(16, 20)} == {PROCESSING}
    finally:
        await writer.close()


async def test_batched_user_reads_answer_each_caller(pg: AsyncEngine) -> None:
    tenant_id = await _tenant_with_users(pg, range(1000, 1040))
    writer = InboxWriter(pg, lanes=1)
    try:
        keys = [(tenant_id, 1000 + i) for i in range(40)] + [(tenant_id, 9999), (tenant_id + 1, 1000)]
        rows = await asyncio.gather(*(writer.user_row(*key) for key in keys))
        assert [row["first_name"] for row in rows[:40] if row is not None] == [
            f"U{1000 + i}" for i in range(40)
        ]
        assert rows[40:] == [None, None]
        assert writer.batchers["user"].batches < 10
    finally:
        await writer.close()


async def test_an_update_the_server_refuses_fails_alone(pg: AsyncEngine) -> None:
    writer = InboxWriter(pg, lanes=1)
    now = utcnow()
    try:
        good = {"update_id": 1}
        # Python's json writes NaN, which PostgreSQL's json type refuses
        bad = {"update_id": 2, "message": {"score": float("nan")}}
        results = await asyncio.gather(
            writer.store(BOT, 0, good, now=now, lease=LEASE),
            writer.store(BOT, 1, good, now=now, lease=LEASE),
            writer.store(BOT, 2, bad, now=now, lease=LEASE),
            writer.store(BOT, 3, good, now=now, lease=LEASE),
            return_exceptions=True,
        )
        assert [type(r).__name__ for r in results].count("StoredUpdate") == 3
        assert isinstance(results[2], Exception)
        assert sorted(await _rows(pg)) == [0, 1, 3]
    finally:
        await writer.close()
