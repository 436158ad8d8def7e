"""Users to hang credits and subscriptions on."""

from __future__ import annotations

import itertools

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Tenant, User

_TELEGRAM_IDS = itertools.count(900_000_001)


async def make_users(factory: async_sessionmaker[AsyncSession], count: int = 1) -> list[int]:
    async with factory() as session:
        tenant = Tenant(slug=f"t{next(_TELEGRAM_IDS)}", name="Test")
        session.add(tenant)
        await session.flush()
        users = [User(tenant_id=tenant.id, telegram_id=next(_TELEGRAM_IDS)) for _ in range(count)]
        session.add_all(users)
        await session.commit()
        return [user.id for user in users]
