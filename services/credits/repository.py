"""Queries of the credit ledger: the account row (locked), the append-only entries. Never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import CreditAccount, CreditEntry
from db.repositories._dialect import dialect_insert

ZERO = Decimal(0)
ACCOUNTS: Table = CreditAccount.__table__  # type: ignore[assignment]
ENTRIES: Table = CreditEntry.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class AccountState:
    balance: Decimal
    debt: Decimal
    version: int


class CreditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def account(self, user_id: int) -> AccountState | None:
        """(balance, debt, version) as committed or as this transaction changed it; None before the first
        movement."""
        stmt = select(ACCOUNTS.c.balance, ACCOUNTS.c.debt, ACCOUNTS.c.version).where(
            ACCOUNTS.c.user_id == user_id
        )
        row = (await self.session.execute(stmt)).first()
        return None if row is None else AccountState(row.balance, row.debt, row.version)

    async def lock_account(self, user_id: int, now: datetime) -> AccountState:
        """The account row, locked until the transaction ends (created empty on first use).

        PostgreSQL takes a row lock; SQLite transactions already hold the database's write lock from
        their first statement (`BEGIN IMMEDIATE`, see db.engine)."""
        stmt = (
            select(ACCOUNTS.c.balance, ACCOUNTS.c.debt, ACCOUNTS.c.version)
            .where(ACCOUNTS.c.user_id == user_id)
            .with_for_update()
        )
        row = (await self.session.execute(stmt)).first()
        if row is None:
            await self.session.execute(
                dialect_insert(self.session, ACCOUNTS)
                .values(user_id=user_id, balance=ZERO, debt=ZERO, version=0, updated_at=now)
                .on_conflict_do_nothing(index_elements=[ACCOUNTS.c.user_id])
            )
            row = (await self.session.execute(stmt)).one()
        return AccountState(row.balance, row.debt, row.version)

    async def set_account(
        self, user_id: int, *, version: int, balance: Decimal, debt: Decimal, now: datetime
    ) -> bool:
        """Compare-and-set on the version read under the lock: False when anything changed the row since."""
        result = await self.session.execute(
            update(ACCOUNTS)
            .where(ACCOUNTS.c.user_id == user_id, ACCOUNTS.c.version == version)
            .values(balance=balance, debt=debt, version=version + 1, updated_at=now)
        )
        return bool(getattr(result, "rowcount", 0))

    async def insert_entry(self, **values: Any) -> int | None:
        """Append an entry; None when its idempotency key (or the entry it reverses) is already taken."""
        stmt = dialect_insert(self.session, ENTRIES).values(**values).on_conflict_do_nothing()
        return (await self.session.execute(stmt.returning(ENTRIES.c.id))).scalar_one_or_none()

    async def entry(self, entry_id: int) -> Row[Any] | None:
        return (await self.session.execute(select(ENTRIES).where(ENTRIES.c.id == entry_id))).first()

    async def entry_by_key(self, idempotency_key: str) -> Row[Any] | None:
        stmt = select(ENTRIES).where(ENTRIES.c.idempotency_key == idempotency_key)
        return (await self.session.execute(stmt)).first()

    async def reversal_of(self, entry_id: int) -> Row[Any] | None:
        stmt = select(ENTRIES).where(ENTRIES.c.reversal_of == entry_id)
        return (await self.session.execute(stmt)).first()

    async def entries(self, user_id: int, limit: int) -> list[Row[Any]]:
        stmt = select(ENTRIES).where(ENTRIES.c.user_id == user_id).order_by(ENTRIES.c.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).all())

    async def entries_total(self, user_id: int) -> tuple[Decimal, int]:
        """The sum of the user's entry amounts (exactly, in Python) and their number."""
        stmt = select(ENTRIES.c.amount).where(ENTRIES.c.user_id == user_id)
        amounts = list((await self.session.scalars(stmt)).all())
        return sum(amounts, ZERO), len(amounts)
