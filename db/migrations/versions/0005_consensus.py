"""consensus: AI consensus signals, their votes and each voter's resolved record

Revision ID: 0005_consensus
Revises: 0004_market
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.types import BigIntPK, Money, UTCDateTime

revision: str = "0005_consensus"
down_revision: str | None = "0004_market"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIONS = "action IN ('buy', 'sell', 'hold')"


def upgrade() -> None:
    op.create_table(
        "consensus_signals",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("user_id", BigIntPK, nullable=True),
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("symbol_class", sa.String(8), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("horizon", sa.String(8), nullable=False),
        sa.Column("horizon_minutes", sa.Integer(), nullable=False),
        sa.Column("candle_ts", sa.BigInteger(), nullable=False),
        sa.Column("snapshot_hash", sa.String(64), nullable=False),
        sa.Column("entry_price", Money(), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("probability", sa.Float(), nullable=True),
        sa.Column("probability_up", sa.Float(), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("quorum_met", sa.Boolean(), nullable=False),
        sa.Column("valid_votes", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("total_cost", Money(), nullable=False),
        sa.Column("flat_band_pct", sa.Float(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("resolve_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("realised_price", Money(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("hit", sa.Boolean(), nullable=True),
        sa.Column("brier", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consensus_signals")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_consensus_signals_user_id_users"), ondelete="SET NULL"
        ),
        sa.CheckConstraint(ACTIONS, name=op.f("ck_consensus_signals_action")),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('up', 'down', 'flat', 'unresolvable')",
            name=op.f("ck_consensus_signals_outcome"),
        ),
    )
    op.create_index("ix_consensus_signals_due", "consensus_signals", ["resolved_at", "resolve_at"])
    op.create_index(
        "ix_consensus_signals_user_id_created_at", "consensus_signals", ["user_id", "created_at"]
    )
    op.create_index("ix_consensus_signals_created_at", "consensus_signals", ["created_at"])
    op.create_table(
        "consensus_votes",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("signal_id", BigIntPK, nullable=False),
        sa.Column("voter", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("action", sa.String(8), nullable=True),
        sa.Column("probability", sa.Float(), nullable=True),
        sa.Column("horizon", sa.String(8), nullable=True),
        sa.Column("stop_loss", Money(), nullable=True),
        sa.Column("take_profit", Money(), nullable=True),
        sa.Column("rationale", sa.String(255), nullable=True),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.Column("abstain_reason", sa.String(32), nullable=True),
        sa.Column("error", sa.String(255), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("tokens_in", sa.Integer(), nullable=False),
        sa.Column("tokens_out", sa.Integer(), nullable=False),
        sa.Column("cost", Money(), nullable=False),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("brier", sa.Float(), nullable=True),
        sa.Column("hit", sa.Boolean(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consensus_votes")),
        sa.ForeignKeyConstraint(
            ["signal_id"],
            ["consensus_signals.id"],
            name=op.f("fk_consensus_votes_signal_id_consensus_signals"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("signal_id", "voter", name=op.f("uq_consensus_votes_signal_id_voter")),
        sa.CheckConstraint("kind IN ('llm', 'ta')", name=op.f("ck_consensus_votes_kind")),
        sa.CheckConstraint(f"action IS NULL OR {ACTIONS}", name=op.f("ck_consensus_votes_action")),
    )
    op.create_index("ix_consensus_votes_voter", "consensus_votes", ["voter"])
    op.create_table(
        "voter_scores",
        sa.Column("voter", sa.String(64), nullable=False),
        sa.Column("symbol_class", sa.String(8), nullable=False),
        sa.Column("horizon", sa.String(8), nullable=False),
        sa.Column("resolved", sa.Integer(), nullable=False),
        sa.Column("brier_sum", sa.Float(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("voter", "symbol_class", "horizon", name=op.f("pk_voter_scores")),
    )


def downgrade() -> None:
    op.drop_table("voter_scores")
    op.drop_index("ix_consensus_votes_voter", table_name="consensus_votes")
    op.drop_table("consensus_votes")
    op.drop_index("ix_consensus_signals_created_at", table_name="consensus_signals")
    op.drop_index("ix_consensus_signals_user_id_created_at", table_name="consensus_signals")
    op.drop_index("ix_consensus_signals_due", table_name="consensus_signals")
    op.drop_table("consensus_signals")
