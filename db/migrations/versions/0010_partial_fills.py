"""partial fills: how much of a live order is already booked on its position

`orders.booked` is the amount of a live order booked so far: a resting limit order that fills in parts is
booked part by part as the order watcher sees them, and only what the exchange reports beyond it is booked
next. Orders that ended before this revision were booked whole.

Revision ID: 0010_partial_fills
Revises: 0009_copy_queue
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.types import Money

revision: str = "0010_partial_fills"
down_revision: str | None = "0009_copy_queue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("booked", Money(), nullable=False, server_default=sa.text("0")))
    op.execute(
        "UPDATE orders SET booked = filled "
        "WHERE status NOT IN ('sending', 'open', 'unknown', 'canceling') AND filled > 0"
    )


def downgrade() -> None:
    op.drop_column("orders", "booked")
