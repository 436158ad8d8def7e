"""Credits: the append-only ledger that caps live-trading profit (see `services.credits.ledger`)."""

from services.credits.errors import (
    EntryNotFound,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidCreditAmount,
    NotReversible,
)
from services.credits.ledger import (
    CREDIT_PLACES,
    Consumption,
    CreditBalance,
    CreditEntryView,
    CreditKind,
    CreditLedger,
    CreditStatement,
    LedgerResult,
    Reconciliation,
)

__all__ = [
    "CREDIT_PLACES",
    "Consumption",
    "CreditBalance",
    "CreditEntryView",
    "CreditKind",
    "CreditLedger",
    "CreditStatement",
    "EntryNotFound",
    "IdempotencyConflict",
    "InsufficientCredits",
    "InvalidCreditAmount",
    "LedgerResult",
    "NotReversible",
    "Reconciliation",
]
