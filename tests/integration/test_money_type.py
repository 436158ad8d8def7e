"""Money columns keep every digit on both backends (SQLite would otherwise round through float)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_session_factory
from db.models import ExchangeAccount, PaperBalance, Tenant, User
from db.types import utcnow

VALUES = [
    Decimal("0.000000000000000001"),
    Decimal("123456789012345678.123456789012345678"),
    Decimal("0.1") + Decimal("0.2"),
    Decimal("10000"),
    Decimal("0"),
]


async def test_money_roundtrip_is_exact(engine: AsyncEngine) -> None:
    factory = create_session_factory(engine)
    async with factory() as session:
        tenant = Tenant(slug="t", name="T", default_locale="en", is_active=True, created_at=utcnow())
        session.add(tenant)
        await session.flush()
        user = User(tenant_id=tenant.id, telegram_id=1, role="user", tier="free", bot_blocked=False,
                    created_at=utcnow(), last_seen_at=utcnow())
        session.add(user)
        await session.flush()
        account = ExchangeAccount(user_id=user.id, exchange="paper", is_paper=True, created_at=utcnow())
        session.add(account)
        await session.flush()
        for i, value in enumerate(VALUES):
            session.add(PaperBalance(account_id=account.id, asset=f"A{i}", free=value, locked=-value))
        await session.commit()
    async with factory() as session:
        rows = (await session.scalars(select(PaperBalance).order_by(PaperBalance.asset))).all()
    assert [r.free for r in rows] == VALUES
    assert [r.locked for r in rows] == [-v for v in VALUES]
    assert all(isinstance(r.free, Decimal) for r in rows)
