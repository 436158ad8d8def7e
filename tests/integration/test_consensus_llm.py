"""LLM voters through the real litellm client against the local LLM server (OpenAI, Anthropic and Gemini
wire protocols): valid votes, invalid answers, timeouts and errors are abstentions, costs are recorded,
and identical prompts within one candle are answered from the cache."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal

import pytest
from redis.asyncio import Redis

from sandbox.llm import LLMServer
from services.consensus.aggregate import run_voters
from services.consensus.cache import MemoryAnswerCache, RedisAnswerCache
from services.consensus.config import LLMVoterConfig
from services.consensus.snapshot import Snapshot
from services.consensus.voters import LLMVoter, Vote
from tests.integration.consensus_support import LLM_MODELS
from tests.unit.consensus_samples import downtrend, uptrend


@pytest.fixture
async def llm() -> AsyncIterator[LLMServer]:
    async with LLMServer(seed=3) as server:
        yield server


def live(snapshot: Snapshot) -> Snapshot:
    """The snapshot, valid for another minute of real time (the cache's lifetime)."""
    return replace(snapshot, valid_until_ms=int(time.time() * 1000) + 60_000)


def voter(
    llm: LLMServer, provider: str = "openai", *, timeout: float = 5.0, cache: MemoryAnswerCache | None = None
) -> LLMVoter:
    kwargs = llm.client_kwargs(provider)
    config = LLMVoterConfig(model=LLM_MODELS[provider], timeout=timeout, **kwargs)
    return LLMVoter(config, cache=cache)


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_a_valid_vote_with_its_cost(llm: LLMServer, provider: str) -> None:
    snapshot = live(uptrend())
    result = await voter(llm, provider).vote(snapshot)
    assert result.valid, result.error
    assert result.action in ("buy", "sell", "hold") and result.probability is not None
    assert result.horizon == "4h" and result.rationale
    assert result.cost > 0 and result.tokens_in > 100 and result.tokens_out > 0 and result.latency_ms >= 0
    assert not result.cache_hit
    (request,) = llm.requests
    assert request.status == 200 and request.output_kind == "json"  # structured output was asked for
    assert request.schema is not None and set(request.schema["properties"]) >= {"action", "probability"}
    assert any(snapshot.prompt in m.get("content", "") for m in request.messages)
    if result.action == "buy":
        assert result.stop_loss is not None and result.stop_loss < snapshot.price


async def test_invalid_json_is_an_abstention_that_still_costs(llm: LLMServer) -> None:
    llm.set_invalid_json("gpt-4o-mini")
    result = await voter(llm).vote(live(uptrend()))
    assert not result.valid and result.abstain_reason == "invalid_json" and result.action is None
    assert result.cost > 0 and result.tokens_out > 0


async def test_schema_violations_and_wrong_levels_are_abstentions(llm: LLMServer) -> None:
    snapshot = live(uptrend())
    llm.set_schema_violation("claude-haiku-4-5")
    broken = await voter(llm, "anthropic").vote(snapshot)
    assert broken.abstain_reason == "invalid_answer"
    llm.set_answer(
        "gemini-2.5-flash",
        {
            "action": "buy",
            "probability": 0.7,
            "horizon": "4h",
            "stop_loss": snapshot.price * 1.05,
            "take_profit": snapshot.price * 1.1,
            "rationale": "Stop above the price.",
        },
    )
    wrong = await voter(llm, "gemini").vote(snapshot)
    assert wrong.abstain_reason == "invalid_answer" and wrong.error and "stop loss" in wrong.error


async def test_slow_models_time_out(llm: LLMServer) -> None:
    llm.set_delay("gpt-4o-mini", 3.0)
    snapshot = live(uptrend())
    started = time.perf_counter()
    result = await voter(llm, timeout=0.3).vote(snapshot)
    assert time.perf_counter() - started < 2.0
    assert result.abstain_reason == "timeout" and result.cost == 0
    llm.set_delay("claude-haiku-4-5", 3.0)
    votes = await run_voters(
        [voter(llm, "anthropic", timeout=0.3), voter(llm, "gemini")], snapshot, deadline=2
    )
    assert votes[0].abstain_reason == "timeout" and votes[1].valid


@pytest.mark.parametrize(
    ("provider", "status", "error"),
    [
        ("openai", 500, "InternalServerError (HTTP 500)"),
        ("anthropic", 529, "InternalServerError"),
        ("gemini", 429, "RateLimitError (HTTP 429)"),
    ],
)
async def test_provider_errors_are_abstentions(
    llm: LLMServer, provider: str, status: int, error: str
) -> None:
    llm.set_error(LLM_MODELS[provider], status)
    started = time.perf_counter()
    result = await voter(llm, provider).vote(live(uptrend()))
    assert time.perf_counter() - started < 2.0  # not retried
    assert result.abstain_reason == "error" and result.error is not None and result.error.startswith(error)
    assert len(llm.requests) == 1


async def test_wrong_key_is_an_abstention(llm: LLMServer) -> None:
    config = LLMVoterConfig(model="gpt-4o-mini", api_base=llm.openai_base, api_key="sk-wrong", timeout=5)
    result = await LLMVoter(config).vote(live(uptrend()))
    assert result.abstain_reason == "error" and result.error is not None and "401" in result.error


async def test_identical_prompts_within_a_candle_come_from_the_cache(llm: LLMServer) -> None:
    cache = MemoryAnswerCache()
    snapshot = live(uptrend())
    first = await voter(llm, cache=cache).vote(snapshot)
    again = await voter(llm, cache=cache).vote(snapshot)
    assert first.valid and first.cost > 0
    assert again.cache_hit and again.cost == 0 and again.tokens_in == 0
    assert (again.action, again.probability, again.stop_loss) == (
        first.action,
        first.probability,
        first.stop_loss,
    )
    assert len(llm.requests) == 1

    other = await voter(llm, "anthropic", cache=cache).vote(snapshot)  # another model: its own answer
    moved = await voter(llm, cache=cache).vote(live(downtrend()))  # another prompt
    assert not other.cache_hit and not moved.cache_hit and len(llm.requests) == 3

    expired = replace(snapshot, valid_until_ms=int(time.time() * 1000) - 1)  # the candle is over
    cold = MemoryAnswerCache()
    await voter(llm, cache=cold).vote(expired)
    assert not (await voter(llm, cache=cold).vote(expired)).cache_hit


async def test_concurrent_identical_requests_ask_once(llm: LLMServer) -> None:
    llm.set_delay("gpt-4o-mini", 0.2)
    shared = voter(llm, cache=MemoryAnswerCache())
    snapshot = live(uptrend())
    votes: list[Vote] = await asyncio.gather(*(shared.vote(snapshot) for _ in range(4)))
    assert len(llm.requests) == 1
    assert sum(v.cache_hit for v in votes) == 3 and sum(v.cost > 0 for v in votes) == 1


async def test_invalid_answers_are_not_cached(llm: LLMServer) -> None:
    cache = MemoryAnswerCache()
    llm.set_invalid_json("gpt-4o-mini", times=1)
    snapshot = live(uptrend())
    assert (await voter(llm, cache=cache).vote(snapshot)).abstain_reason == "invalid_json"
    retried = await voter(llm, cache=cache).vote(snapshot)
    assert retried.valid and not retried.cache_hit and len(llm.requests) == 2


@pytest.mark.redis
async def test_the_redis_cache_is_shared_between_processes(llm: LLMServer, redis_url: str) -> None:
    first_process, second_process = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        snapshot = live(uptrend())
        one = voter(llm, "gemini")
        one.cache = RedisAnswerCache(first_process)
        two = voter(llm, "gemini")
        two.cache = RedisAnswerCache(second_process)
        asked, cached = await one.vote(snapshot), await two.vote(snapshot)
        assert asked.cost > Decimal(0) and cached.cache_hit and cached.cost == 0
        assert len(llm.requests) == 1
        ttl = await second_process.pttl("cu:consensus:" + one.cache_key(snapshot))
        assert 0 < ttl <= 60_000
    finally:
        await first_process.aclose()
        await second_process.aclose()


async def test_models_without_structured_output_use_json_mode_and_are_validated(llm: LLMServer) -> None:
    config = LLMVoterConfig(
        model="openai/house-model", api_base=llm.openai_base, api_key=llm.api_key("openai"), timeout=5
    )
    house = LLMVoter(config)
    assert not house.structured
    result = await house.vote(live(uptrend()))
    assert result.valid and result.cost == 0  # not in litellm's price map: no cost figure
    (request,) = llm.requests
    assert request.response_format == {"response_format": {"type": "json_object"}}
    llm.set_schema_violation("house-model")
    assert (await house.vote(live(downtrend()))).abstain_reason == "invalid_answer"
