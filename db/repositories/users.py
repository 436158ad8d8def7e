from __future__ import annotations

from datetime import datetime

from sqlalchemy import RowMapping, Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import User
from db.repositories._dialect import dialect_insert

_USERS: Table = User.__table__  # type: ignore[assignment]
_SELECT_ONE = select(_USERS).where(
    _USERS.c.tenant_id == bindparam("p_tenant"), _USERS.c.telegram_id == bindparam("p_telegram")
)


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: int, telegram_id: int) -> User | None:
        return await self.session.scalar(
            select(User).where(User.tenant_id == tenant_id, User.telegram_id == telegram_id)
        )

    async def get_row(self, tenant_id: int, telegram_id: int) -> RowMapping | None:
        """The user's columns without the ORM (the per-update hot path)."""
        connection = await self.session.connection()
        result = await connection.execute(_SELECT_ONE, {"p_tenant": tenant_id, "p_telegram": telegram_id})
        return result.mappings().first()

    async def get_by_id(self, user_id: int) -> User | None:
        return await self.session.get(User, user_id)

    async def insert_if_absent(
        self,
        *,
        tenant_id: int,
        telegram_id: int,
        username: str | None,
        first_name: str | None,
        language_code: str | None,
        role: str,
        now: datetime,
    ) -> None:
        stmt = (
            dialect_insert(self.session, User)
            .values(
                tenant_id=tenant_id,
                telegram_id=telegram_id,
                username=username,
                first_name=first_name,
                language_code=language_code,
                role=role,
                tier="free",
                bot_blocked=False,
                created_at=now,
                last_seen_at=now,
            )
            .on_conflict_do_nothing(index_elements=[User.tenant_id, User.telegram_id])
        )
        await self.session.execute(stmt)

    async def update_fields(self, user_id: int, **values: object) -> None:
        connection = await self.session.connection()
        await connection.execute(update(_USERS).where(_USERS.c.id == user_id).values(**values))

    async def count(self, tenant_id: int | None = None) -> int:
        stmt = select(func.count(User.id))
        if tenant_id is not None:
            stmt = stmt.where(User.tenant_id == tenant_id)
        return int(await self.session.scalar(stmt) or 0)
