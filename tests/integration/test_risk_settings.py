"""Setting one's own risk limits on both backends: within the plan's ceilings only, written to the trading
profile with an audit row; a refusal changes nothing; a downgrade clamps without rewriting the row."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import create_session_factory
from db.models import AuditLog, Subscription, TradingProfile, User
from db.types import utcnow
from services.billing import Catalogue, Entitlements
from services.billing.plans import BillingSettings
from services.errors import ValidationError
from services.risk.limits import RiskLimits
from services.risk.settings import RiskCeilingExceeded, RiskSetting, RiskSettingsService
from services.trading.service import TradingConfig, TradingService
from services.users import UserProfile
from tests.integration.billing_support import make_users

CATALOGUE = Catalogue()


@pytest.fixture
def factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


class NoMarket:
    def public(self, exchange_id: str) -> Any:
        raise AssertionError("no market data is needed to read or set limits")


async def profile_of(factory: async_sessionmaker[AsyncSession], user_id: int) -> UserProfile:
    async with factory() as session:
        row = await session.scalar(select(User).where(User.id == user_id))
        assert row is not None
        now = utcnow()
        return UserProfile(
            id=row.id,
            tenant_id=row.tenant_id,
            telegram_id=row.telegram_id,
            username=None,
            first_name=None,
            language_code=None,
            locale=None,
            role="user",
            tier="free",
            created_at=now,
            last_seen_at=now,
        )


def service(session: AsyncSession, catalogue: Catalogue = CATALOGUE) -> RiskSettingsService:
    entitlements = Entitlements(session, catalogue)
    trading = TradingService(session, NoMarket(), TradingConfig(), entitlements=entitlements)
    return RiskSettingsService(trading, entitlements)


async def subscribe(factory: async_sessionmaker[AsyncSession], user_id: int, plan: str) -> None:
    now = utcnow()
    async with factory() as session:
        session.add(
            Subscription(
                user_id=user_id,
                plan=plan,
                status="active",
                provider="stripe",
                current_period_start=now - timedelta(days=1),
                current_period_end=now + timedelta(days=29),
            )
        )
        await session.commit()


async def stored(factory: async_sessionmaker[AsyncSession], user_id: int) -> RiskLimits:
    async with factory() as session:
        row = await session.get(TradingProfile, user_id)
        assert row is not None
        return RiskLimits(row.max_position_pct, row.max_open_positions, row.max_daily_loss_pct)


async def audits(factory: async_sessionmaker[AsyncSession], user_id: int) -> list[dict[str, Any]]:
    async with factory() as session:
        rows = await session.scalars(
            select(AuditLog).where(AuditLog.user_id == user_id, AuditLog.action == "risk.limit_changed")
        )
        return [row.details for row in rows]


async def test_a_free_user_sets_limits_within_the_ceilings_with_an_audit_row(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    [user_id] = await make_users(factory)
    user = await profile_of(factory, user_id)
    async with factory() as session:
        overview = await service(session).overview(user)
    assert overview.plan == "free" and overview.own == overview.effective == RiskLimits(D(25), 10, D(5))

    async with factory() as session:
        overview = await service(session).set(user, RiskSetting.POSITION, D(10))
        overview = await service(session).set(user, RiskSetting.POSITIONS, D(3))
        overview = await service(session).set(user, RiskSetting.POSITIONS, D(3))  # unchanged: no row
    assert overview.effective == RiskLimits(D(10), 3, D(5))
    assert await stored(factory, user_id) == RiskLimits(D(10), 3, D(5))
    assert await audits(factory, user_id) == [
        {"setting": "position", "old": "25", "new": "10"},
        {"setting": "positions", "old": "10", "new": "3"},
    ]


async def test_above_the_ceiling_is_refused_naming_it_and_the_plan_that_allows_more(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    [user_id] = await make_users(factory)
    user = await profile_of(factory, user_id)
    async with factory() as session:
        await service(session).overview(user)  # the profile, with the defaults
        await session.commit()
    for setting, value, ceiling, required in [
        (RiskSetting.POSITIONS, D(30), 10, "pro"),  # Basic allows 15: Pro is the cheapest that allows 30
        (RiskSetting.POSITION, D(35), D(25), "basic"),
        (RiskSetting.DAILY, D(50), D(5), "enterprise"),
    ]:
        async with factory() as session:
            with pytest.raises(RiskCeilingExceeded) as caught:
                await service(session).set(user, setting, value)
        error = caught.value
        assert error.message_key == f"risk_settings.errors.above_ceiling.{setting.value}"
        assert error.plan == "free" and error.required_plan == required
        assert error.params["ceiling"] == ceiling and error.params["value"] == value
    for bad in (D(0), D(-5), D(1000), D("2.5")):
        async with factory() as session:
            with pytest.raises(ValidationError):
                await service(session).set(user, RiskSetting.POSITIONS, bad)
    assert await stored(factory, user_id) == RiskLimits(D(25), 10, D(5))
    assert await audits(factory, user_id) == []


async def test_an_upgrade_allows_more_and_a_downgrade_clamps_without_rewriting(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    [user_id] = await make_users(factory)
    user = await profile_of(factory, user_id)
    await subscribe(factory, user_id, "pro")
    async with factory() as session:
        overview = await service(session).set(user, RiskSetting.POSITIONS, D(30))
        overview = await service(session).set(user, RiskSetting.POSITION, D(50))
    assert overview.plan == "pro" and overview.effective.max_open_positions == 30

    async with factory() as session:  # the subscription ends: back on Free
        await session.execute(
            update(Subscription).where(Subscription.user_id == user_id).values(status="canceled")
        )
        await session.commit()
    async with factory() as session:
        overview = await service(session).overview(user)
        ceilings = await service(session).trading.risk_ceilings(user_id)
    assert overview.plan == "free" and ceilings == overview.ceilings
    assert overview.own == RiskLimits(D(50), 30, D(5)) == await stored(factory, user_id)
    assert overview.effective == RiskLimits(D(25), 10, D(5))
    assert overview.capped(RiskSetting.POSITION) and not overview.capped(RiskSetting.DAILY)


async def test_no_plan_allows_more_than_the_top_ceiling(factory: async_sessionmaker[AsyncSession]) -> None:
    catalogue = Catalogue(BillingSettings.model_validate({"enterprise": {"max_position_pct": 60}}))
    [user_id] = await make_users(factory)
    user = await profile_of(factory, user_id)
    await subscribe(factory, user_id, "enterprise")
    async with factory() as session:
        with pytest.raises(RiskCeilingExceeded) as caught:
            await service(session, catalogue).set(user, RiskSetting.POSITION, D(70))
        assert caught.value.required_plan is None
        assert caught.value.message_key == "risk_settings.errors.above_every_plan.position"
        overview = await service(session, catalogue).set(user, RiskSetting.POSITIONS, D(100))
    assert overview.effective.max_open_positions == 100  # no ceiling on Enterprise's positions
