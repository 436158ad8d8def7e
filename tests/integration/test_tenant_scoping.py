"""Scheduled jobs of one bot see only its tenant's users: two tenants share the database, each tenant's
scope selects its own rows and no other's."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_session_factory
from db.models import PriceAlert, User
from db.scoping import of_tenant
from tests.integration.billing_support import make_users


async def test_each_tenant_scope_selects_only_its_users_rows(engine: AsyncEngine) -> None:
    factory = create_session_factory(engine)
    first = await make_users(factory, 2)
    second = await make_users(factory, 1)
    async with factory() as session:
        for user_id in (*first, *second):
            session.add(
                PriceAlert(
                    user_id=user_id,
                    exchange="binance",
                    symbol="BTC/USDT",
                    kind="above",
                    threshold=Decimal(70_000),
                    status="active",
                )
            )
        await session.commit()
        tenant_of = {u.id: u.tenant_id for u in await session.scalars(select(User))}
        first_tenant, second_tenant = tenant_of[first[0]], tenant_of[second[0]]
        query = select(PriceAlert.user_id).order_by(PriceAlert.user_id)
        mine = list(await session.scalars(query.where(of_tenant(PriceAlert.user_id, first_tenant))))
        theirs = list(await session.scalars(query.where(of_tenant(PriceAlert.user_id, second_tenant))))
        everyone = list(await session.scalars(query.where(of_tenant(PriceAlert.user_id, None))))
    assert mine == sorted(first) and theirs == second
    assert sorted(everyone) == sorted(first + second)
