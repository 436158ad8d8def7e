"""auto-trade: a user's opt-in to have confident consensus signals executed

Revision ID: 0007_autotrade
Revises: 0006_copytrading
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.types import BigIntPK, UTCDateTime

revision: str = "0007_autotrade"
down_revision: str | None = "0006_copytrading"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "autotrade_settings",
        sa.Column("user_id", BigIntPK, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("symbols", sa.JSON(), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("min_confidence", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_autotrade_settings")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_autotrade_settings_user_id_users"), ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    op.drop_table("autotrade_settings")
