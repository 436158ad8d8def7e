"""native stops: a live position's protective order on the exchange

`orders.trigger_price` is the trigger of a native stop order (order_type "stop"); `positions.stop_order_id`
the order row of the position's native stop (no foreign key: orders already point at positions), and
`positions.protection` how its stop-loss / take-profit is kept: "native", "watched", NULL (undecided).

Revision ID: 0008_native_stops
Revises: 0007_autotrade
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.types import BigIntPK, Money

revision: str = "0008_native_stops"
down_revision: str | None = "0007_autotrade"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("trigger_price", Money(), nullable=True))
    op.add_column("positions", sa.Column("stop_order_id", BigIntPK, nullable=True))
    op.add_column("positions", sa.Column("protection", sa.String(16), nullable=True))


def downgrade() -> None:
    op.drop_column("positions", "protection")
    op.drop_column("positions", "stop_order_id")
    op.drop_column("orders", "trigger_price")
