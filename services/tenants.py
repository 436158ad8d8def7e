"""Tenants: the default operator and white-label bots of business clients."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from db.repositories import TenantRepository


@dataclass(frozen=True, slots=True)
class TenantInfo:
    id: int
    slug: str
    name: str
    bot_id: int | None
    default_locale: str


class TenantService:
    def __init__(self, session: AsyncSession) -> None:
        self.tenants = TenantRepository(session)

    async def ensure(self, *, slug: str, name: str, default_locale: str, bot_id: int | None) -> TenantInfo:
        tenant = await self.tenants.ensure(slug, name, default_locale)
        if bot_id is not None and tenant.bot_id != bot_id:
            tenant.bot_id = bot_id
        return TenantInfo(tenant.id, tenant.slug, tenant.name, tenant.bot_id, tenant.default_locale)
