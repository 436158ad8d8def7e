"""The consensus service on both backends: a signal is stored with every vote, its cost and budget are
kept, resolution scores the votes and the records and weights follow."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import create_session_factory
from db.models import ConsensusSignal, ConsensusVote, VoterScore
from sandbox.llm import LLMServer
from scheduler.consensus import resolve_signals_job
from services.consensus import ConsensusService, ConsensusSettings, SignalNotFound
from services.consensus.aggregate import Progress
from tests.integration.billing_support import make_users
from tests.integration.consensus_support import Clock, llm_voter_configs, market_service

TA_ONLY = ConsensusSettings(quorum=2)


@pytest.fixture
def factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


async def test_ta_only_signal_is_stored_with_its_votes(factory: async_sessionmaker[AsyncSession]) -> None:
    (user,) = await make_users(factory)
    clock = Clock()
    data, _ = market_service(clock)
    service = ConsensusService.from_settings(factory, data, TA_ONLY, [], clock=clock)
    seen: list[Progress] = []

    async def progress(item: Progress) -> None:
        seen.append(item)

    result = await service.signal(user, "btc", "1h", progress=progress)
    assert result.symbol == "BTC/USDT" and result.symbol_class == "major" and result.horizon == "4h"
    assert result.reasons[-1] == "ta_only" and result.total_cost == Decimal(0)
    assert [v.voter for v in result.votes] == ["ta.trend", "ta.momentum", "ta.mean_reversion"]
    assert result.valid_votes == sum(v.valid for v in result.votes) == 3
    assert result.action == "buy"  # the path rises steadily: trend and momentum vote buy
    assert result.trade is not None and result.trade.side == "buy"
    assert result.trade.stop_loss is not None and result.trade.take_profit is not None
    assert result.trade.stop_loss < result.entry_price < result.trade.take_profit
    assert result.resolve_at - result.created_at == timedelta(hours=4)
    assert len(seen) == 3 and seen[-1].done == 3

    async with factory() as session:
        signal = await session.get(ConsensusSignal, result.signal_id)
        assert signal is not None and signal.user_id == user and signal.entry_price == result.entry_price
        assert signal.snapshot_hash == result.snapshot_hash and len(signal.snapshot_hash) == 64
        votes = (
            await session.scalars(select(ConsensusVote).where(ConsensusVote.signal_id == signal.id))
        ).all()
        assert {v.voter for v in votes} == {"ta.trend", "ta.momentum", "ta.mean_reversion"}
        assert all(v.weight == 1.0 and v.kind == "ta" and v.cost == 0 for v in votes)

    stored = await service.get_signal(result.signal_id)
    assert stored.votes == result.votes and stored.trade == result.trade
    with pytest.raises(SignalNotFound):
        await service.get_signal(10_000)


async def test_resolution_scores_votes_and_moves_weights(factory: async_sessionmaker[AsyncSession]) -> None:
    clock = Clock()
    data, exchange = market_service(clock)
    service = ConsensusService.from_settings(factory, data, TA_ONLY, [], clock=clock)
    first = await service.signal(None, "BTC/USDT", "1h")
    second = await service.signal(None, "SOL/USDT", "15m")
    assert first.action == "buy" and second.horizon == "4h" and second.symbol_class == "large"

    clock.advance(hours=3)
    report = await service.resolve_due()
    assert report.resolved == () and report.pending == 0  # not due yet

    exchange.shift(first.resolve_at - timedelta(minutes=30), 1.05)  # a clear rise before the horizon ends
    clock.advance(hours=1, minutes=2)
    report = await resolve_signals_job(service)
    assert {r.signal_id for r in report.resolved} == {first.signal_id, second.signal_id}
    outcome = {r.signal_id: r for r in report.resolved}[first.signal_id]
    assert outcome.outcome == "up" and outcome.hit is True
    assert outcome.realised_price is not None and outcome.realised_price > first.entry_price * Decimal("1.04")

    async with factory() as session:
        scores = {(s.voter, s.symbol_class): s for s in (await session.scalars(select(VoterScore))).all()}
        trend = scores[("ta.trend", "major")]
        assert trend.resolved == 1 and trend.hits == 1 and trend.horizon == "4h"
        trend_vote = next(v for v in first.votes if v.voter == "ta.trend")
        assert trend_vote.probability is not None
        assert trend.brier_sum == pytest.approx((trend_vote.probability - 1.0) ** 2)
        voted = (
            await session.scalars(
                select(ConsensusVote).where(ConsensusVote.signal_id == first.signal_id, ConsensusVote.valid)
            )
        ).all()
        assert all(v.brier is not None and v.hit is not None for v in voted)
        signal = await session.get(ConsensusSignal, first.signal_id)
        assert signal is not None and signal.outcome == "up" and signal.brier is not None
        assert signal.resolved_at == clock.now

    again = await resolve_signals_job(service)
    assert again.resolved == ()  # resolved once

    following = await service.signal(None, "BTC/USDT", "1h")
    weights = {v.voter: v.weight for v in following.votes}
    n0 = 30
    expected = 1.0 * n0 / (n0 + 1) + (2 - 4 * trend.brier_sum) / (n0 + 1)
    assert weights["ta.trend"] == pytest.approx(expected) and weights["ta.trend"] > 1.0

    records = {r.voter: r for r in await service.records()}
    assert records["ta.trend"].signals == 3 and records["ta.trend"].resolved == 2
    assert records["ta.trend"].hit_rate is not None and records["ta.trend"].brier is not None
    assert records["consensus"].signals == 3 and records["consensus"].resolved == 2
    assert records["ta.trend"].avg_cost == Decimal(0) and records["ta.trend"].active


async def test_signals_older_than_the_history_are_unresolvable(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    data, _ = market_service(clock)
    service = ConsensusService.from_settings(factory, data, TA_ONLY, [], clock=clock)
    made = await service.signal(None, "ETH", "5m")
    assert made.horizon == "1h"
    clock.advance(days=3)  # beyond 500 one-minute and 500 five-minute candles
    report = await service.resolve_due()
    assert [(r.signal_id, r.outcome) for r in report.resolved] == [(made.signal_id, "unresolvable")]
    records = {r.voter: r for r in await service.records()}
    assert records["ta.trend"].resolved == 0 and records["consensus"].resolved == 0


async def test_llm_votes_cost_and_the_daily_budget(factory: async_sessionmaker[AsyncSession]) -> None:
    (user,) = await make_users(factory)
    clock = Clock()
    data, _ = market_service(clock)
    settings = ConsensusSettings(daily_budget_usd={"free": Decimal("0.001"), "pro": Decimal(5)})
    async with LLMServer() as llm:
        voters = llm_voter_configs(llm)
        service = ConsensusService.from_settings(factory, data, settings, voters, clock=clock)
        first = await service.signal(user, "BTC", "1h")
        llm_votes = [v for v in first.votes if v.kind == "llm"]
        assert len(first.votes) == 6 and all(v.valid for v in llm_votes)
        assert all(v.cost > 0 and v.tokens_in > 0 and v.tokens_out > 0 for v in llm_votes)
        assert first.total_cost == sum(v.cost for v in first.votes) > Decimal("0.001")
        assert "budget" not in first.reasons

        budget = await service.budget(user, "free")
        assert not budget.allowed and budget.spent == first.total_cost and budget.exceeded == "user"
        requests = len(llm.requests)
        capped = await service.signal(user, "BTC", "1h")
        assert "budget" in capped.reasons and len(llm.requests) == requests
        assert [v.abstain_reason for v in capped.votes if v.kind == "llm"] == ["budget"] * 3
        assert capped.valid_votes == 3 and capped.total_cost == 0

        on_pro = await service.signal(user, "BTC", "1h", plan="pro")
        assert "budget" not in on_pro.reasons
        assert all(v.cache_hit and v.cost == 0 for v in on_pro.votes if v.kind == "llm")  # same candle
        assert len(llm.requests) == requests

    records = {r.voter: r for r in await service.records()}
    gpt = records["gpt-4o-mini"]
    assert gpt.signals == 3 and gpt.valid == 2 and gpt.cache_hits == 1
    assert gpt.avg_cost == gpt.total_cost / 2 and gpt.total_cost > 0
    async with factory() as session:
        total = await session.scalar(select(func.count()).select_from(ConsensusVote))
        assert total == 18


async def test_failed_models_leave_the_quorum_unmet(factory: async_sessionmaker[AsyncSession]) -> None:
    clock = Clock()
    data, _ = market_service(clock)
    settings = ConsensusSettings(ta_voters="trend", quorum=2, deadline_seconds=1.0)
    async with LLMServer() as llm:
        llm.set_error("gpt-4o-mini", 500)
        llm.set_invalid_json("claude-haiku-4-5")
        llm.set_delay("gemini-2.5-flash", 5.0)
        service = ConsensusService.from_settings(factory, data, settings, llm_voter_configs(llm), clock=clock)
        result = await service.signal(None, "BTC", "1h")
    reasons = {v.voter: v.abstain_reason for v in result.votes}
    assert reasons == {
        "ta.trend": None,
        "gpt-4o-mini": "error",
        "anthropic/claude-haiku-4-5": "invalid_json",
        "gemini/gemini-2.5-flash": "deadline",
    }
    assert result.action == "hold" and not result.quorum_met and result.reasons == ("quorum",)
    assert result.valid_votes == 1 and result.trade is None
    assert result.total_cost > 0  # the invalid answer was still paid for
    async with factory() as session:
        stored = await session.get(ConsensusSignal, result.signal_id)
        assert stored is not None and stored.reason == "quorum" and not stored.quorum_met


async def test_the_global_budget_stops_every_user(factory: async_sessionmaker[AsyncSession]) -> None:
    first_user, second_user = await make_users(factory, 2)
    clock = Clock()
    data, _ = market_service(clock)
    settings = ConsensusSettings(global_daily_budget_usd=Decimal("0.0001"))
    async with LLMServer() as llm:
        service = ConsensusService.from_settings(
            factory, data, settings, llm_voter_configs(llm, providers=("openai",)), clock=clock
        )
        await service.signal(first_user, "BTC", "1h")
        other = await service.signal(second_user, "ETH", "1h")
        assert "budget" in other.reasons
        status = await service.budget(second_user)
        assert status.exceeded == "global" and status.spent == 0 and status.remaining == status.limit
        clock.advance(days=1)  # a new UTC day
        assert (await service.budget(second_user)).allowed
