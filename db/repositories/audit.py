from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AuditLog
from db.types import utcnow


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        action: str,
        *,
        tenant_id: int | None = None,
        user_id: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.session.add(
            AuditLog(
                action=action,
                tenant_id=tenant_id,
                user_id=user_id,
                details=details or {},
                created_at=utcnow(),
            )
        )

    async def recent(self, *, user_id: int | None = None, limit: int = 50) -> list[AuditLog]:
        stmt = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
        if user_id is not None:
            stmt = stmt.where(AuditLog.user_id == user_id)
        return list((await self.session.scalars(stmt)).all())
