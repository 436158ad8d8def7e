"""Errors of the credit ledger."""

from __future__ import annotations

from services.errors import AppError, NotFoundError, ValidationError


class InvalidCreditAmount(ValidationError):
    """An amount that is not positive or has more places than credits keep (six)."""

    message_key = "credits.errors.invalid_amount"


class InsufficientCredits(ValidationError):
    """A charge larger than the balance (params: balance, amount)."""

    message_key = "credits.errors.insufficient"


class EntryNotFound(NotFoundError):
    message_key = "credits.errors.entry_not_found"


class NotReversible(ValidationError):
    """Only credits given (grants, purchases, positive adjustments) can be reversed."""

    message_key = "credits.errors.not_reversible"


class IdempotencyConflict(AppError):
    """An idempotency key already used for a different operation (another user, kind or amount): a bug in
    the caller, never applied."""

    message_key = "errors.internal"
