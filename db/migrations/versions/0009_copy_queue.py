"""copy queue: a leader action's fan-out state (lease, finished, card posted)

Revision ID: 0009_copy_queue
Revises: 0008_native_stops
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.types import UTCDateTime

revision: str = "0009_copy_queue"
down_revision: str | None = "0008_native_stops"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("fanned_out_at", "fanout_owner", "fanout_lease_until", "fanout_attempts", "published_at")


def upgrade() -> None:
    op.add_column("leader_actions", sa.Column("fanned_out_at", UTCDateTime(), nullable=True))
    op.add_column("leader_actions", sa.Column("fanout_owner", sa.String(32), nullable=True))
    op.add_column("leader_actions", sa.Column("fanout_lease_until", UTCDateTime(), nullable=True))
    op.add_column(
        "leader_actions",
        sa.Column("fanout_attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.add_column("leader_actions", sa.Column("published_at", UTCDateTime(), nullable=True))
    # actions recorded before the queue were fanned out (and posted) inline: nothing is left to do
    op.execute("UPDATE leader_actions SET fanned_out_at = created_at, published_at = created_at")
    op.create_index(op.f("ix_leader_actions_fanned_out_at"), "leader_actions", ["fanned_out_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_leader_actions_fanned_out_at"), table_name="leader_actions")
    for column in reversed(COLUMNS):
        op.drop_column("leader_actions", column)
