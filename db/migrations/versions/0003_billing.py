"""billing: credit accounts and ledger, purchases, subscriptions, payment events, usage counters

Revision ID: 0003_billing
Revises: 0002_trading
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.types import BigIntPK, Money, UTCDateTime

revision: str = "0003_billing"
down_revision: str | None = "0002_trading"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CREDIT_ENTRY_KINDS = "kind IN ('grant', 'purchase', 'consumption', 'fee', 'refund', 'adjustment')"
PROVIDERS = "provider IN ('telegram_stars', 'telegram_fiat', 'stripe')"

# Ledger rows are append-only: the database refuses to change one.
APPEND_ONLY_MESSAGE = "credit_entries is append-only"
POSTGRES_APPEND_ONLY = [
    f"""
    CREATE FUNCTION credit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}';
    END;
    $$
    """,
    """
    CREATE TRIGGER credit_entries_append_only BEFORE UPDATE ON credit_entries
    FOR EACH ROW EXECUTE FUNCTION credit_entries_append_only()
    """,
]
SQLITE_APPEND_ONLY = [
    f"""
    CREATE TRIGGER credit_entries_append_only BEFORE UPDATE ON credit_entries
    BEGIN
        SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}');
    END
    """,
]


def upgrade() -> None:
    op.create_table(
        "credit_accounts",
        sa.Column("user_id", BigIntPK, nullable=False),
        sa.Column("balance", Money(), nullable=False),
        sa.Column("debt", Money(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_credit_accounts_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_credit_accounts")),
        sa.CheckConstraint(
            "CAST(balance AS NUMERIC) >= 0", name=op.f("ck_credit_accounts_balance_not_negative")
        ),
        sa.CheckConstraint("CAST(debt AS NUMERIC) >= 0", name=op.f("ck_credit_accounts_debt_not_negative")),
        sa.CheckConstraint(
            "CAST(balance AS NUMERIC) = 0 OR CAST(debt AS NUMERIC) = 0",
            name=op.f("ck_credit_accounts_balance_or_debt"),
        ),
    )
    op.create_table(
        "credit_entries",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("user_id", BigIntPK, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("balance_after", Money(), nullable=False),
        sa.Column("debt_after", Money(), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("reference", sa.String(64), nullable=True),
        sa.Column("reversal_of", BigIntPK, nullable=True),
        sa.Column("note", sa.String(255), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_entries")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_credit_entries_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["reversal_of"], ["credit_entries.id"], name=op.f("fk_credit_entries_reversal_of_credit_entries")
        ),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_credit_entries_idempotency_key")),
        sa.UniqueConstraint("reversal_of", name=op.f("uq_credit_entries_reversal_of")),
        sa.CheckConstraint(CREDIT_ENTRY_KINDS, name=op.f("ck_credit_entries_kind")),
    )
    op.create_index(op.f("ix_credit_entries_user_id_id"), "credit_entries", ["user_id", "id"])
    op.create_table(
        "purchases",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("user_id", BigIntPK, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("item_code", sa.String(32), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("credits", Money(), nullable=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider_charge_id", sa.String(255), nullable=True),
        sa.Column("provider_session_id", sa.String(255), nullable=True),
        sa.Column("provider_payment_id", sa.String(255), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("paid_at", UTCDateTime(), nullable=True),
        sa.Column("refunded_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchases")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_purchases_user_id_users"), ondelete="RESTRICT"
        ),
        sa.UniqueConstraint("provider_charge_id", name=op.f("uq_purchases_provider_charge_id")),
        sa.UniqueConstraint("provider_session_id", name=op.f("uq_purchases_provider_session_id")),
        sa.UniqueConstraint("provider_payment_id", name=op.f("uq_purchases_provider_payment_id")),
        sa.CheckConstraint("kind IN ('pack', 'plan')", name=op.f("ck_purchases_kind")),
        sa.CheckConstraint(PROVIDERS, name=op.f("ck_purchases_provider")),
        sa.CheckConstraint(
            "status IN ('pending', 'paid', 'refunded', 'failed')", name=op.f("ck_purchases_status")
        ),
    )
    op.create_index(op.f("ix_purchases_user_id_created_at"), "purchases", ["user_id", "created_at"])
    op.create_table(
        "subscriptions",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("user_id", BigIntPK, nullable=False),
        sa.Column("plan", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("current_period_start", UTCDateTime(), nullable=True),
        sa.Column("current_period_end", UTCDateTime(), nullable=False),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column("stripe_customer_id", sa.String(255), nullable=True),
        sa.Column("stripe_subscription_id", sa.String(255), nullable=True),
        sa.Column("telegram_charge_id", sa.String(255), nullable=True),
        sa.Column("purchase_id", BigIntPK, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("canceled_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_subscriptions_user_id_users"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["purchase_id"],
            ["purchases.id"],
            name=op.f("fk_subscriptions_purchase_id_purchases"),
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("stripe_subscription_id", name=op.f("uq_subscriptions_stripe_subscription_id")),
    )
    op.create_index(op.f("ix_subscriptions_user_id_status"), "subscriptions", ["user_id", "status"])
    op.create_index(op.f("ix_subscriptions_stripe_customer_id"), "subscriptions", ["stripe_customer_id"])
    op.create_table(
        "payment_events",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("purchase_id", BigIntPK, nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("processed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_events")),
        sa.ForeignKeyConstraint(
            ["purchase_id"],
            ["purchases.id"],
            name=op.f("fk_payment_events_purchase_id_purchases"),
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("provider", "event_id", name=op.f("uq_payment_events_provider_event_id")),
        sa.CheckConstraint(PROVIDERS, name=op.f("ck_payment_events_provider")),
    )
    op.create_index(op.f("ix_payment_events_purchase_id"), "payment_events", ["purchase_id"])
    op.create_table(
        "usage_counters",
        sa.Column("user_id", BigIntPK, nullable=False),
        sa.Column("feature", sa.String(32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "feature", "day", name=op.f("pk_usage_counters")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_usage_counters_user_id_users"), ondelete="CASCADE"
        ),
    )
    statements = POSTGRES_APPEND_ONLY if op.get_context().dialect.name == "postgresql" else SQLITE_APPEND_ONLY
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS credit_entries_append_only ON credit_entries")
        op.execute("DROP FUNCTION IF EXISTS credit_entries_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS credit_entries_append_only")
    op.drop_table("usage_counters")
    op.drop_index(op.f("ix_payment_events_purchase_id"), table_name="payment_events")
    op.drop_table("payment_events")
    op.drop_index(op.f("ix_subscriptions_stripe_customer_id"), table_name="subscriptions")
    op.drop_index(op.f("ix_subscriptions_user_id_status"), table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_index(op.f("ix_purchases_user_id_created_at"), table_name="purchases")
    op.drop_table("purchases")
    op.drop_index(op.f("ix_credit_entries_user_id_id"), table_name="credit_entries")
    op.drop_table("credit_entries")
    op.drop_table("credit_accounts")
