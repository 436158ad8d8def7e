"""The daily AI budget: LLM spend per user per UTC day, limited by plan (and optionally for everyone
together). Spend is the sum of the signals' costs since midnight UTC. When a limit is reached the next
signals are made without the LLM voters (a technical-analysis consensus, reason ``budget``); a signal
that starts under the limit may end slightly above it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Literal

from services.consensus.config import ConsensusSettings
from services.consensus.repository import ConsensusRepository


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    allowed: bool
    spent: Decimal  # the user's LLM spend today, USD
    limit: Decimal  # the user's daily limit on their plan
    global_spent: Decimal | None = None
    global_limit: Decimal | None = None
    exceeded: Literal["user", "global"] | None = None

    @property
    def remaining(self) -> Decimal:
        return max(self.limit - self.spent, Decimal(0))


def day_start(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)


async def budget_status(
    repo: ConsensusRepository, settings: ConsensusSettings, user_id: int | None, plan: str, now: datetime
) -> BudgetStatus:
    since = day_start(now)
    limit = settings.budget_for(plan)
    spent = await repo.spend_since(since, user_id) if user_id is not None else Decimal(0)
    global_limit = settings.global_daily_budget_usd
    global_spent = await repo.spend_since(since) if global_limit is not None else None
    exceeded: Literal["user", "global"] | None = None
    if user_id is not None and spent >= limit:
        exceeded = "user"
    elif global_limit is not None and global_spent is not None and global_spent >= global_limit:
        exceeded = "global"
    return BudgetStatus(exceeded is None, spent, limit, global_spent, global_limit, exceeded)


__all__ = ["BudgetStatus", "budget_status", "day_start"]
