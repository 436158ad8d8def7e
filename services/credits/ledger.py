"""The credit ledger: credits bought, granted, consumed by live-trading profit, charged, refunded.

Model
-----
* A user's credit account holds a `balance` and a `debt`, both never negative and never both positive
  (database CHECKs). Their difference, `balance - debt`, is the user's net position.
* Every movement appends one entry whose signed `amount` is the change of the net position, with the
  balance and debt after it. The entries of a user therefore always sum to `balance - debt`.
* A credit (grant, purchase, positive adjustment) pays the debt first and adds the rest to the balance.
  A debit (profit consumption, refund of a grant) takes what the balance holds and records the rest as
  debt. A charge (fee, negative adjustment) is all-or-nothing: refused when the balance does not cover it.
* Live entries are allowed only with a positive balance (which implies no debt): see `CreditBalance`.

Precision: credits have six decimal places. Amounts given with more places are refused, except realised
profit, which converts 1:1 from USD to credits rounded half-up to the sixth place.

Idempotency: every movement has a unique key. Repeating a key returns the original movement (marked
`replayed`) and applies nothing, also when the repeats race: each movement locks the account row (a row
lock on PostgreSQL; SQLite transactions hold the write lock from their first statement), appends its entry
with `ON CONFLICT DO NOTHING` and only then updates the balance, compare-and-set on the row's version. A
repeated key is never an error in the caller's transaction, so no savepoint is needed.

Transactions: the ledger never commits. Its writes join the caller's unit of work (closing a position and
consuming its profit commit together); the account row stays locked until that commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from db.types import utcnow
from services.credits.errors import (
    EntryNotFound,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidCreditAmount,
    NotReversible,
)
from services.credits.repository import CreditRepository

CREDIT_PLACES = 6
CREDIT_QUANTUM = Decimal(1).scaleb(-CREDIT_PLACES)  # 0.000001
ZERO = Decimal(0).quantize(CREDIT_QUANTUM)
MAX_KEY_LENGTH = 128
MAX_REFERENCE_LENGTH = 64
MAX_NOTE_LENGTH = 255


class CreditKind(StrEnum):
    GRANT = "grant"  # credits included in a plan, promotional credits
    PURCHASE = "purchase"  # a credit pack paid for
    CONSUMPTION = "consumption"  # realised profit of a live trade
    FEE = "fee"  # a charge for a service
    REFUND = "refund"  # the reversal of a grant or a purchase
    ADJUSTMENT = "adjustment"  # a correction by an operator, either way


CREDIT_KINDS = frozenset({CreditKind.GRANT, CreditKind.PURCHASE, CreditKind.ADJUSTMENT})
CHARGE_KINDS = frozenset({CreditKind.FEE, CreditKind.ADJUSTMENT})


def _money(value: Decimal) -> Decimal:
    """Six places, and never a negative zero."""
    value = value.quantize(CREDIT_QUANTUM)
    return ZERO if value == 0 else value


def credit_amount(value: Decimal | int | str) -> Decimal:
    """A positive number of credits with at most six places (refused otherwise, never rounded)."""
    if isinstance(value, float):
        raise InvalidCreditAmount(amount=str(value))
    try:
        number = Decimal(value)
    except ArithmeticError:
        raise InvalidCreditAmount(amount=str(value)) from None
    if not number.is_finite() or number <= 0 or number != number.quantize(CREDIT_QUANTUM):
        raise InvalidCreditAmount(amount=str(value))
    return _money(number)


def profit_credits(profit_usd: Decimal | int | str) -> Decimal:
    """Realised profit in USD as credits: 1:1, rounded half-up to six places (zero for a loss)."""
    if isinstance(profit_usd, float):
        raise InvalidCreditAmount(amount=str(profit_usd))
    number = Decimal(profit_usd)
    if not number.is_finite():
        raise InvalidCreditAmount(amount=str(profit_usd))
    if number <= 0:
        return ZERO
    return _money(number.quantize(CREDIT_QUANTUM, rounding=ROUND_HALF_UP))


def split(net: Decimal) -> tuple[Decimal, Decimal]:
    """(balance, debt) of a net position."""
    return (_money(net), ZERO) if net > 0 else (ZERO, _money(-net))


@dataclass(frozen=True, slots=True)
class CreditBalance:
    balance: Decimal
    debt: Decimal

    @property
    def net(self) -> Decimal:
        return self.balance - self.debt

    @property
    def allows_live_entries(self) -> bool:
        """New live entries need credits left to cover their profit: a positive balance and no debt."""
        return self.balance > 0 and self.debt == 0


@dataclass(frozen=True, slots=True)
class CreditEntryView:
    id: int
    user_id: int
    kind: CreditKind
    amount: Decimal  # signed change of balance - debt
    balance_after: Decimal
    debt_after: Decimal
    idempotency_key: str
    reference: str | None
    note: str | None
    reversal_of: int | None
    created_at: datetime

    @property
    def balance_before(self) -> Decimal:
        return split(self.balance_after - self.debt_after - self.amount)[0]

    @property
    def debt_before(self) -> Decimal:
        return split(self.balance_after - self.debt_after - self.amount)[1]


@dataclass(frozen=True, slots=True)
class LedgerResult:
    """One movement: the entry (the original one when `replayed`) and what it did."""

    entry: CreditEntryView
    replayed: bool  # the key had been used before: nothing was applied this time

    @property
    def balance(self) -> Decimal:
        """The balance right after this movement (not necessarily the current one when replayed)."""
        return self.entry.balance_after

    @property
    def debt(self) -> Decimal:
        return self.entry.debt_after

    @property
    def debt_settled(self) -> Decimal:
        """How much debt this movement paid off (credits)."""
        return max(self.entry.debt_before - self.entry.debt_after, ZERO)

    @property
    def debt_added(self) -> Decimal:
        return max(self.entry.debt_after - self.entry.debt_before, ZERO)

    @property
    def balance_change(self) -> Decimal:
        return self.entry.balance_after - self.entry.balance_before


@dataclass(frozen=True, slots=True)
class Consumption:
    """Credits consumed by a realised profit; what the balance did not cover became debt."""

    profit: Decimal  # in credits (= USD)
    consumed: Decimal
    uncovered: Decimal  # added to the debt
    balance: Decimal
    debt: Decimal
    entry: CreditEntryView | None  # None when there was no profit to cover
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class CreditStatement:
    """What `/credits` shows: the balance, the debt and the latest entries, newest first."""

    balance: Decimal
    debt: Decimal
    entries: tuple[CreditEntryView, ...]

    @property
    def allows_live_entries(self) -> bool:
        return CreditBalance(self.balance, self.debt).allows_live_entries


@dataclass(frozen=True, slots=True)
class Reconciliation:
    balance: Decimal
    debt: Decimal
    entries_total: Decimal
    entries: int

    @property
    def consistent(self) -> bool:
        return self.entries_total == self.balance - self.debt


def _view(row: Row[Any]) -> CreditEntryView:
    return CreditEntryView(
        id=row.id,
        user_id=row.user_id,
        kind=CreditKind(row.kind),
        amount=_money(row.amount),
        balance_after=_money(row.balance_after),
        debt_after=_money(row.debt_after),
        idempotency_key=row.idempotency_key,
        reference=row.reference,
        note=row.note,
        reversal_of=row.reversal_of,
        created_at=row.created_at,
    )


def _check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"an idempotency key has 1 to {MAX_KEY_LENGTH} characters")
    return key


def _check_text(value: str | None, limit: int, what: str) -> str | None:
    if value is not None and len(value) > limit:
        raise ValueError(f"a ledger {what} has at most {limit} characters")
    return value


class CreditLedger:
    def __init__(self, session: AsyncSession, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.session = session
        self.repo = CreditRepository(session)
        self.clock = clock

    # ---------------------------------------------------------------------------------------- movements

    async def grant(
        self,
        user_id: int,
        amount: Decimal | int | str,
        kind: CreditKind | str,
        idempotency_key: str,
        reference: str | None = None,
        note: str | None = None,
    ) -> LedgerResult:
        """Credit the account (a plan's monthly credits, a purchased pack, a positive adjustment): the
        debt is paid first, the rest is added to the balance."""
        kind = CreditKind(kind)
        if kind not in CREDIT_KINDS:
            raise ValueError(f"{kind} is not a kind of credit")
        value = credit_amount(amount)
        return await self._move(user_id, kind, value, idempotency_key, reference, note)

    async def charge(
        self,
        user_id: int,
        amount: Decimal | int | str,
        kind: CreditKind | str,
        idempotency_key: str,
        reference: str | None = None,
        note: str | None = None,
    ) -> LedgerResult:
        """Debit the balance all or nothing (a fee, a negative adjustment); `InsufficientCredits` when the
        balance does not cover it. Never creates debt."""
        kind = CreditKind(kind)
        if kind not in CHARGE_KINDS:
            raise ValueError(f"{kind} is not a kind of charge")
        value = credit_amount(amount)
        return await self._move(user_id, kind, -value, idempotency_key, reference, note, covered=True)

    async def consume_profit(
        self,
        user_id: int,
        profit_usd: Decimal | int | str,
        idempotency_key: str,
        reference: str | None = None,
        note: str | None = None,
    ) -> Consumption:
        """Consume credits for the realised profit of a live trade: min(balance, profit) is consumed and
        the rest becomes debt. A loss or a zero profit consumes nothing and writes no entry."""
        _check_key(idempotency_key)
        profit = profit_credits(profit_usd)
        if profit == 0:
            current = await self.balance(user_id)
            return Consumption(
                profit=ZERO,
                consumed=ZERO,
                uncovered=ZERO,
                balance=current.balance,
                debt=current.debt,
                entry=None,
            )
        result = await self._move(user_id, CreditKind.CONSUMPTION, -profit, idempotency_key, reference, note)
        entry = result.entry
        return Consumption(
            profit=profit,
            consumed=entry.balance_before - entry.balance_after,
            uncovered=entry.debt_after - entry.debt_before,
            balance=entry.balance_after,
            debt=entry.debt_after,
            entry=entry,
            replayed=result.replayed,
        )

    async def reverse(
        self, idempotency_key_of_original: str, new_key: str, note: str | None = None
    ) -> LedgerResult:
        """Reverse a credit (a refunded purchase, a withdrawn grant). What the balance no longer holds
        becomes debt, which blocks new live entries until it is paid. A credit is reversed at most once:
        reversing it again, under any key, returns the first reversal as `replayed`."""
        original_row = await self.repo.entry_by_key(_check_key(idempotency_key_of_original))
        if original_row is None:
            raise EntryNotFound(key=idempotency_key_of_original)
        original = _view(original_row)
        if original.kind not in CREDIT_KINDS or original.amount <= 0:
            raise NotReversible(kind=original.kind.value)
        return await self._move(
            original.user_id,
            CreditKind.REFUND,
            -original.amount,
            new_key,
            original.reference,
            note,
            reversal_of=original.id,
        )

    # ------------------------------------------------------------------------------------------ reading

    async def balance(self, user_id: int) -> CreditBalance:
        row = await self.repo.account(user_id)
        if row is None:
            return CreditBalance(ZERO, ZERO)
        return CreditBalance(_money(row.balance), _money(row.debt))

    async def statement(self, user_id: int, limit: int = 10) -> CreditStatement:
        current = await self.balance(user_id)
        rows = await self.repo.entries(user_id, limit) if limit > 0 else []
        return CreditStatement(
            balance=current.balance, debt=current.debt, entries=tuple(_view(row) for row in rows)
        )

    async def entry(self, idempotency_key: str) -> CreditEntryView | None:
        row = await self.repo.entry_by_key(idempotency_key)
        return None if row is None else _view(row)

    async def reconcile(self, user_id: int) -> Reconciliation:
        """The account against its entries: they must sum to balance - debt."""
        current = await self.balance(user_id)
        total, count = await self.repo.entries_total(user_id)
        return Reconciliation(
            balance=current.balance, debt=current.debt, entries_total=_money(total), entries=count
        )

    # -------------------------------------------------------------------------------------------- core

    async def _move(
        self,
        user_id: int,
        kind: CreditKind,
        delta: Decimal,
        key: str,
        reference: str | None,
        note: str | None,
        *,
        covered: bool = False,
        reversal_of: int | None = None,
    ) -> LedgerResult:
        _check_key(key)
        _check_text(reference, MAX_REFERENCE_LENGTH, "reference")
        _check_text(note, MAX_NOTE_LENGTH, "note")
        now = self.clock()
        account = await self.repo.lock_account(user_id, now)
        if covered:
            # A charge checks its key before the balance: a repeat returns the original charge even when
            # the balance could not pay for it again.
            existing = await self.repo.entry_by_key(key)
            if existing is not None:
                return self._replay(existing, user_id, kind, delta, reversal_of)
            if account.balance < -delta:
                raise InsufficientCredits(balance=_money(account.balance), amount=-delta)
        balance, debt = split(account.balance - account.debt + delta)
        entry_id = await self.repo.insert_entry(
            user_id=user_id,
            kind=kind.value,
            amount=delta,
            balance_after=balance,
            debt_after=debt,
            idempotency_key=key,
            reference=reference,
            reversal_of=reversal_of,
            note=note,
            created_at=now,
        )
        if entry_id is None:
            existing = await self.repo.entry_by_key(key)
            if existing is None and reversal_of is not None:
                existing = await self.repo.reversal_of(reversal_of)
            if existing is None:  # pragma: no cover - a unique constraint fired on neither column
                raise IdempotencyConflict(key=key)
            return self._replay(existing, user_id, kind, delta, reversal_of)
        if not await self.repo.set_account(
            user_id, version=account.version, balance=balance, debt=debt, now=now
        ):
            raise RuntimeError(f"credit account {user_id} changed while locked")
        entry = CreditEntryView(
            id=entry_id,
            user_id=user_id,
            kind=kind,
            amount=delta,
            balance_after=balance,
            debt_after=debt,
            idempotency_key=key,
            reference=reference,
            note=note,
            reversal_of=reversal_of,
            created_at=now,
        )
        return LedgerResult(entry=entry, replayed=False)

    @staticmethod
    def _replay(
        row: Row[Any], user_id: int, kind: CreditKind, delta: Decimal, reversal_of: int | None
    ) -> LedgerResult:
        entry = _view(row)
        same = entry.user_id == user_id and entry.kind == kind and entry.amount == delta
        if reversal_of is not None:
            same = same and entry.reversal_of == reversal_of
        if not same:
            raise IdempotencyConflict(key=entry.idempotency_key)
        return LedgerResult(entry=entry, replayed=True)
