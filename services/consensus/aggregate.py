"""Running the voters and weighing their votes.

Running: every voter runs at once, each under its own timeout; whatever has not answered by the overall
deadline is cancelled. A timeout, the deadline, an error or an invalid answer is an abstention.

Weights: a voter's weight for a symbol class and horizon blends its prior weight with its track record,

    w = prior * n0 / (n0 + n) + skill * n / (n0 + n),    skill = max(0.05, 2 - 4 * B),

where n is the number of its resolved votes there, B their mean Brier score and n0 =
``shrinkage_signals`` (30): with no record w is the prior, at 30 resolved votes prior and record count
half each, and the record takes over from there. skill is 1 for a forecaster no better than a coin
(B = 0.25), 2 for a perfect one (B = 0) and falls to the floor of 0.05 by B = 0.49.

Verdict: over the valid votes only (an abstention is in neither the numerator nor the denominator),

    score = sum(w_i * s_i) / sum(w_i),    s_i = +p_i for buy, -p_i for sell, 0 for hold,

so the score lies in [-1, 1]. With fewer valid votes than the quorum the verdict is hold (reason
``quorum``). Otherwise it is buy when score >= threshold (0.25), sell when score <= -threshold, and hold
in between (reason ``neutral``). The verdict's probability is the weighted mean probability of the valid
votes that agree with it (None when none does); ``probability_up`` is the weighted mean of each vote's
implied probability of a rise (p for buy, 1 - p for sell, 0.5 for hold).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import structlog

from services.consensus.snapshot import Snapshot
from services.consensus.voters import DEADLINE, ERROR, TIMEOUT, Action, Vote, Voter

log = structlog.get_logger(__name__)

N0 = 30
MIN_SKILL_WEIGHT = 0.05
DEFAULT_THRESHOLD = 0.25
DEFAULT_QUORUM = 2
QUORUM = "quorum"
NEUTRAL = "neutral"


@dataclass(frozen=True, slots=True)
class TrackRecord:
    resolved: int = 0
    brier_sum: float = 0.0
    hits: int = 0

    @property
    def brier(self) -> float | None:
        return self.brier_sum / self.resolved if self.resolved else None

    @property
    def hit_rate(self) -> float | None:
        return self.hits / self.resolved if self.resolved else None


def skill_weight(brier: float) -> float:
    return max(MIN_SKILL_WEIGHT, 2.0 - 4.0 * brier)


def track_weight(prior: float, record: TrackRecord | None, n0: int = N0) -> float:
    if record is None or record.resolved <= 0 or record.brier is None:
        return prior
    n = record.resolved
    return prior * n0 / (n0 + n) + skill_weight(record.brier) * n / (n0 + n)


@dataclass(frozen=True, slots=True)
class WeightedVote:
    vote: Vote
    weight: float


@dataclass(frozen=True, slots=True)
class Consensus:
    action: Action
    score: float  # -1..1
    probability: float | None  # weighted confidence of the valid votes agreeing with the verdict
    probability_up: float | None
    quorum_met: bool
    valid_votes: int
    reasons: tuple[str, ...]


def aggregate(
    votes: Sequence[WeightedVote], *, quorum: int = DEFAULT_QUORUM, threshold: float = DEFAULT_THRESHOLD
) -> Consensus:
    valid = [wv for wv in votes if wv.vote.valid and wv.weight > 0]
    total = sum(wv.weight for wv in valid)
    if not valid or total <= 0:
        return Consensus("hold", 0.0, None, None, False, len(valid), (QUORUM,))
    score = sum(wv.weight * wv.vote.signed for wv in valid) / total
    p_up = sum(wv.weight * wv.vote.p_up for wv in valid) / total
    reasons: list[str] = []
    action: Action
    quorum_met = len(valid) >= quorum
    if not quorum_met:
        action = "hold"
        reasons.append(QUORUM)
    elif score >= threshold:
        action = "buy"
    elif score <= -threshold:
        action = "sell"
    else:
        action = "hold"
        reasons.append(NEUTRAL)
    agreeing = [wv for wv in valid if wv.vote.action == action]
    agreeing_weight = sum(wv.weight for wv in agreeing)
    probability = (
        sum(wv.weight * (wv.vote.probability or 0.0) for wv in agreeing) / agreeing_weight
        if agreeing and agreeing_weight > 0
        else None
    )
    return Consensus(action, score, probability, p_up, quorum_met, len(valid), tuple(reasons))


# ------------------------------------------------------------------------------------------ running


@dataclass(frozen=True, slots=True)
class Progress:
    done: int
    total: int
    vote: Vote


ProgressCallback = Callable[[Progress], Awaitable[None]]


async def _run_one(voter: Voter, snapshot: Snapshot) -> Vote:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(voter.timeout):
            return await voter.vote(snapshot)
    except TimeoutError:
        latency = int((time.perf_counter() - started) * 1000)
        return Vote.abstain(
            voter.name, voter.kind, TIMEOUT, f"no answer within {voter.timeout:g}s", latency_ms=latency
        )
    except Exception as exc:
        log.warning("consensus.voter_failed", voter=voter.name, error=type(exc).__name__)
        latency = int((time.perf_counter() - started) * 1000)
        return Vote.abstain(voter.name, voter.kind, ERROR, type(exc).__name__, latency_ms=latency)


async def run_voters(
    voters: Sequence[Voter],
    snapshot: Snapshot,
    *,
    deadline: float,
    skipped: Mapping[str, Vote] | None = None,
    progress: ProgressCallback | None = None,
) -> list[Vote]:
    """Each voter's vote, in the voters' order. `skipped` votes (by voter name) are used as they are,
    without running those voters."""
    skipped = skipped or {}
    results: dict[str, Vote] = dict(skipped)
    running = {
        asyncio.ensure_future(_run_one(voter, snapshot)): voter
        for voter in voters
        if voter.name not in skipped
    }
    total = len(voters)
    started = time.perf_counter()
    pending = set(running)
    loop_deadline = asyncio.get_running_loop().time() + deadline
    try:
        while pending:
            remaining = loop_deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            done, pending = await asyncio.wait(
                pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                vote = task.result()
                results[running[task].name] = vote
                if progress is not None:
                    with contextlib.suppress(Exception):
                        await progress(Progress(len(results), total, vote))
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    latency = int((time.perf_counter() - started) * 1000)
    for task in pending:
        voter = running[task]
        results[voter.name] = Vote.abstain(
            voter.name,
            voter.kind,
            DEADLINE,
            f"no answer within the deadline of {deadline:g}s",
            latency_ms=latency,
        )
    return [results[voter.name] for voter in voters]


__all__ = [
    "MIN_SKILL_WEIGHT",
    "N0",
    "NEUTRAL",
    "QUORUM",
    "Consensus",
    "Progress",
    "ProgressCallback",
    "TrackRecord",
    "WeightedVote",
    "aggregate",
    "run_voters",
    "skill_weight",
    "track_weight",
]
