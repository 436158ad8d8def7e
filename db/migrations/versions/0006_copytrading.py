"""copytrading: leaders, their channels, follows, leader actions, copied orders and positions, leader revenue

Revision ID: 0006_copytrading
Revises: 0005_consensus
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.types import BigIntPK, Money, UTCDateTime

revision: str = "0006_copytrading"
down_revision: str | None = "0005_consensus"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_STOPPED = "status <> 'stopped'"


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "leaders",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("user_id", BigIntPK, nullable=False),
        sa.Column("display_name", sa.String(64), nullable=False),
        sa.Column("publishes_trades", sa.Boolean(), nullable=False),
        sa.Column("publishes_signals", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leaders")),
        _fk("leaders", "user_id", "users", "CASCADE"),
        sa.UniqueConstraint("user_id", name=op.f("uq_leaders_user_id")),
    )
    op.create_table(
        "leader_channels",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("leader_id", BigIntPK, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("rights_ok", sa.Boolean(), nullable=False),
        sa.Column("missing_rights", sa.String(128), nullable=True),
        sa.Column("linked_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leader_channels")),
        _fk("leader_channels", "leader_id", "leaders", "CASCADE"),
        sa.UniqueConstraint("chat_id", name=op.f("uq_leader_channels_chat_id")),
        sa.CheckConstraint("kind IN ('channel', 'group')", name=op.f("ck_leader_channels_kind")),
    )
    op.create_index("ix_leader_channels_leader_id", "leader_channels", ["leader_id"])
    op.create_table(
        "follows",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("follower_id", BigIntPK, nullable=False),
        sa.Column("leader_id", BigIntPK, nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("account_id", BigIntPK, nullable=False),
        sa.Column("allocation_kind", sa.String(8), nullable=False),
        sa.Column("allocation_value", Money(), nullable=False),
        sa.Column("max_per_trade", Money(), nullable=True),
        sa.Column("stop_drawdown_pct", Money(), nullable=True),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("pause_reason", sa.String(32), nullable=True),
        sa.Column("start_equity", Money(), nullable=False),
        sa.Column("realized_pnl", Money(), nullable=False),
        sa.Column("equity_hwm", Money(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follows")),
        _fk("follows", "follower_id", "users", "CASCADE"),
        _fk("follows", "leader_id", "leaders", "CASCADE"),
        _fk("follows", "account_id", "exchange_accounts", "CASCADE"),
        sa.CheckConstraint("mode IN ('paper', 'live')", name=op.f("ck_follows_mode")),
        sa.CheckConstraint(
            "allocation_kind IN ('fixed', 'percent')", name=op.f("ck_follows_allocation_kind")
        ),
        sa.CheckConstraint("status IN ('active', 'paused', 'stopped')", name=op.f("ck_follows_status")),
    )
    op.create_index(
        "uq_follows_follower_id_leader_id_open",
        "follows",
        ["follower_id", "leader_id"],
        unique=True,
        postgresql_where=sa.text(NOT_STOPPED),
        sqlite_where=sa.text(NOT_STOPPED),
    )
    op.create_index("ix_follows_leader_id_status", "follows", ["leader_id", "status"])
    op.create_table(
        "leader_actions",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("leader_id", BigIntPK, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("price", Money(), nullable=True),
        sa.Column("amount", Money(), nullable=True),
        sa.Column("pct_equity", Money(), nullable=True),
        sa.Column("close_pct", Money(), nullable=True),
        sa.Column("stop_loss", Money(), nullable=True),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("source_ref", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leader_actions")),
        _fk("leader_actions", "leader_id", "leaders", "CASCADE"),
        sa.UniqueConstraint("source_ref", name=op.f("uq_leader_actions_source_ref")),
        sa.CheckConstraint("kind IN ('entry', 'exit', 'sl', 'tp')", name=op.f("ck_leader_actions_kind")),
        sa.CheckConstraint(
            "source IN ('trade', 'post', 'signal')", name=op.f("ck_leader_actions_source")
        ),
    )
    op.create_index(
        "ix_leader_actions_leader_id_created_at", "leader_actions", ["leader_id", "created_at"]
    )
    op.create_table(
        "copy_orders",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("action_id", BigIntPK, nullable=False),
        sa.Column("follow_id", BigIntPK, nullable=False),
        sa.Column("order_id", BigIntPK, nullable=True),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("client_order_id", sa.String(40), nullable=False),
        sa.Column("realized_pnl", Money(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_copy_orders")),
        _fk("copy_orders", "action_id", "leader_actions", "CASCADE"),
        _fk("copy_orders", "follow_id", "follows", "CASCADE"),
        _fk("copy_orders", "order_id", "orders", "SET NULL"),
        sa.UniqueConstraint("action_id", "follow_id", name=op.f("uq_copy_orders_action_id_follow_id")),
        sa.UniqueConstraint("client_order_id", name=op.f("uq_copy_orders_client_order_id")),
        sa.CheckConstraint(
            "status IN ('queued', 'done', 'failed', 'skipped')", name=op.f("ck_copy_orders_status")
        ),
    )
    op.create_index("ix_copy_orders_follow_id", "copy_orders", ["follow_id"])
    op.create_table(
        "copy_positions",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("follow_id", BigIntPK, nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("position_id", BigIntPK, nullable=True),
        sa.Column("entry_action_id", BigIntPK, nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("cost", Money(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_copy_positions")),
        _fk("copy_positions", "follow_id", "follows", "CASCADE"),
        _fk("copy_positions", "position_id", "positions", "SET NULL"),
        _fk("copy_positions", "entry_action_id", "leader_actions", "CASCADE"),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_copy_positions_status")),
    )
    op.create_index(
        "ix_copy_positions_follow_id_symbol_status", "copy_positions", ["follow_id", "symbol", "status"]
    )
    op.create_table(
        "leader_revenue",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("leader_id", BigIntPK, nullable=False),
        sa.Column("follower_id", BigIntPK, nullable=False),
        sa.Column("copy_order_id", BigIntPK, nullable=True),
        sa.Column("order_id", BigIntPK, nullable=True),
        sa.Column("profit", Money(), nullable=False),
        sa.Column("fee", Money(), nullable=False),
        sa.Column("leader_share", Money(), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leader_revenue")),
        _fk("leader_revenue", "leader_id", "leaders", "CASCADE"),
        _fk("leader_revenue", "follower_id", "users", "CASCADE"),
        _fk("leader_revenue", "copy_order_id", "copy_orders", "SET NULL"),
        _fk("leader_revenue", "order_id", "orders", "SET NULL"),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_leader_revenue_idempotency_key")),
    )
    op.create_index(
        "ix_leader_revenue_leader_id_created_at", "leader_revenue", ["leader_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_leader_revenue_leader_id_created_at", table_name="leader_revenue")
    op.drop_table("leader_revenue")
    op.drop_index("ix_copy_positions_follow_id_symbol_status", table_name="copy_positions")
    op.drop_table("copy_positions")
    op.drop_index("ix_copy_orders_follow_id", table_name="copy_orders")
    op.drop_table("copy_orders")
    op.drop_index("ix_leader_actions_leader_id_created_at", table_name="leader_actions")
    op.drop_table("leader_actions")
    op.drop_index("ix_follows_leader_id_status", table_name="follows")
    op.drop_index("uq_follows_follower_id_leader_id_open", table_name="follows")
    op.drop_table("follows")
    op.drop_index("ix_leader_channels_leader_id", table_name="leader_channels")
    op.drop_table("leader_channels")
    op.drop_table("leaders")
