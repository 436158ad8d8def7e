"""market: price alerts, scanner subscriptions, scanned opportunities and their deliveries

Revision ID: 0004_market
Revises: 0003_billing
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.types import BigIntPK, Money, UTCDateTime

revision: str = "0004_market"
down_revision: str | None = "0003_billing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "price_alerts",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("user_id", BigIntPK, nullable=False),
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("threshold", Money(), nullable=False),
        sa.Column("reference_price", Money(), nullable=True),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("fired_price", Money(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_alerts")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_price_alerts_user_id_users"), ondelete="CASCADE"
        ),
    )
    op.create_index("ix_price_alerts_status", "price_alerts", ["status"])
    op.create_index("ix_price_alerts_user_id", "price_alerts", ["user_id"])
    op.create_table(
        "scan_subscriptions",
        sa.Column("user_id", BigIntPK, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("symbols", sa.JSON(), nullable=False),
        sa.Column("timeframes", sa.JSON(), nullable=False),
        sa.Column("min_score", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_scan_subscriptions")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_scan_subscriptions_user_id_users"), ondelete="CASCADE"
        ),
    )
    op.create_table(
        "scan_opportunities",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("candle_ts", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("price", Money(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan_opportunities")),
        sa.UniqueConstraint(
            "exchange", "symbol", "timeframe", "candle_ts", name=op.f("uq_scan_opportunities_candle")
        ),
    )
    op.create_index(
        "ix_scan_opportunities_timeframe_candle", "scan_opportunities", ["timeframe", "candle_ts"]
    )
    op.create_table(
        "scan_deliveries",
        sa.Column("user_id", BigIntPK, nullable=False),
        sa.Column("opportunity_id", BigIntPK, nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "opportunity_id", name=op.f("pk_scan_deliveries")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_scan_deliveries_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["opportunity_id"],
            ["scan_opportunities.id"],
            name=op.f("fk_scan_deliveries_opportunity_id_scan_opportunities"),
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("scan_deliveries")
    op.drop_index("ix_scan_opportunities_timeframe_candle", table_name="scan_opportunities")
    op.drop_table("scan_opportunities")
    op.drop_table("scan_subscriptions")
    op.drop_index("ix_price_alerts_user_id", table_name="price_alerts")
    op.drop_index("ix_price_alerts_status", table_name="price_alerts")
    op.drop_table("price_alerts")
