"""The credit ledger under concurrency on PostgreSQL: separate sessions racing on one account never spend
a credit twice, never take the balance below zero, and a repeated key is applied once."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db import migrate
from db.engine import create_engine, create_session_factory
from db.models import CreditEntry
from services.credits import Consumption, CreditLedger, LedgerResult
from tests.integration.billing_support import make_users

pytestmark = pytest.mark.postgres
D = Decimal


@pytest.fixture
async def pg_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url, pool_size=10)
    await migrate.upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def factory(pg_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(pg_engine)


async def _consume(
    factory: async_sessionmaker[AsyncSession], user_id: int, profit: Decimal, key: str
) -> Consumption:
    async with factory() as session:
        result = await CreditLedger(session).consume_profit(user_id, profit, key, reference=key)
        await asyncio.sleep(0)  # let the others queue on the lock while this transaction is open
        await session.commit()
        return result


async def _entries(factory: async_sessionmaker[AsyncSession], user_id: int) -> list[CreditEntry]:
    async with factory() as session:
        stmt = select(CreditEntry).where(CreditEntry.user_id == user_id).order_by(CreditEntry.id)
        return list((await session.scalars(stmt)).all())


async def test_100_concurrent_consumptions_within_the_balance(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    (user,) = await make_users(factory)
    async with factory() as session:
        await CreditLedger(session).grant(user, 1000, "purchase", "purchase:1")
        await session.commit()
    rng = random.Random(7)
    profits = [D(rng.randint(1, 9_000_000)).scaleb(-6) for _ in range(100)]  # 0.000001 .. 9 credits each
    results = await asyncio.gather(
        *(_consume(factory, user, profit, f"close:{n}") for n, profit in enumerate(profits))
    )
    assert all(not r.replayed and r.consumed == r.profit and r.uncovered == 0 for r in results)
    async with factory() as session:
        ledger = CreditLedger(session)
        balance = await ledger.balance(user)
        check = await ledger.reconcile(user)
    assert balance.balance == D(1000) - sum(profits) and balance.debt == 0
    assert check.consistent and check.entries == 101 and check.entries_total == balance.balance
    entries = await _entries(factory, user)
    # Serialised on the account row: each entry starts from the balance the previous one left.
    running = D(0)
    for entry in entries:
        running += entry.amount
        assert entry.balance_after == running >= 0 and entry.debt_after == 0


async def test_100_concurrent_consumptions_beyond_the_balance(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    (user,) = await make_users(factory)
    async with factory() as session:
        await CreditLedger(session).grant(user, 50, "purchase", "purchase:1")
        await session.commit()
    results = await asyncio.gather(*(_consume(factory, user, D("0.7"), f"close:{n}") for n in range(100)))
    consumed = sum((r.consumed for r in results), D(0))
    uncovered = sum((r.uncovered for r in results), D(0))
    assert consumed == D(50) and uncovered == D(20)  # 70 of profit: 50 covered, 20 owed
    async with factory() as session:
        ledger = CreditLedger(session)
        balance = await ledger.balance(user)
        check = await ledger.reconcile(user)
    assert (balance.balance, balance.debt) == (0, D(20))
    assert check.consistent and check.entries_total == D(-20)
    entries = await _entries(factory, user)
    assert len(entries) == 101
    assert all(e.balance_after >= 0 and e.debt_after >= 0 for e in entries)
    assert all(e.balance_after == 0 or e.debt_after == 0 for e in entries)


async def test_concurrent_repeats_of_one_key_apply_once(factory: async_sessionmaker[AsyncSession]) -> None:
    (user,) = await make_users(factory)

    async def grant() -> LedgerResult:
        async with factory() as session:
            result = await CreditLedger(session).grant(user, 100, "purchase", "purchase:42")
            await asyncio.sleep(0)
            await session.commit()
            return result

    grants = await asyncio.gather(*(grant() for _ in range(5)))
    assert sum(not g.replayed for g in grants) == 1
    assert len({g.entry.id for g in grants}) == 1
    consumptions = await asyncio.gather(*(_consume(factory, user, D(30), "close:7") for _ in range(5)))
    assert sum(not c.replayed for c in consumptions) == 1
    assert {(c.consumed, c.balance) for c in consumptions} == {(D(30), D(70))}
    async with factory() as session:
        balance = await CreditLedger(session).balance(user)
    assert (balance.balance, balance.debt) == (D(70), 0)
    assert len(await _entries(factory, user)) == 2


async def test_concurrent_refunds_of_one_purchase_reverse_it_once(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    (user,) = await make_users(factory)
    async with factory() as session:
        await CreditLedger(session).grant(user, 100, "purchase", "purchase:1")
        await session.commit()

    async def refund(n: int) -> LedgerResult:
        async with factory() as session:
            result = await CreditLedger(session).reverse("purchase:1", f"refund:{n}")
            await asyncio.sleep(0)
            await session.commit()
            return result

    refunds = await asyncio.gather(*(refund(n) for n in range(5)))
    assert sum(not r.replayed for r in refunds) == 1 and len({r.entry.id for r in refunds}) == 1
    async with factory() as session:
        balance = await CreditLedger(session).balance(user)
    assert (balance.balance, balance.debt) == (0, 0)
    assert len(await _entries(factory, user)) == 2
