"""Rows of one tenant: scheduled jobs of a bot process see only its own tenant's users."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select, true

from db.models import User


def of_tenant(user_id_column: Any, tenant_id: int | None) -> ColumnElement[bool]:
    """`user_id_column` belongs to a user of the tenant (no condition when `tenant_id` is None)."""
    if tenant_id is None:
        return true()
    return user_id_column.in_(select(User.id).where(User.tenant_id == tenant_id))
