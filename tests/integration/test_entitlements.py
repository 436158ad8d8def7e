"""The one entitlement check on both backends: the plan comes from the subscriptions, and every feature
is allowed or refused per plan with the plan that would allow it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import create_session_factory
from db.models import ExchangeAccount, Subscription
from services.billing import (
    Catalogue,
    CreditsRequired,
    DailyQuotaReached,
    Entitlements,
    ExchangeLimitReached,
    Feature,
    PlanRequired,
)
from services.billing.plans import BillingSettings
from services.credits import CreditLedger
from tests.integration.billing_support import make_users

NOW = datetime(2026, 5, 10, 15, 30, tzinfo=UTC)
CATALOGUE = Catalogue()


@pytest.fixture
def factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


async def subscribe(
    factory: async_sessionmaker[AsyncSession],
    user_id: int,
    plan: str,
    *,
    status: str = "active",
    ends: datetime = NOW + timedelta(days=20),
) -> None:
    async with factory() as session:
        session.add(
            Subscription(
                user_id=user_id,
                plan=plan,
                status=status,
                provider="stripe",
                current_period_start=ends - timedelta(days=30),
                current_period_end=ends,
            )
        )
        await session.commit()


async def connect(factory: async_sessionmaker[AsyncSession], user_id: int, *exchanges: str) -> None:
    async with factory() as session:
        session.add(ExchangeAccount(user_id=user_id, exchange="binance", is_paper=True))
        for exchange in exchanges:
            session.add(ExchangeAccount(user_id=user_id, exchange=exchange, is_paper=False))
            await session.flush()
        await session.commit()


def entitlements(session: AsyncSession, now: datetime = NOW) -> Entitlements:
    return Entitlements(session, CATALOGUE, clock=lambda: now)


async def test_the_plan_comes_from_running_subscriptions(factory: async_sessionmaker[AsyncSession]) -> None:
    free, basic, expired, canceled, both = await make_users(factory, 5)
    await subscribe(factory, basic, "basic")
    await subscribe(factory, expired, "pro", ends=NOW - timedelta(seconds=1))
    await subscribe(factory, canceled, "pro", status="canceled")
    await subscribe(factory, both, "basic")
    await subscribe(factory, both, "enterprise", status="trialing")
    async with factory() as session:
        check = entitlements(session)
        plans = [(await check.plan(user)).code for user in (free, basic, expired, canceled, both)]
    assert plans == ["free", "basic", "free", "free", "enterprise"]


@pytest.mark.parametrize(
    ("plan", "allowed"),
    [
        ("free", set()),
        ("basic", set()),
        ("pro", {Feature.AUTO_TRADE, Feature.COPY_FOLLOW, Feature.COPY_LEAD}),
        ("enterprise", {Feature.AUTO_TRADE, Feature.COPY_FOLLOW, Feature.COPY_LEAD, Feature.WHITE_LABEL}),
    ],
)
async def test_included_features_per_plan(
    factory: async_sessionmaker[AsyncSession], plan: str, allowed: set[Feature]
) -> None:
    (user,) = await make_users(factory)
    if plan != "free":
        await subscribe(factory, user, plan)
    async with factory() as session:
        check = entitlements(session)
        for feature in (Feature.AUTO_TRADE, Feature.COPY_FOLLOW, Feature.COPY_LEAD, Feature.WHITE_LABEL):
            decision = await check.check(user, feature)
            assert decision.allowed is (feature in allowed), (plan, feature)
            if feature not in allowed:
                assert isinstance(decision.error, PlanRequired)
                expected = "enterprise" if feature is Feature.WHITE_LABEL else "pro"
                assert decision.error.params["required_plan"] == expected
                assert decision.error.params["plan"] == plan
                with pytest.raises(PlanRequired):
                    await check.require(user, feature)


async def test_live_trading_follows_the_exchange_limit(factory: async_sessionmaker[AsyncSession]) -> None:
    free, basic, pro, enterprise = await make_users(factory, 4)
    for user, plan in ((basic, "basic"), (pro, "pro"), (enterprise, "enterprise")):
        await subscribe(factory, user, plan)
    async with factory() as session:
        check = entitlements(session)
        refused = await check.check(free, "live_trading", exchange="binance")
        assert isinstance(refused.error, PlanRequired)
        assert refused.error.message_key == "billing.errors.plan_required"
        assert refused.error.params["required_plan"] == "basic"
        assert (await check.check(basic, "live_trading", exchange="binance")).allowed

    await connect(factory, basic, "kraken")
    await connect(factory, pro, "kraken", "binance", "kucoin")
    async with factory() as session:
        check = entitlements(session)
        assert (await check.require(basic, "live_trading", exchange="kraken")).used == 1
        with pytest.raises(ExchangeLimitReached) as second:
            await check.require(basic, "live_trading", exchange="binance")
        assert second.value.params == {
            "feature": "live_trading",
            "plan": "basic",
            "required_plan": "pro",
            "limit": 1,
            "used": 1,
            "connected": 1,
            "exchange": "binance",
        }
        for exchange in ("kraken", "binance", "kucoin"):
            assert (await check.check(pro, "live_trading", exchange=exchange)).allowed
        fourth = await check.check(pro, "live_trading", exchange="bybit")
        assert isinstance(fourth.error, ExchangeLimitReached)
        assert fourth.error.params["required_plan"] == "enterprise"
        assert (await check.check(enterprise, "live_trading", exchange="bybit")).allowed


async def test_after_a_downgrade_the_first_connected_exchanges_stay_usable(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    (user,) = await make_users(factory)
    await subscribe(factory, user, "pro", ends=NOW - timedelta(days=1))
    await subscribe(factory, user, "basic")
    await connect(factory, user, "kucoin", "binance")
    async with factory() as session:
        check = entitlements(session)
        assert (await check.check(user, "live_trading", exchange="kucoin")).allowed
        later = await check.check(user, "live_trading", exchange="binance")
        assert isinstance(later.error, ExchangeLimitReached)
        assert later.error.params["required_plan"] == "pro"
        assert (await check.check(user, "live_trading")).allowed


async def test_live_entries_need_credits_and_no_debt(factory: async_sessionmaker[AsyncSession]) -> None:
    (user,) = await make_users(factory)
    await subscribe(factory, user, "basic")
    async with factory() as session:
        check = entitlements(session)
        empty = await check.check(user, Feature.LIVE_ENTRY, exchange="binance")
        assert isinstance(empty.error, CreditsRequired)
        assert empty.error.message_key == "billing.errors.credits_required"
        assert empty.error.params["balance"] == 0 and empty.error.params["required_plan"] is None
        ledger = CreditLedger(session)
        await ledger.grant(user, 100, "grant", "plan:basic:1")
        assert (await check.require(user, Feature.LIVE_ENTRY, exchange="binance")).allowed
        await ledger.consume_profit(user, Decimal("100"), "close:1")
        spent = await check.check(user, Feature.LIVE_ENTRY, exchange="binance")
        assert isinstance(spent.error, CreditsRequired)
        await ledger.consume_profit(user, Decimal("5"), "close:2")
        await ledger.grant(user, 3, "purchase", "purchase:1")  # still 2 in debt
        in_debt = await check.check(user, Feature.LIVE_ENTRY)
        assert isinstance(in_debt.error, CreditsRequired) and in_debt.error.params["debt"] == Decimal(2)
        await ledger.grant(user, 100, "purchase", "purchase:2")
        assert (await check.check(user, Feature.LIVE_ENTRY)).allowed
        await session.commit()


async def test_live_entries_on_free_need_a_plan_before_credits(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    (user,) = await make_users(factory)
    async with factory() as session:
        await CreditLedger(session).grant(user, 100, "purchase", "purchase:1")
        decision = await entitlements(session).check(user, Feature.LIVE_ENTRY, exchange="binance")
        await session.commit()
    assert isinstance(decision.error, PlanRequired) and decision.error.params["required_plan"] == "basic"


async def test_ai_signals_are_counted_against_the_daily_quota(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    free, basic, pro = await make_users(factory, 3)
    await subscribe(factory, basic, "basic")
    await subscribe(factory, pro, "pro")
    async with factory() as session:
        check = entitlements(session)
        for n in range(1, 4):
            assert (await check.use(free, "ai_signal")).used == n
        looked = await check.check(free, "ai_signal")
        with pytest.raises(DailyQuotaReached) as refused:
            await check.use(free, "ai_signal")
        assert refused.value.params == {
            "feature": "ai_signal",
            "plan": "free",
            "required_plan": "basic",
            "limit": 3,
            "used": 3,
            "resets_at": datetime(2026, 5, 11, tzinfo=UTC),
        }
        for _ in range(20):
            await check.use(basic, "ai_signal")
        basic_refused = await check.check(basic, "ai_signal")
        for _ in range(50):
            await check.use(pro, "ai_signal")
        await session.commit()
    assert isinstance(looked.error, DailyQuotaReached) and looked.used == 3
    assert isinstance(basic_refused.error, DailyQuotaReached)
    assert basic_refused.error.params["required_plan"] == "pro"
    async with factory() as session:
        assert await entitlements(session).usage_today(free, "ai_signal") == 3
        assert await entitlements(session).usage_today(pro, "ai_signal") == 50
        tomorrow = entitlements(session, NOW + timedelta(days=1))
        assert (await tomorrow.use(free, "ai_signal")).used == 1
        await session.commit()


async def test_the_quota_holds_under_concurrent_use(factory: async_sessionmaker[AsyncSession]) -> None:
    import asyncio

    (user,) = await make_users(factory)

    async def one() -> bool:
        async with factory() as session:
            decision = await entitlements(session).check(user, "auto_trade")
            assert not decision.allowed
            try:
                await entitlements(session).use(user, "ai_signal")
            except DailyQuotaReached:
                return False
            await session.commit()
            return True

    results = await asyncio.gather(*(one() for _ in range(10)))
    assert sum(results) == 3


async def test_limits_come_from_the_settings(factory: async_sessionmaker[AsyncSession]) -> None:
    (user,) = await make_users(factory)
    settings = BillingSettings.model_validate({"free": {"ai_signals_per_day": 0, "auto_trade": True}})
    async with factory() as session:
        check = Entitlements(session, Catalogue(settings), clock=lambda: NOW)
        assert (await check.check(user, "auto_trade")).allowed
        refused = await check.check(user, "ai_signal")
        with pytest.raises(DailyQuotaReached):
            await check.use(user, "ai_signal")
    assert isinstance(refused.error, DailyQuotaReached) and refused.limit == 0
