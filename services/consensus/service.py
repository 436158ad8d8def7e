"""The consensus service: make a signal (snapshot -> votes -> weighted verdict, stored with every vote),
resolve signals whose horizon has passed, and report each voter's record.

Database work happens in short transactions of its own (`session_factory`); no transaction stays open
while the voters run. The caller counts the user's daily AI-signal quota (`Entitlements.use(user_id,
"ai_signal")`) before asking for a signal and passes the plan, which sets the daily AI budget.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import cast

import numpy as np
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ConsensusSignal, ConsensusVote
from db.types import utcnow
from services.consensus.aggregate import (
    Consensus,
    ProgressCallback,
    WeightedVote,
    aggregate,
    run_voters,
    track_weight,
)
from services.consensus.budget import BudgetStatus, budget_status
from services.consensus.cache import AnswerCache, MemoryAnswerCache, cache_key
from services.consensus.config import ConsensusSettings, LLMVoterConfig
from services.consensus.repository import ConsensusRepository
from services.consensus.snapshot import Snapshot, build_snapshot, closed_part
from services.consensus.track import UNRESOLVABLE, brier, is_hit, outcome_of, p_up_of
from services.consensus.voters import BUDGET, ERROR, Action, LLMVoter, Vote, Voter, VoterKind, ta_voters
from services.errors import NotFoundError, ValidationError
from services.exchanges.types import MarketInfo, Ticker
from services.market.analysis import Analysis, analyze
from services.market.data import TIMEFRAME_MS, MarketDataService, Series

log = structlog.get_logger(__name__)

REASON_BUDGET = "budget"
REASON_TA_ONLY = "ta_only"
RESOLUTION_TIMEFRAME = "1m"


class NotEnoughData(ValidationError):
    message_key = "consensus.errors.no_data"


class SignalNotFound(NotFoundError):
    message_key = "consensus.errors.not_found"


# ------------------------------------------------------------------------------------------ results


@dataclass(frozen=True, slots=True)
class VoteResult:
    voter: str
    kind: str  # llm | ta
    action: str | None  # buy | sell | hold; None for an abstention
    probability: float | None
    horizon: str | None
    stop_loss: Decimal | None
    take_profit: Decimal | None
    rationale: str | None
    valid: bool
    abstain_reason: (
        str | None
    )  # timeout | deadline | error | invalid_json | invalid_answer | no_data | budget
    latency_ms: int
    tokens_in: int
    tokens_out: int
    cost: Decimal  # USD
    cache_hit: bool
    weight: float  # the weight it was given (abstentions count for nothing whatever it is)


@dataclass(frozen=True, slots=True)
class TradeSuggestion:
    """What the Trade button proposes: the verdict's side, with the agreeing votes' weighted levels."""

    side: str  # buy | sell
    exchange: str
    symbol: str
    entry_price: Decimal
    stop_loss: Decimal | None
    take_profit: Decimal | None


@dataclass(frozen=True, slots=True)
class SignalResult:
    signal_id: int
    user_id: int | None
    exchange: str
    symbol: str
    symbol_class: str
    timeframe: str
    horizon: str
    entry_price: Decimal
    action: str  # buy | sell | hold
    probability: float | None  # weighted confidence of the votes agreeing with the verdict
    probability_up: float | None
    score: float  # -1..1
    quorum_met: bool
    quorum: int
    valid_votes: int
    reasons: tuple[str, ...]  # quorum | neutral | budget | ta_only
    total_cost: Decimal  # USD
    created_at: datetime
    resolve_at: datetime
    votes: tuple[VoteResult, ...]
    trade: TradeSuggestion | None  # for buy and sell verdicts
    snapshot_hash: str
    resolved_at: datetime | None = None
    realised_price: Decimal | None = None
    outcome: str | None = None  # up | down | flat | unresolvable
    hit: bool | None = None


@dataclass(frozen=True, slots=True)
class ResolvedSignal:
    signal_id: int
    user_id: int | None
    symbol: str
    action: str
    entry_price: Decimal
    realised_price: Decimal | None
    outcome: str
    hit: bool | None


@dataclass(frozen=True, slots=True)
class ResolveReport:
    resolved: tuple[ResolvedSignal, ...]
    pending: int  # due but without a realised price yet (or whose market data failed)


@dataclass(frozen=True, slots=True)
class VoterRecord:
    voter: str
    kind: str  # llm | ta | consensus (the verdicts themselves)
    active: bool  # among the voters running now
    prior_weight: float | None
    signals: int  # signals it voted on (abstentions included)
    valid: int
    resolved: int
    hits: int
    hit_rate: float | None
    brier: float | None
    avg_cost: Decimal  # USD per vote asked (cache hits cost 0; budget skips are not counted)
    total_cost: Decimal
    avg_latency_ms: int | None
    cache_hits: int


# ------------------------------------------------------------------------------------------ service


def _money(value: float | None) -> Decimal | None:
    if value is None or not math.isfinite(value):
        return None
    return Decimal(str(value))


def _to_step(value: float, step: Decimal | None) -> Decimal:
    if step is not None and step > 0:
        return (Decimal(str(value)) / step).to_integral_value(ROUND_HALF_EVEN) * step
    return Decimal(f"{value:.8g}")


def suggest_trade(
    consensus: Consensus, weighted: Sequence[WeightedVote], market: MarketInfo, exchange: str, entry: Decimal
) -> TradeSuggestion | None:
    if consensus.action not in ("buy", "sell") or not consensus.quorum_met:
        return None
    agreeing = [wv for wv in weighted if wv.vote.valid and wv.vote.action == consensus.action]

    def level(attr: str) -> Decimal | None:
        pairs = [(wv.weight, getattr(wv.vote, attr)) for wv in agreeing if getattr(wv.vote, attr) is not None]
        total = sum(w for w, _ in pairs)
        if not pairs or total <= 0:
            return None
        return _to_step(sum(w * v for w, v in pairs) / total, market.price_step)

    stop, take = level("stop_loss"), level("take_profit")
    below, above = (stop, take) if consensus.action == "buy" else (take, stop)
    if (
        (below is not None and below >= entry)
        or (above is not None and above <= entry)
        or (below is not None and below <= 0)
    ):
        stop = take = None  # the market moved past the levels since the snapshot
    return TradeSuggestion(consensus.action, exchange, market.symbol, entry, stop, take)


def _vote_result(row: ConsensusVote) -> VoteResult:
    return VoteResult(
        voter=row.voter,
        kind=row.kind,
        action=row.action,
        probability=row.probability,
        horizon=row.horizon,
        stop_loss=row.stop_loss,
        take_profit=row.take_profit,
        rationale=row.rationale,
        valid=row.valid,
        abstain_reason=row.abstain_reason,
        latency_ms=row.latency_ms,
        tokens_in=row.tokens_in,
        tokens_out=row.tokens_out,
        cost=row.cost,
        cache_hit=row.cache_hit,
        weight=row.weight,
    )


def _stored_vote(row: ConsensusVote) -> Vote:
    return Vote(
        row.voter,
        cast(VoterKind, row.kind),
        cast(Action | None, row.action),
        row.probability,
        row.horizon,
        stop_loss=float(row.stop_loss) if row.stop_loss is not None else None,
        take_profit=float(row.take_profit) if row.take_profit is not None else None,
        abstain_reason=None if row.valid else (row.abstain_reason or ERROR),
    )


class ConsensusService:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        market: MarketDataService,
        voters: Sequence[Voter],
        *,
        settings: ConsensusSettings | None = None,
        cache: AnswerCache | None = None,
        clock: Callable[[], datetime] = utcnow,
        analysis_slots: int = 2,
    ) -> None:
        names = [voter.name for voter in voters]
        if len(set(names)) != len(names):
            raise ValueError(f"voter names must be unique: {names}")
        self.session_factory = session_factory
        self.market = market
        self.voters = list(voters)
        self.settings = settings or ConsensusSettings()
        self.cache = cache if cache is not None else MemoryAnswerCache()
        self.clock = clock
        self._slots = asyncio.Semaphore(analysis_slots)

    @classmethod
    def from_settings(
        cls,
        session_factory: async_sessionmaker[AsyncSession],
        market: MarketDataService,
        settings: ConsensusSettings,
        llm_voters: Sequence[LLMVoterConfig],
        *,
        cache: AnswerCache | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> ConsensusService:
        """The TA voters named in the settings and one LLM voter per entry (see `resolve_llm_voters`),
        sharing one cache for snapshots and answers."""
        shared = cache if cache is not None else MemoryAnswerCache()
        voters: list[Voter] = ta_voters(
            settings.ta_voter_names, prior_weight=settings.ta_weight, timeout=settings.ta_timeout
        )
        voters += [
            LLMVoter(
                config,
                cache=shared,
                max_tokens=settings.llm_max_tokens,
                temperature=settings.llm_temperature,
                clock=lambda: clock().timestamp(),
            )
            for config in llm_voters
        ]
        return cls(session_factory, market, voters, settings=settings, cache=shared, clock=clock)

    @property
    def llm_voters(self) -> list[Voter]:
        return [voter for voter in self.voters if voter.kind == "llm"]

    # -------------------------------------------------------------------------------------- snapshot

    async def snapshot(
        self, symbol: str, timeframe: str | None = None, *, exchange: str | None = None
    ) -> tuple[Snapshot, Ticker, MarketInfo]:
        """The shared snapshot of the symbol's last closed candle, the ticker now and the market."""
        tf = self.market.resolve_timeframe(timeframe)
        market = await self.market.market(symbol, exchange)
        exchange_id = exchange or self.market.default_exchange
        series, ticker = await asyncio.gather(
            self.market.candles(market.symbol, tf, exchange=exchange_id),
            self.market.ticker(market.symbol, exchange_id),
        )
        now_ms = int(self.clock().timestamp() * 1000)
        closed = closed_part(series, now_ms)
        if len(closed.ohlcv) == 0:
            raise NotEnoughData(symbol=market.symbol, timeframe=tf)
        candle_ts = int(closed.ohlcv.timestamp_ms[-1])
        period = TIMEFRAME_MS[tf]
        max_age = self.settings.snapshot_max_age_seconds * 1000
        valid_until = candle_ts + 2 * period  # when the candle forming now closes
        bucket = 0
        if period > max_age:
            bucket = now_ms // max_age
            valid_until = min(valid_until, (bucket + 1) * max_age)
        key = cache_key("snapshot", exchange_id, market.symbol, tf, str(candle_ts), str(bucket))
        cached = await self.cache.get(key)
        if cached is not None:
            try:
                return Snapshot.from_json(cached), ticker, market
            except (ValueError, TypeError, KeyError):
                log.warning("consensus.snapshot_cache_unreadable", symbol=market.symbol)
        async with self._slots:
            analysis = await asyncio.to_thread(analyze, closed.ohlcv)
        snapshot = self._build(closed, analysis, ticker, now_ms, valid_until)
        await self.cache.set(key, snapshot.to_json(), (valid_until - now_ms) / 1000)
        return snapshot, ticker, market

    @staticmethod
    def _build(series: Series, analysis: Analysis, ticker: Ticker, now_ms: int, valid_until: int) -> Snapshot:
        return build_snapshot(series, analysis, ticker, now_ms=now_ms, valid_until_ms=valid_until)

    # ---------------------------------------------------------------------------------------- signal

    async def budget(self, user_id: int | None, plan: str = "free") -> BudgetStatus:
        async with self.session_factory() as session:
            return await budget_status(
                ConsensusRepository(session), self.settings, user_id, plan, self.clock()
            )

    async def signal(
        self,
        user_id: int | None,
        symbol: str,
        timeframe: str | None = None,
        *,
        plan: str = "free",
        exchange: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> SignalResult:
        """Ask every voter about one snapshot, weigh the votes, store the signal with every vote."""
        snapshot, ticker, market = await self.snapshot(symbol, timeframe, exchange=exchange)
        now = self.clock()
        names = [voter.name for voter in self.voters]
        reasons: list[str] = []
        skipped: dict[str, Vote] = {}
        async with self.session_factory() as session:
            repo = ConsensusRepository(session)
            records = await repo.track_records(names, snapshot.symbol_class, snapshot.horizon)
            if self.llm_voters:
                status = await budget_status(repo, self.settings, user_id, plan, now)
                if not status.allowed:
                    reasons.append(REASON_BUDGET)
                    detail = f"daily AI budget reached ({status.exceeded})"
                    skipped = {v.name: Vote.abstain(v.name, "llm", BUDGET, detail) for v in self.llm_voters}
            else:
                reasons.append(REASON_TA_ONLY)
        weights = {
            voter.name: track_weight(
                voter.prior_weight, records.get(voter.name), self.settings.shrinkage_signals
            )
            for voter in self.voters
        }
        votes = await run_voters(
            self.voters,
            snapshot,
            deadline=self.settings.deadline_seconds,
            skipped=skipped,
            progress=progress,
        )
        weighted = [WeightedVote(vote, weights[vote.voter]) for vote in votes]
        consensus = aggregate(
            weighted, quorum=self.settings.quorum, threshold=self.settings.verdict_threshold
        )
        reasons = [*consensus.reasons, *reasons]
        entry = ticker.last
        trade = suggest_trade(consensus, weighted, market, snapshot.exchange, entry)
        total_cost = sum((vote.cost for vote in votes), Decimal(0))
        created_at = self.clock()
        resolve_at = created_at + timedelta(minutes=snapshot.horizon_minutes)
        signal = ConsensusSignal(
            user_id=user_id,
            exchange=snapshot.exchange,
            symbol=snapshot.symbol,
            symbol_class=snapshot.symbol_class,
            timeframe=snapshot.timeframe,
            horizon=snapshot.horizon,
            horizon_minutes=snapshot.horizon_minutes,
            candle_ts=snapshot.candle_ts,
            snapshot_hash=snapshot.hash,
            entry_price=entry,
            action=consensus.action,
            probability=consensus.probability,
            probability_up=consensus.probability_up,
            score=consensus.score,
            quorum_met=consensus.quorum_met,
            valid_votes=consensus.valid_votes,
            reason=",".join(reasons) or None,
            total_cost=total_cost,
            flat_band_pct=snapshot.flat_band_pct,
            created_at=created_at,
            resolve_at=resolve_at,
        )
        rows = [
            ConsensusVote(
                voter=wv.vote.voter,
                kind=wv.vote.kind,
                action=wv.vote.action,
                probability=wv.vote.probability,
                horizon=wv.vote.horizon,
                stop_loss=_money(wv.vote.stop_loss),
                take_profit=_money(wv.vote.take_profit),
                rationale=wv.vote.rationale[:255] if wv.vote.rationale else None,
                valid=wv.vote.valid,
                abstain_reason=wv.vote.abstain_reason,
                error=wv.vote.error,
                latency_ms=wv.vote.latency_ms,
                tokens_in=wv.vote.tokens_in,
                tokens_out=wv.vote.tokens_out,
                cost=wv.vote.cost,
                cache_hit=wv.vote.cache_hit,
                weight=wv.weight,
                created_at=created_at,
            )
            for wv in weighted
        ]
        async with self.session_factory() as session:
            session.add(signal)
            await session.flush()
            for row in rows:
                row.signal_id = signal.id
            session.add_all(rows)
            await session.commit()
        log.info(
            "consensus.signal",
            signal_id=signal.id,
            symbol=signal.symbol,
            timeframe=signal.timeframe,
            action=signal.action,
            score=round(consensus.score, 4),
            valid=consensus.valid_votes,
            cost=str(total_cost),
        )
        return self._result(signal, rows, trade)

    def _result(
        self, signal: ConsensusSignal, rows: Sequence[ConsensusVote], trade: TradeSuggestion | None
    ) -> SignalResult:
        return SignalResult(
            signal_id=signal.id,
            user_id=signal.user_id,
            exchange=signal.exchange,
            symbol=signal.symbol,
            symbol_class=signal.symbol_class,
            timeframe=signal.timeframe,
            horizon=signal.horizon,
            entry_price=signal.entry_price,
            action=signal.action,
            probability=signal.probability,
            probability_up=signal.probability_up,
            score=signal.score,
            quorum_met=signal.quorum_met,
            quorum=self.settings.quorum,
            valid_votes=signal.valid_votes,
            reasons=tuple(signal.reason.split(",")) if signal.reason else (),
            total_cost=signal.total_cost,
            created_at=signal.created_at,
            resolve_at=signal.resolve_at,
            votes=tuple(_vote_result(row) for row in rows),
            trade=trade,
            snapshot_hash=signal.snapshot_hash,
            resolved_at=signal.resolved_at,
            realised_price=signal.realised_price,
            outcome=signal.outcome,
            hit=signal.hit,
        )

    async def get_signal(self, signal_id: int) -> SignalResult:
        """A stored signal with its votes (for the Trade button); the trade levels as they were stored."""
        async with self.session_factory() as session:
            found = await ConsensusRepository(session).signal_with_votes(signal_id)
        if found is None:
            raise SignalNotFound(signal_id=signal_id)
        signal, rows = found
        trade = None
        if signal.action in ("buy", "sell") and signal.quorum_met:
            market = await self.market.market(signal.symbol, signal.exchange)
            weighted = [WeightedVote(_stored_vote(row), row.weight) for row in rows]
            consensus = Consensus(
                cast(Action, signal.action),
                signal.score,
                signal.probability,
                signal.probability_up,
                signal.quorum_met,
                signal.valid_votes,
                (),
            )
            trade = suggest_trade(consensus, weighted, market, signal.exchange, signal.entry_price)
        return self._result(signal, rows, trade)

    # ------------------------------------------------------------------------------------ resolution

    async def resolve_due(self, now: datetime | None = None) -> ResolveReport:
        """Resolve the signals whose horizon has ended against the realised price, and fold each valid
        vote's Brier score and hit into its voter's record for the symbol class and horizon."""
        now = now or self.clock()
        resolved: list[ResolvedSignal] = []
        pending = 0
        frames: dict[tuple[str, str, str], Series | None] = {}
        async with self.session_factory() as session:
            repo = ConsensusRepository(session)
            due = await repo.due(now, self.settings.resolve_batch)
            for signal in due:
                price = await self._realised_price(signal, frames)
                if price is None:
                    pending += 1
                    continue
                signal.resolved_at = now
                if price == UNRESOLVABLE:
                    signal.outcome = UNRESOLVABLE
                    resolved.append(
                        ResolvedSignal(
                            signal.id,
                            signal.user_id,
                            signal.symbol,
                            signal.action,
                            signal.entry_price,
                            None,
                            UNRESOLVABLE,
                            None,
                        )
                    )
                    continue
                assert isinstance(price, Decimal)
                outcome = outcome_of(signal.entry_price, price, signal.flat_band_pct)
                signal.realised_price = price
                signal.outcome = outcome
                signal.hit = is_hit(signal.action, outcome)
                if signal.probability_up is not None:
                    signal.brier = brier(signal.probability_up, outcome)
                for vote in await repo.valid_votes(signal.id):
                    if vote.action is None:
                        continue
                    vote.brier = brier(p_up_of(vote.action, vote.probability), outcome)
                    vote.hit = is_hit(vote.action, outcome)
                    await repo.add_to_score(
                        vote.voter, signal.symbol_class, signal.horizon, vote.brier, vote.hit, now
                    )
                resolved.append(
                    ResolvedSignal(
                        signal.id,
                        signal.user_id,
                        signal.symbol,
                        signal.action,
                        signal.entry_price,
                        price,
                        outcome,
                        signal.hit,
                    )
                )
            await session.commit()
        if resolved or pending:
            log.info("consensus.resolved", resolved=len(resolved), pending=pending)
        return ResolveReport(tuple(resolved), pending)

    async def _series(
        self, frames: dict[tuple[str, str, str], Series | None], exchange: str, symbol: str, tf: str
    ) -> Series | None:
        key = (exchange, symbol, tf)
        if key not in frames:
            try:
                frames[key] = await self.market.candles(symbol, tf, exchange=exchange)
            except Exception as exc:
                log.warning(
                    "consensus.resolve_data_failed", symbol=symbol, timeframe=tf, error=type(exc).__name__
                )
                frames[key] = None
        return frames[key]

    async def _realised_price(
        self, signal: ConsensusSignal, frames: dict[tuple[str, str, str], Series | None]
    ) -> Decimal | str | None:
        """The open of the first candle that opens at or after the horizon's end (1-minute candles, or
        the signal's own timeframe when those no longer reach back); None while it has not opened yet or
        the data is unavailable; ``unresolvable`` when no history covers it any more."""
        target = int(signal.resolve_at.timestamp() * 1000)
        for tf in dict.fromkeys((RESOLUTION_TIMEFRAME, signal.timeframe)):
            series = await self._series(frames, signal.exchange, signal.symbol, tf)
            if series is None:
                return None
            stamps = series.ohlcv.timestamp_ms
            index = int(np.searchsorted(stamps, target, side="left"))
            if index >= len(stamps):
                return None  # the candle after the horizon has not opened yet
            if int(stamps[index]) - target < TIMEFRAME_MS[tf]:
                return Decimal(str(float(series.ohlcv.open[index])))
        return UNRESOLVABLE

    # --------------------------------------------------------------------------------------- records

    async def records(self) -> list[VoterRecord]:
        """Each voter's record (running voters first, in their order; then voters no longer running),
        and the verdicts' own record as the voter ``consensus``."""
        async with self.session_factory() as session:
            repo = ConsensusRepository(session)
            stats = {s.voter: s for s in await repo.vote_stats()}
            scores = await repo.scores_by_voter()
            made, verdicts, verdict_cost = await repo.consensus_record()
        priors = {voter.name: voter for voter in self.voters}
        names = [voter.name for voter in self.voters] + sorted(set(stats) - set(priors))
        out: list[VoterRecord] = []
        for name in names:
            stat = stats.get(name)
            score = scores.get(name)
            voter = priors.get(name)
            calls = stat.calls if stat else 0
            total_cost = stat.total_cost if stat else Decimal(0)
            out.append(
                VoterRecord(
                    voter=name,
                    kind=voter.kind if voter else (stat.kind if stat else "llm"),
                    active=voter is not None,
                    prior_weight=voter.prior_weight if voter else None,
                    signals=stat.votes if stat else 0,
                    valid=stat.valid if stat else 0,
                    resolved=score.resolved if score else 0,
                    hits=score.hits if score else 0,
                    hit_rate=score.hit_rate if score else None,
                    brier=score.brier if score else None,
                    avg_cost=total_cost / calls if calls else Decimal(0),
                    total_cost=total_cost,
                    avg_latency_ms=round(stat.avg_latency_ms)
                    if stat and stat.avg_latency_ms is not None
                    else None,
                    cache_hits=stat.cache_hits if stat else 0,
                )
            )
        out.append(
            VoterRecord(
                voter="consensus",
                kind="consensus",
                active=True,
                prior_weight=None,
                signals=made,
                valid=made,
                resolved=verdicts.resolved,
                hits=verdicts.hits,
                hit_rate=verdicts.hit_rate,
                brier=verdicts.brier,
                avg_cost=verdict_cost / made if made else Decimal(0),
                total_cost=verdict_cost,
                avg_latency_ms=None,
                cache_hits=0,
            )
        )
        return out


__all__ = [
    "ConsensusService",
    "NotEnoughData",
    "ResolveReport",
    "ResolvedSignal",
    "SignalNotFound",
    "SignalResult",
    "TradeSuggestion",
    "VoteResult",
    "VoterRecord",
    "suggest_trade",
]
