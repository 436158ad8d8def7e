"""The credit ledger on both backends: grants, profit consumption and debt, purchases settling debt,
refunds, charges, idempotent repeats, and the statement `/credits` shows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import create_session_factory
from db.models import CreditAccount, CreditEntry
from services.credits import (
    CreditKind,
    CreditLedger,
    EntryNotFound,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidCreditAmount,
    NotReversible,
)
from tests.integration.billing_support import make_users

D = Decimal


@pytest.fixture
def factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


@pytest.fixture
async def user_id(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[int]:
    (user,) = await make_users(factory)
    yield user


async def _entries(factory: async_sessionmaker[AsyncSession], user_id: int) -> int:
    async with factory() as session:
        count = await session.scalar(select(func.count()).where(CreditEntry.user_id == user_id))
        return int(count or 0)


async def test_a_new_user_has_nothing(factory: async_sessionmaker[AsyncSession], user_id: int) -> None:
    async with factory() as session:
        ledger = CreditLedger(session)
        balance = await ledger.balance(user_id)
        statement = await ledger.statement(user_id)
    assert (balance.balance, balance.debt) == (0, 0)
    assert not balance.allows_live_entries
    assert statement.entries == () and not statement.allows_live_entries


async def test_grant_then_consume_within_the_balance(
    factory: async_sessionmaker[AsyncSession], user_id: int
) -> None:
    async with factory() as session:
        ledger = CreditLedger(session)
        granted = await ledger.grant(user_id, 100, CreditKind.GRANT, "plan:basic:2026-01", note="Basic")
        consumed = await ledger.consume_profit(user_id, D("12.3456789"), "close:1", reference="position:1")
        await session.commit()
    assert granted.balance == D(100) and not granted.replayed and granted.debt_settled == 0
    # 1:1 from USD, rounded half-up to six places
    assert consumed.profit == D("12.345679") and consumed.consumed == D("12.345679")
    assert consumed.uncovered == 0 and consumed.balance == D("87.654321") and consumed.debt == 0
    assert consumed.entry is not None and consumed.entry.amount == D("-12.345679")
    async with factory() as session:
        ledger = CreditLedger(session)
        balance = await ledger.balance(user_id)
        check = await ledger.reconcile(user_id)
    assert (balance.balance, balance.debt) == (D("87.654321"), 0)
    assert check.consistent and check.entries == 2


async def test_profit_beyond_the_balance_becomes_debt_and_blocks_live_entries(
    factory: async_sessionmaker[AsyncSession], user_id: int
) -> None:
    async with factory() as session:
        ledger = CreditLedger(session)
        await ledger.grant(user_id, 10, "purchase", "purchase:1", reference="purchase:1")
        result = await ledger.consume_profit(user_id, D("25.5"), "close:2", reference="position:2")
        await session.commit()
    assert (result.consumed, result.uncovered) == (D(10), D("15.5"))
    assert (result.balance, result.debt) == (0, D("15.5"))
    async with factory() as session:
        ledger = CreditLedger(session)
        balance = await ledger.balance(user_id)
        # Further profit (a stop-loss or take-profit closing an open position) all goes to debt.
        more = await ledger.consume_profit(user_id, D(2), "close:3")
        await session.commit()
    assert not balance.allows_live_entries
    assert (more.consumed, more.uncovered, more.debt) == (0, D(2), D("17.5"))


async def test_a_purchase_settles_the_debt_first(
    factory: async_sessionmaker[AsyncSession], user_id: int
) -> None:
    async with factory() as session:
        ledger = CreditLedger(session)
        await ledger.consume_profit(user_id, D(30), "close:1")
        bought = await ledger.grant(user_id, 100, CreditKind.PURCHASE, "purchase:7", reference="purchase:7")
        await session.commit()
    assert bought.debt_settled == D(30) and bought.balance_change == D(70)
    assert (bought.balance, bought.debt) == (D(70), 0)
    async with factory() as session:
        ledger = CreditLedger(session)
        small = await ledger.consume_profit(user_id, D(100), "close:2")
        partial = await ledger.grant(user_id, 10, CreditKind.PURCHASE, "purchase:8")
        await session.commit()
        assert (small.balance, small.debt) == (0, D(30))
        assert (partial.balance, partial.debt, partial.debt_settled) == (0, D(20), D(10))
        assert (await ledger.balance(user_id)).allows_live_entries is False
        assert (await ledger.reconcile(user_id)).consistent


async def test_a_loss_consumes_nothing(factory: async_sessionmaker[AsyncSession], user_id: int) -> None:
    async with factory() as session:
        ledger = CreditLedger(session)
        await ledger.grant(user_id, 5, "grant", "g:1")
        loss = await ledger.consume_profit(user_id, D("-40"), "close:loss")
        dust = await ledger.consume_profit(user_id, D("0.0000004"), "close:dust")
        await session.commit()
    assert loss.entry is None and loss.consumed == 0 and loss.balance == D(5)
    assert dust.entry is None and dust.profit == 0
    assert await _entries(factory, user_id) == 1


async def test_repeated_keys_apply_once_and_return_the_original(
    factory: async_sessionmaker[AsyncSession], user_id: int
) -> None:
    async with factory() as session:
        ledger = CreditLedger(session)
        first = await ledger.grant(user_id, 50, "purchase", "purchase:1")
        consumed = await ledger.consume_profit(user_id, D(60), "close:1")
        await session.commit()
    async with factory() as session:
        ledger = CreditLedger(session)
        again = await ledger.grant(user_id, 50, "purchase", "purchase:1")
        consumed_again = await ledger.consume_profit(user_id, D(60), "close:1")
        await session.commit()
    assert again.replayed and again.entry == first.entry and again.balance == D(50)
    assert consumed_again.replayed and consumed_again.entry == consumed.entry
    assert (consumed_again.consumed, consumed_again.uncovered) == (D(50), D(10))
    async with factory() as session:
        balance = await CreditLedger(session).balance(user_id)
    assert (balance.balance, balance.debt) == (0, D(10))
    assert await _entries(factory, user_id) == 2


async def test_a_key_reused_for_something_else_is_refused(
    factory: async_sessionmaker[AsyncSession], user_id: int
) -> None:
    (other,) = await make_users(factory)
    async with factory() as session:
        ledger = CreditLedger(session)
        await ledger.grant(user_id, 50, "purchase", "purchase:1")
        await session.commit()
    for attempt in (
        lambda ledger: ledger.grant(user_id, 51, "purchase", "purchase:1"),
        lambda ledger: ledger.grant(user_id, 50, "grant", "purchase:1"),
        lambda ledger: ledger.grant(other, 50, "purchase", "purchase:1"),
        lambda ledger: ledger.consume_profit(user_id, 50, "purchase:1"),
    ):
        async with factory() as session:
            with pytest.raises(IdempotencyConflict):
                await attempt(CreditLedger(session))
            await session.rollback()
    async with factory() as session:
        ledger = CreditLedger(session)
        assert (await ledger.balance(user_id)).balance == D(50)
        assert (await ledger.balance(other)).balance == 0


async def test_a_refund_reverses_a_purchase_once(
    factory: async_sessionmaker[AsyncSession], user_id: int
) -> None:
    async with factory() as session:
        ledger = CreditLedger(session)
        await ledger.grant(user_id, 100, "purchase", "purchase:1", reference="purchase:1")
        await ledger.consume_profit(user_id, D(40), "close:1")
        refund = await ledger.reverse("purchase:1", "refund:purchase:1", note="chargeback")
        await session.commit()
    # 60 left on the balance, the other 40 were spent on profit: owed now
    assert refund.entry.kind is CreditKind.REFUND and refund.entry.amount == D(-100)
    assert refund.entry.reference == "purchase:1" and refund.entry.reversal_of is not None
    assert (refund.balance, refund.debt, refund.debt_added) == (0, D(40), D(40))
    async with factory() as session:
        ledger = CreditLedger(session)
        same_key = await ledger.reverse("purchase:1", "refund:purchase:1")
        other_key = await ledger.reverse("purchase:1", "refund:again")
        await session.commit()
        balance = await ledger.balance(user_id)
    assert same_key.replayed and other_key.replayed and other_key.entry == refund.entry
    assert (balance.balance, balance.debt) == (0, D(40))
    assert not balance.allows_live_entries
    assert await _entries(factory, user_id) == 3


async def test_a_refund_that_restores_settled_debt(
    factory: async_sessionmaker[AsyncSession], user_id: int
) -> None:
    async with factory() as session:
        ledger = CreditLedger(session)
        await ledger.consume_profit(user_id, D(30), "close:1")
        await ledger.grant(user_id, 100, "purchase", "purchase:1")
        refund = await ledger.reverse("purchase:1", "refund:1")
        await session.commit()
    assert (refund.balance, refund.debt) == (0, D(30))


async def test_only_credits_can_be_reversed(factory: async_sessionmaker[AsyncSession], user_id: int) -> None:
    async with factory() as session:
        ledger = CreditLedger(session)
        await ledger.grant(user_id, 10, "grant", "g:1")
        await ledger.consume_profit(user_id, 1, "close:1")
        await ledger.reverse("g:1", "r:1")
        await session.commit()
        with pytest.raises(NotReversible):
            await ledger.reverse("close:1", "r:2")
        with pytest.raises(NotReversible):
            await ledger.reverse("r:1", "r:3")
        with pytest.raises(EntryNotFound):
            await ledger.reverse("nothing", "r:4")


async def test_a_charge_is_all_or_nothing(factory: async_sessionmaker[AsyncSession], user_id: int) -> None:
    async with factory() as session:
        ledger = CreditLedger(session)
        await ledger.grant(user_id, 3, "grant", "g:1")
        fee = await ledger.charge(user_id, D("2.5"), "fee", "fee:1", reference="signal:9")
        with pytest.raises(InsufficientCredits):
            await ledger.charge(user_id, 1, "fee", "fee:2")
        repeat = await ledger.charge(user_id, D("2.5"), "fee", "fee:1")
        await session.commit()
    assert fee.balance == D("0.5") and repeat.replayed and repeat.entry == fee.entry
    async with factory() as session:
        balance = await CreditLedger(session).balance(user_id)
    assert (balance.balance, balance.debt) == (D("0.5"), 0)


async def test_amounts_are_checked(factory: async_sessionmaker[AsyncSession], user_id: int) -> None:
    async with factory() as session:
        ledger = CreditLedger(session)
        for amount in (0, -5, D("0.0000001"), "NaN", "abc"):
            with pytest.raises(InvalidCreditAmount):
                await ledger.grant(user_id, amount, "grant", "g:bad")
        with pytest.raises(InvalidCreditAmount):
            await ledger.grant(user_id, 1.5, "grant", "g:float")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="kind of credit"):
            await ledger.grant(user_id, 5, "consumption", "g:kind")
        with pytest.raises(ValueError, match="idempotency key"):
            await ledger.grant(user_id, 5, "grant", "")
    assert await _entries(factory, user_id) == 0


async def test_statement_lists_the_latest_entries_first(
    factory: async_sessionmaker[AsyncSession], user_id: int
) -> None:
    moment = datetime(2026, 3, 1, 12, tzinfo=UTC)
    async with factory() as session:
        ledger = CreditLedger(session, clock=lambda: moment)
        await ledger.grant(user_id, 100, "grant", "plan:basic:2026-03", note="Basic plan")
        for n in range(12):
            await ledger.consume_profit(user_id, D("1.25"), f"close:{n}", reference=f"position:{n}")
        await session.commit()
    async with factory() as session:
        statement = await CreditLedger(session).statement(user_id, limit=5)
    assert (statement.balance, statement.debt) == (D(85), 0) and statement.allows_live_entries
    assert [e.reference for e in statement.entries] == [f"position:{n}" for n in (11, 10, 9, 8, 7)]
    assert statement.entries[0].balance_after == D(85) and statement.entries[0].created_at == moment
    assert all(e.kind is CreditKind.CONSUMPTION and e.amount == D("-1.25") for e in statement.entries)


async def test_the_ledger_joins_the_callers_transaction(
    factory: async_sessionmaker[AsyncSession], user_id: int
) -> None:
    async with factory() as session:
        ledger = CreditLedger(session)
        await ledger.grant(user_id, 10, "grant", "g:1")
        await session.rollback()  # the caller's unit of work failed: nothing happened
    async with factory() as session:
        ledger = CreditLedger(session)
        assert (await ledger.balance(user_id)).balance == 0
        assert not (await ledger.grant(user_id, 10, "grant", "g:1")).replayed
        await session.commit()


async def test_entries_are_append_only_and_the_balance_never_negative(
    factory: async_sessionmaker[AsyncSession], user_id: int
) -> None:
    async with factory() as session:
        await CreditLedger(session).grant(user_id, 10, "grant", "g:1")
        await session.commit()
    async with factory() as session:
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text("UPDATE credit_entries SET note = 'x'"))
        await session.rollback()
    for values in ({"balance": D(-1)}, {"debt": D(-1)}, {"balance": D(1), "debt": D(1)}):
        async with factory() as session:
            with pytest.raises(IntegrityError):
                await session.execute(
                    CreditAccount.__table__.update()  # type: ignore[attr-defined]
                    .where(CreditAccount.user_id == user_id)
                    .values(**values)
                )
            await session.rollback()
