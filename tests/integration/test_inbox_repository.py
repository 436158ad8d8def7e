from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_session_factory
from db.repositories import InboxRepository
from db.types import utcnow

LEASE = timedelta(seconds=30)


async def test_an_update_is_stored_once(engine: AsyncEngine) -> None:
    factory = create_session_factory(engine)
    payload = {"update_id": 10, "message": {"text": "hi"}}
    async with factory() as session:
        first = await InboxRepository(session).store_claimed(1, 10, payload, now=utcnow(), lease=LEASE)
        await session.commit()
    async with factory() as session:
        second = await InboxRepository(session).store_claimed(1, 10, payload, now=utcnow(), lease=LEASE)
        other_bot = await InboxRepository(session).store_claimed(2, 10, payload, now=utcnow(), lease=LEASE)
        await session.commit()
    assert first is not None and first.attempt == 1
    assert second is None
    assert other_bot is not None


async def test_concurrent_redeliveries_store_one_row(engine: AsyncEngine) -> None:
    factory = create_session_factory(engine)

    async def deliver() -> bool:
        async with factory() as session:
            claim = await InboxRepository(session).store_claimed(
                1, 77, {"update_id": 77}, now=utcnow(), lease=LEASE
            )
            await session.commit()
            return claim is not None

    results = await asyncio.gather(*(deliver() for _ in range(20)))
    assert sum(results) == 1


async def test_expired_lease_is_taken_over_and_the_old_claim_cannot_finish(engine: AsyncEngine) -> None:
    factory = create_session_factory(engine)
    async with factory() as session:
        repo = InboxRepository(session)
        claim = await repo.store_claimed(1, 5, {"update_id": 5}, now=utcnow(), lease=timedelta(seconds=-1))
        await session.commit()
    assert claim is not None
    async with factory() as session:
        taken = await InboxRepository(session).claim_due(
            1, now=utcnow(), lease=LEASE, limit=10, max_attempts=3
        )
        await session.commit()
    assert [c.update_id for c in taken] == [5] and taken[0].attempt == 2
    async with factory() as session:
        assert not await InboxRepository(session).finish(claim, now=utcnow())
        assert await InboxRepository(session).finish(taken[0], now=utcnow())
        await session.commit()
    async with factory() as session:
        assert await InboxRepository(session).claim_due(
            1, now=utcnow(), lease=LEASE, limit=10, max_attempts=3
        ) == []
        assert (await InboxRepository(session).status_counts()) == {"done": 1}


async def test_live_lease_is_not_taken(engine: AsyncEngine) -> None:
    factory = create_session_factory(engine)
    async with factory() as session:
        await InboxRepository(session).store_claimed(1, 6, {"update_id": 6}, now=utcnow(), lease=LEASE)
        await session.commit()
    async with factory() as session:
        assert await InboxRepository(session).claim_due(
            1, now=utcnow(), lease=LEASE, limit=10, max_attempts=3
        ) == []


async def test_poison_update_is_set_aside_after_max_attempts(engine: AsyncEngine) -> None:
    factory = create_session_factory(engine)
    expired = timedelta(seconds=-1)
    async with factory() as session:
        await InboxRepository(session).store_claimed(1, 9, {"update_id": 9}, now=utcnow(), lease=expired)
        await session.commit()
    for _ in range(2):
        async with factory() as session:
            claims = await InboxRepository(session).claim_due(
                1, now=utcnow(), lease=expired, limit=10, max_attempts=3
            )
            await session.commit()
        assert len(claims) == 1
    async with factory() as session:
        repo = InboxRepository(session)
        assert await repo.claim_due(1, now=utcnow(), lease=LEASE, limit=10, max_attempts=3) == []
        assert await repo.give_up_exhausted(1, max_attempts=3, now=utcnow()) == 1
        await session.commit()
        assert await repo.status_counts() == {"failed": 1}


async def test_released_claim_is_picked_up_at_once(engine: AsyncEngine) -> None:
    factory = create_session_factory(engine)
    async with factory() as session:
        repo = InboxRepository(session)
        claim = await repo.store_claimed(1, 3, {"update_id": 3}, now=utcnow(), lease=LEASE)
        assert claim is not None
        await repo.release(claim)
        await session.commit()
    async with factory() as session:
        claims = await InboxRepository(session).claim_due(
            1, now=utcnow(), lease=LEASE, limit=10, max_attempts=3
        )
    assert [c.attempt for c in claims] == [1]
