"""Consensus: aggregation, weights, TA voters, answer validation, running voters, settings, scoring."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from decimal import Decimal
from typing import Annotated

import pytest
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.consensus.aggregate import (
    MIN_SKILL_WEIGHT,
    Progress,
    TrackRecord,
    WeightedVote,
    aggregate,
    run_voters,
    skill_weight,
    track_weight,
)
from services.consensus.cache import MemoryAnswerCache
from services.consensus.config import (
    ConsensusSettings,
    LLMVoterConfig,
    parse_llm_voters,
    resolve_llm_voters,
)
from services.consensus.service import suggest_trade
from services.consensus.snapshot import Snapshot, symbol_class
from services.consensus.track import brier, is_hit, outcome_of, p_up_of
from services.consensus.voters import (
    InvalidAnswer,
    MeanReversionVoter,
    MomentumVoter,
    TrendVoter,
    Vote,
    VoterKind,
    parse_answer,
)
from tests.unit.consensus_samples import downtrend, market_info, snapshot_of, uptrend
from tests.unit.market_samples import from_closes


def vote(name: str, action: str | None, p: float | None = None, **kw: object) -> Vote:
    return Vote(name, "llm", action, p, "4h", **kw)  # type: ignore[arg-type]


def abstention(name: str, reason: str = "timeout") -> Vote:
    return Vote.abstain(name, "llm", reason)


# ---------------------------------------------------------------------------------------- aggregation


def test_weighted_score_and_verdict() -> None:
    votes = [
        WeightedVote(vote("a", "buy", 0.8), 2.0),
        WeightedVote(vote("b", "sell", 0.6), 1.0),
        WeightedVote(vote("c", "hold", 0.5), 1.0),
    ]
    result = aggregate(votes)
    assert result.score == pytest.approx((2 * 0.8 - 0.6 + 0) / 4)
    assert result.action == "buy"  # 0.25 is the threshold, inclusive
    assert result.probability == pytest.approx(0.8)  # the agreeing vote only
    assert result.probability_up == pytest.approx((2 * 0.8 + 0.4 + 0.5) / 4)
    assert result.quorum_met and result.valid_votes == 3 and result.reasons == ()


def test_abstentions_leave_numerator_and_denominator() -> None:
    base = [WeightedVote(vote("a", "sell", 0.7), 1.0), WeightedVote(vote("b", "sell", 0.9), 3.0)]
    with_abstentions = [
        *base,
        WeightedVote(abstention("c"), 50.0),
        WeightedVote(abstention("d", "invalid_json"), 50.0),
    ]
    plain, mixed = aggregate(base), aggregate(with_abstentions)
    assert mixed.score == pytest.approx(plain.score) == pytest.approx(-(0.7 + 2.7) / 4)
    assert mixed.action == "sell" and mixed.valid_votes == 2
    assert mixed.probability == pytest.approx((0.7 + 2.7) / 4)


def test_quorum_not_met_is_hold_with_the_reason() -> None:
    votes = [WeightedVote(vote("a", "buy", 0.9), 1.0), WeightedVote(abstention("b"), 1.0)]
    result = aggregate(votes, quorum=2)
    assert result.action == "hold" and not result.quorum_met and result.reasons == ("quorum",)
    assert result.score == pytest.approx(0.9)
    assert aggregate(votes, quorum=1).action == "buy"
    nothing = aggregate([WeightedVote(abstention("a"), 1.0)])
    assert nothing.action == "hold" and nothing.probability_up is None and nothing.valid_votes == 0


def test_split_votes_are_a_neutral_hold() -> None:
    votes = [WeightedVote(vote("a", "buy", 0.7), 1.0), WeightedVote(vote("b", "sell", 0.65), 1.0)]
    result = aggregate(votes)
    assert result.action == "hold" and result.reasons == ("neutral",) and result.probability is None
    assert aggregate(votes, threshold=0.02).action == "buy"


def test_weight_shrinks_the_record_toward_the_prior() -> None:
    assert track_weight(1.5, None) == 1.5
    assert track_weight(1.5, TrackRecord()) == 1.5
    coin = TrackRecord(resolved=30, brier_sum=30 * 0.25)
    assert track_weight(1.5, coin) == pytest.approx(1.5 * 0.5 + 1.0 * 0.5)
    sharp = TrackRecord(resolved=270, brier_sum=270 * 0.1)
    assert track_weight(1.0, sharp) == pytest.approx(1.0 * 0.1 + (2 - 0.4) * 0.9)
    bad = TrackRecord(resolved=3000, brier_sum=3000 * 0.6)
    assert track_weight(1.0, bad) == pytest.approx(1.0 * 30 / 3030 + MIN_SKILL_WEIGHT * 3000 / 3030)
    assert skill_weight(0.0) == 2.0 and skill_weight(0.25) == 1.0 and skill_weight(0.9) == MIN_SKILL_WEIGHT
    assert track_weight(1.0, coin, n0=10) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------ TA voters


async def test_ta_voters_are_deterministic_and_follow_the_market() -> None:
    up, down = uptrend(), downtrend()
    voters = [TrendVoter(), MomentumVoter(), MeanReversionVoter()]
    first = [await v.vote(up) for v in voters]
    again = [await v.vote(Snapshot.from_json(up.to_json())) for v in voters]
    assert [replace(v, latency_ms=0) for v in first] == [replace(v, latency_ms=0) for v in again]
    trend_up, trend_down = await TrendVoter().vote(up), await TrendVoter().vote(down)
    assert trend_up.action == "buy" and trend_down.action == "sell"
    assert trend_up.probability is not None and 0.5 < trend_up.probability <= 0.85
    assert trend_up.stop_loss is not None and trend_up.take_profit is not None
    assert trend_up.stop_loss < up.price < trend_up.take_profit
    assert trend_down.take_profit is not None and trend_down.take_profit < down.price
    assert all(v.valid and v.cost == 0 and v.kind == "ta" for v in first)
    assert {v.voter for v in first} == {"ta.trend", "ta.momentum", "ta.mean_reversion"}


async def test_ta_voters_abstain_without_data_and_mean_reversion_fades_a_stretch() -> None:
    short = snapshot_of(from_closes([100.0, 101.0, 100.5]))
    for voter in (TrendVoter(), MomentumVoter(), MeanReversionVoter()):
        result = await voter.vote(short)
        assert not result.valid and result.abstain_reason == "no_data"
    closes = [100.0] * 60 + [100.0 + 1.5 * i for i in range(1, 13)]
    stretched = snapshot_of(from_closes(closes))
    fade = await MeanReversionVoter().vote(stretched)
    assert fade.action == "sell"


# -------------------------------------------------------------------------------------- validation


def answer(**changes: object) -> str:
    data: dict[str, object] = {
        "action": "buy",
        "probability": 0.66,
        "horizon": "4h",
        "stop_loss": 95.0,
        "take_profit": 110.0,
        "rationale": "Trend up, RSI neutral.",
    }
    data.update(changes)
    return json.dumps(data)


def test_valid_answers_parse() -> None:
    parsed = parse_answer(answer(), 100.0)
    assert parsed.action == "buy" and parsed.probability == 0.66
    assert parse_answer("```json\n" + answer() + "\n```", 100.0).take_profit == 110.0
    sell = parse_answer(answer(action="sell", stop_loss=104, take_profit=92), 100.0)
    assert sell.action == "sell"
    hold = parse_answer(answer(action="hold", stop_loss=None, take_profit=None), 100.0)
    assert hold.stop_loss is None


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "invalid_json"),
        ('Sure! {"action": "buy", "prob', "invalid_json"),
        ("[1, 2]", "invalid_json"),
        (answer(action="long"), "invalid_answer"),
        (answer(probability=1.2), "invalid_answer"),
        (answer(probability="NaN"), "invalid_answer"),
        (answer(rationale="x" * 201), "invalid_answer"),
        (answer(rationale=""), "invalid_answer"),
        (answer(stop_loss=101.0), "invalid_answer"),  # buy with the stop above the price
        (answer(take_profit=99.0), "invalid_answer"),
        (answer(action="sell", stop_loss=95.0, take_profit=90.0), "invalid_answer"),
        (answer(horizon="soon"), "invalid_answer"),
        (answer(extra="field"), "invalid_answer"),
        (json.dumps({"action": "buy", "probability": 0.6}), "invalid_answer"),
    ],
)
def test_invalid_answers_are_refused(content: str, reason: str) -> None:
    with pytest.raises(InvalidAnswer) as caught:
        parse_answer(content, 100.0)
    assert caught.value.reason == reason


# ------------------------------------------------------------------------------------------ running


class ScriptedVoter:
    kind: VoterKind = "llm"

    def __init__(self, name: str, *, delay: float = 0.0, fail: bool = False, timeout: float = 1.0) -> None:
        self.name = name
        self.prior_weight = 1.0
        self.timeout = timeout
        self.delay = delay
        self.fail = fail
        self.calls = 0

    async def vote(self, snapshot: Snapshot) -> Vote:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("boom")
        return Vote(self.name, "llm", "buy", 0.7, "4h")


async def test_run_voters_timeouts_deadline_errors_and_skips() -> None:
    snapshot = uptrend()
    fast = ScriptedVoter("fast")
    slow = ScriptedVoter("slow", delay=5.0, timeout=0.05)
    late = ScriptedVoter("late", delay=5.0, timeout=10.0)
    broken = ScriptedVoter("broken", fail=True)
    skipped = ScriptedVoter("skipped")
    seen: list[Progress] = []

    async def progress(item: Progress) -> None:
        seen.append(item)

    loop = asyncio.get_running_loop()
    started = loop.time()
    votes = await run_voters(
        [fast, slow, late, broken, skipped],
        snapshot,
        deadline=0.3,
        skipped={"skipped": Vote.abstain("skipped", "llm", "budget")},
        progress=progress,
    )
    assert loop.time() - started < 1.0
    assert [v.voter for v in votes] == ["fast", "slow", "late", "broken", "skipped"]
    assert votes[0].valid
    assert [v.abstain_reason for v in votes[1:]] == ["timeout", "deadline", "error", "budget"]
    assert skipped.calls == 0
    assert [p.done for p in seen] == [2, 3, 4] and all(p.total == 5 for p in seen)


# ------------------------------------------------------------------------------------------ settings


def test_llm_voters_from_json_and_defaults_from_keys() -> None:
    raw = (
        '[{"model": "gpt-4o-mini", "weight": 1.5, "timeout": 8},'
        ' {"model": "anthropic/claude-haiku-4-5", "api_base": "http://x", "api_key": "k"}]'
    )
    voters = parse_llm_voters(raw)
    assert [v.model for v in voters] == ["gpt-4o-mini", "anthropic/claude-haiku-4-5"]
    assert voters[0].weight == 1.5 and voters[0].timeout == 8 and voters[1].api_base == "http://x"
    assert parse_llm_voters("") == [] and parse_llm_voters(None) == []
    with pytest.raises(ValueError):
        parse_llm_voters('[{"model": "x", "colour": "red"}]')
    filled = resolve_llm_voters(voters, openai_api_key=SecretStr("sk-o"), anthropic_api_key=SecretStr("sk-a"))
    assert filled[0].api_key is not None and filled[0].api_key.get_secret_value() == "sk-o"
    assert filled[1].api_key is not None and filled[1].api_key.get_secret_value() == "k"
    defaults = resolve_llm_voters([], openai_api_key=SecretStr("o"), gemini_api_key=SecretStr("g"))
    assert [v.model for v in defaults] == ["gpt-4o-mini", "gemini/gemini-2.5-flash"]
    assert resolve_llm_voters(None) == []


class AppSettings(BaseSettings):
    """The consensus fields as the bot's settings declare them."""

    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="ignore")

    llm_voters: Annotated[list[LLMVoterConfig], NoDecode] = Field(default_factory=list)
    openai_api_key: SecretStr | None = None
    anthropic_api_key: SecretStr | None = None
    gemini_api_key: SecretStr | None = None
    consensus: ConsensusSettings = Field(default_factory=ConsensusSettings)

    @field_validator("llm_voters", mode="before")
    @classmethod
    def _parse_llm_voters(cls, value: object) -> object:
        return parse_llm_voters(value) if isinstance(value, str) else value


def test_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_VOTERS", "")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    empty = AppSettings()
    assert empty.llm_voters == [] and empty.consensus.quorum == 2
    defaults = resolve_llm_voters(empty.llm_voters, openai_api_key=empty.openai_api_key)
    assert [v.model for v in defaults] == ["gpt-4o-mini"]

    monkeypatch.setenv("LLM_VOTERS", '[{"model": "gemini/gemini-2.5-flash", "timeout": 4}]')
    monkeypatch.setenv("CONSENSUS__QUORUM", "3")
    monkeypatch.setenv("CONSENSUS__DAILY_BUDGET_USD", '{"free": "0.01", "pro": "3"}')
    monkeypatch.setenv("CONSENSUS__TA_VOTERS", "trend,momentum")
    settings = AppSettings()
    (gemini,) = settings.llm_voters
    assert gemini.timeout == 4 and gemini.voter_name == "gemini/gemini-2.5-flash"
    assert settings.consensus.quorum == 3
    assert settings.consensus.budget_for("pro") == Decimal(3)
    assert settings.consensus.budget_for("basic") == Decimal("0.01")  # not listed: the free budget
    assert settings.consensus.ta_voter_names == ("trend", "momentum")
    with pytest.raises(ValueError):
        ConsensusSettings(ta_voters="trend,astrology")


# -------------------------------------------------------------------------------- scoring and data


def test_outcomes_brier_and_hits() -> None:
    assert outcome_of(Decimal(100), Decimal("100.5"), 0.3) == "up"
    assert outcome_of(Decimal(100), Decimal("99.5"), 0.3) == "down"
    assert outcome_of(Decimal(100), Decimal("100.2"), 0.3) == "flat"
    assert brier(p_up_of("buy", 0.8), "up") == pytest.approx(0.04)
    assert brier(p_up_of("sell", 0.8), "up") == pytest.approx(0.64)
    assert brier(p_up_of("hold", 0.9), "flat") == 0.0
    assert brier(p_up_of("hold", 0.9), "down") == pytest.approx(0.25)
    assert is_hit("buy", "up") and is_hit("sell", "down") and is_hit("hold", "flat")
    assert not is_hit("buy", "flat") and not is_hit("sell", "up")


def test_symbol_classes_and_snapshot_round_trip() -> None:
    assert [symbol_class(b) for b in ("BTC", "eth", "SOL", "PEPE")] == ["major", "major", "large", "alt"]
    snapshot = uptrend()
    again = Snapshot.from_json(snapshot.to_json())
    assert again == snapshot and again.hash == snapshot.hash and again.prompt == snapshot.prompt
    assert snapshot.horizon == "4h" and snapshot.symbol_class == "major"
    assert f"Current price: {snapshot.price:g}" in snapshot.prompt and "Horizon: 4h" in snapshot.prompt
    other = snapshot_of(from_closes([100.0 + i for i in range(80)]))
    assert other.hash != snapshot.hash


async def test_memory_cache_expires() -> None:
    now = [1000.0]
    cache = MemoryAnswerCache(max_items=2, clock=lambda: now[0])
    await cache.set("a", "1", 10)
    await cache.set("b", "2", 10)
    await cache.set("c", "3", 10)
    assert await cache.get("a") is None and await cache.get("b") == "2"
    now[0] += 11
    assert await cache.get("c") is None


def test_prior_weights_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LLMVoterConfig(model="gpt-4o-mini", weight=0)


def test_the_trade_suggestion_takes_the_agreeing_votes_levels() -> None:
    market = market_info()
    votes = [
        WeightedVote(vote("a", "buy", 0.7, stop_loss=95.0, take_profit=110.0), 1.0),
        WeightedVote(vote("b", "buy", 0.6, stop_loss=98.0, take_profit=104.0), 3.0),
        WeightedVote(vote("c", "sell", 0.6, stop_loss=103.0, take_profit=90.0), 1.0),
        WeightedVote(abstention("d"), 9.0),
    ]
    verdict = aggregate(votes)
    assert verdict.action == "buy"
    trade = suggest_trade(verdict, votes, market, "binance", Decimal(100))
    assert trade is not None and trade.side == "buy" and trade.symbol == "BTC/USDT"
    assert trade.stop_loss == Decimal("97.25") and trade.take_profit == Decimal("105.50")
    assert suggest_trade(verdict, votes, market, "binance", Decimal(99)) is not None
    moved = suggest_trade(verdict, votes, market, "binance", Decimal("97.1"))
    assert moved is not None and moved.stop_loss is None and moved.take_profit is None
    hold = aggregate(votes[:1] + votes[3:])
    assert suggest_trade(hold, votes, market, "binance", Decimal(100)) is None  # quorum not met


def test_a_signal_trade_risks_one_percent_to_its_stop_within_the_position_limit() -> None:
    from decimal import Decimal as D

    from services.risk.sizing import size_by_risk

    # 1% of 10,000 at risk over a 5% stop is 2,000, under a 25% cap of 2,500
    assert size_by_risk(D(10_000), D(100), D(95), D(25)) == D("2000.00")
    # a tight stop would spend more than the position limit: capped
    assert size_by_risk(D(10_000), D(100), D("99.5"), D(25)) == D("2500.00")
    # no stop (or a stop on the wrong side): half the limit
    assert size_by_risk(D(10_000), D(100), None, D(25)) == D("1250.00")
    assert size_by_risk(D(10_000), D(100), D(101), D(25)) == D("1250.00")
