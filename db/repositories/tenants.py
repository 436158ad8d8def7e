from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Tenant
from db.repositories._dialect import dialect_insert


class TenantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_slug(self, slug: str) -> Tenant | None:
        return await self.session.scalar(select(Tenant).where(Tenant.slug == slug))

    async def get_by_bot_id(self, bot_id: int) -> Tenant | None:
        return await self.session.scalar(select(Tenant).where(Tenant.bot_id == bot_id))

    async def ensure(self, slug: str, name: str, default_locale: str) -> Tenant:
        stmt = (
            dialect_insert(self.session, Tenant)
            .values(slug=slug, name=name, default_locale=default_locale, is_active=True)
            .on_conflict_do_nothing(index_elements=[Tenant.slug])
        )
        await self.session.execute(stmt)
        tenant = await self.get_by_slug(slug)
        assert tenant is not None
        return tenant
