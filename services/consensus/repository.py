"""Queries behind the consensus service. Never commits: the service does, once per unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from db.models import ConsensusSignal, ConsensusVote, VoterScore
from services.consensus.aggregate import TrackRecord
from services.consensus.voters import BUDGET


@dataclass(frozen=True, slots=True)
class VoteStats:
    voter: str
    kind: str
    votes: int
    valid: int
    cache_hits: int
    calls: int  # votes that were asked (not skipped for the budget)
    avg_latency_ms: float | None
    total_cost: Decimal


class ConsensusRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    async def _money_sum(
        self, column: InstrumentedAttribute[Decimal], *where: ColumnElement[bool]
    ) -> Decimal:
        """Exact: summed by PostgreSQL, or in Python on SQLite (which stores money as text)."""
        if self._postgres:
            value = await self.session.scalar(select(func.coalesce(func.sum(column), 0)).where(*where))
            return Decimal(value or 0)
        values = await self.session.scalars(select(column).where(*where))
        return sum((Decimal(v) for v in values if v is not None), Decimal(0))

    async def spend_since(self, since: datetime, user_id: int | None = None) -> Decimal:
        """LLM spend (USD) of the signals made since `since`: one user's, or everyone's."""
        where = [ConsensusSignal.created_at >= since]
        if user_id is not None:
            where.append(ConsensusSignal.user_id == user_id)
        return await self._money_sum(ConsensusSignal.total_cost, *where)

    async def track_records(
        self, voters: Sequence[str], symbol_class: str, horizon: str
    ) -> dict[str, TrackRecord]:
        if not voters:
            return {}
        rows = await self.session.scalars(
            select(VoterScore).where(
                VoterScore.voter.in_(list(voters)),
                VoterScore.symbol_class == symbol_class,
                VoterScore.horizon == horizon,
            )
        )
        return {row.voter: TrackRecord(row.resolved, row.brier_sum, row.hits) for row in rows}

    async def signal_with_votes(self, signal_id: int) -> tuple[ConsensusSignal, list[ConsensusVote]] | None:
        signal = await self.session.get(ConsensusSignal, signal_id)
        if signal is None:
            return None
        votes = await self.session.scalars(
            select(ConsensusVote).where(ConsensusVote.signal_id == signal_id).order_by(ConsensusVote.id)
        )
        return signal, list(votes)

    async def due(self, now: datetime, limit: int) -> list[ConsensusSignal]:
        rows = await self.session.scalars(
            select(ConsensusSignal)
            .where(ConsensusSignal.resolved_at.is_(None), ConsensusSignal.resolve_at <= now)
            .order_by(ConsensusSignal.resolve_at, ConsensusSignal.id)
            .limit(limit)
        )
        return list(rows)

    async def valid_votes(self, signal_id: int) -> list[ConsensusVote]:
        rows = await self.session.scalars(
            select(ConsensusVote).where(ConsensusVote.signal_id == signal_id, ConsensusVote.valid.is_(True))
        )
        return list(rows)

    async def add_to_score(
        self, voter: str, symbol_class: str, horizon: str, brier: float, hit: bool, now: datetime
    ) -> None:
        key = {"voter": voter, "symbol_class": symbol_class, "horizon": horizon}
        row = await self.session.get(VoterScore, key, with_for_update=self._postgres)
        if row is None:
            row = VoterScore(**key, resolved=0, brier_sum=0.0, hits=0, updated_at=now)
            self.session.add(row)
        row.resolved += 1
        row.brier_sum += brier
        row.hits += int(hit)
        row.updated_at = now

    async def vote_stats(self) -> list[VoteStats]:
        asked = ConsensusVote.abstain_reason.is_distinct_from(BUDGET)
        rows = (
            await self.session.execute(
                select(
                    ConsensusVote.voter,
                    func.max(ConsensusVote.kind),
                    func.count(),
                    func.sum(case((ConsensusVote.valid.is_(True), 1), else_=0)),
                    func.sum(case((ConsensusVote.cache_hit.is_(True), 1), else_=0)),
                    func.sum(case((asked, 1), else_=0)),
                    func.avg(case((asked, ConsensusVote.latency_ms), else_=None)),
                ).group_by(ConsensusVote.voter)
            )
        ).all()
        costs = await self._costs_by_voter()
        return [
            VoteStats(
                voter=voter,
                kind=kind,
                votes=int(count),
                valid=int(valid or 0),
                cache_hits=int(hits or 0),
                calls=int(calls or 0),
                avg_latency_ms=float(latency) if latency is not None else None,
                total_cost=costs.get(voter, Decimal(0)),
            )
            for voter, kind, count, valid, hits, calls, latency in rows
        ]

    async def _costs_by_voter(self) -> dict[str, Decimal]:
        if self._postgres:
            rows: Any = await self.session.execute(
                select(ConsensusVote.voter, func.sum(ConsensusVote.cost)).group_by(ConsensusVote.voter)
            )
            return {voter: Decimal(total or 0) for voter, total in rows}
        totals: dict[str, Decimal] = {}
        result = await self.session.execute(select(ConsensusVote.voter, ConsensusVote.cost))
        for voter, cost in result:
            totals[voter] = totals.get(voter, Decimal(0)) + Decimal(cost or 0)
        return totals

    async def scores_by_voter(self) -> dict[str, TrackRecord]:
        rows = await self.session.execute(
            select(
                VoterScore.voter,
                func.sum(VoterScore.resolved),
                func.sum(VoterScore.brier_sum),
                func.sum(VoterScore.hits),
            ).group_by(VoterScore.voter)
        )
        return {voter: TrackRecord(int(n or 0), float(b or 0.0), int(h or 0)) for voter, n, b, h in rows}

    async def consensus_record(self) -> tuple[int, TrackRecord, Decimal]:
        """Signals made, the resolved record of their verdicts, and their total cost."""
        made = await self.session.scalar(select(func.count()).select_from(ConsensusSignal)) or 0
        row = (
            await self.session.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(ConsensusSignal.brier), 0.0),
                    func.sum(case((ConsensusSignal.hit.is_(True), 1), else_=0)),
                ).where(ConsensusSignal.brier.is_not(None))
            )
        ).one()
        cost = await self._money_sum(ConsensusSignal.total_cost)
        return int(made), TrackRecord(int(row[0] or 0), float(row[1] or 0.0), int(row[2] or 0)), cost


__all__ = ["ConsensusRepository", "VoteStats"]
