"""Follows: a user copies a leader into their paper account or one of their live accounts.

Allocation per copied entry: `fixed` spends that many USDT; `percent` spends that percentage of the
follower's account equity at the time of the copy. Either is capped by `max_per_trade` (USDT) when set.
Exits sell what the follow copied, whatever the sizes were.

A live follow needs `copy_follow` on the plan (each copied live buy also passes `live_entry`, as a manual
one does); paper follows are free. With `stop_drawdown_pct`, the follow pauses itself when its copy equity
(the account's equity when followed, plus the realised and unrealised result of the copies) falls that far
below its high-water mark. Resuming re-bases the high-water mark.

Stopping a follow leaves what it bought in the account: the follower's own to keep or sell.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ExchangeAccount, Follow, Leader
from db.repositories import AuditRepository
from db.types import utcnow
from services.billing.entitlements import Entitlements
from services.copytrading.errors import (
    AccountRequired,
    BadAllocation,
    CannotFollowSelf,
    FollowNotFound,
    FollowStopped,
    LeaderNotFound,
)
from services.copytrading.views import FollowView
from services.errors import ValidationError
from services.trading.auto import AutoTrader
from services.trading.service import TradingService
from services.users import UserProfile

ZERO = Decimal(0)
HUNDRED = Decimal(100)
MAX_FIXED = Decimal(1_000_000)
MIN_FIXED = Decimal(1)
MODES = ("paper", "live")
KINDS = ("fixed", "percent")


def validate_allocation(
    kind: str, value: Decimal, max_per_trade: Decimal | None, stop_drawdown_pct: Decimal | None
) -> None:
    """Refuse an allocation out of range; `BadAllocation.params["field"]` says which value."""
    if kind not in KINDS:
        raise BadAllocation(field="kind", value=kind)
    if (
        not value.is_finite()
        or (kind == "fixed" and not MIN_FIXED <= value <= MAX_FIXED)
        or (kind == "percent" and not ZERO < value <= HUNDRED)
    ):
        raise BadAllocation(field=kind, value=value)
    if max_per_trade is not None and (not max_per_trade.is_finite() or not ZERO < max_per_trade <= MAX_FIXED):
        raise BadAllocation(field="max_per_trade", value=max_per_trade)
    if stop_drawdown_pct is not None and (
        not stop_drawdown_pct.is_finite() or not ZERO < stop_drawdown_pct < HUNDRED
    ):
        raise BadAllocation(field="stop_drawdown", value=stop_drawdown_pct)


class FollowService:
    def __init__(
        self,
        session: AsyncSession,
        entitlements: Entitlements,
        trading: TradingService,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.session = session
        self.entitlements = entitlements
        self.trading = trading
        self.audit = AuditRepository(session)
        self.clock = clock

    async def follow(
        self,
        user: UserProfile,
        leader_id: int,
        *,
        mode: str = "paper",
        allocation_kind: str = "fixed",
        allocation_value: Decimal,
        max_per_trade: Decimal | None = None,
        stop_drawdown_pct: Decimal | None = None,
        account_id: int | None = None,
    ) -> FollowView:
        """Start copying a leader, or change the settings of the follow that is not stopped."""
        if mode not in MODES:
            raise ValidationError("copy.errors.bad_mode", mode=mode)
        validate_allocation(allocation_kind, allocation_value, max_per_trade, stop_drawdown_pct)
        leader = await self.session.get(Leader, leader_id)
        if leader is None or not leader.active:
            raise LeaderNotFound(leader_id=leader_id)
        if leader.user_id == user.id:
            raise CannotFollowSelf()
        leader_name = leader.display_name
        if mode == "live":
            await self.entitlements.require(user.id, "copy_follow")
        account = await self._account(user, mode, account_id)
        start_equity = await AutoTrader(self.trading).equity(account)
        now = self.clock()
        row = await self._open(user.id, leader_id)
        if row is None:
            row = Follow(
                follower_id=user.id,
                leader_id=leader_id,
                status="active",
                start_equity=start_equity,
                realized_pnl=ZERO,
                equity_hwm=start_equity,
                created_at=now,
            )
            self.session.add(row)
        elif row.account_id != account.id:
            row.start_equity, row.realized_pnl, row.equity_hwm = start_equity, ZERO, start_equity
        row.mode, row.account_id = mode, account.id
        row.allocation_kind, row.allocation_value = allocation_kind, allocation_value
        row.max_per_trade, row.stop_drawdown_pct = max_per_trade, stop_drawdown_pct
        row.status, row.pause_reason, row.updated_at = "active", None, now
        await self.session.flush()
        await self.audit.add(
            "copy.follow",
            tenant_id=user.tenant_id,
            user_id=user.id,
            details={
                "follow_id": row.id,
                "leader_id": leader_id,
                "mode": mode,
                "account_id": account.id,
                "allocation": f"{allocation_kind}:{allocation_value}",
            },
        )
        await self.session.commit()
        return FollowView.of(row, leader_name)

    async def pause(self, user_id: int, follow_id: int) -> FollowView:
        return await self._set_status(user_id, follow_id, "paused", "manual")

    async def resume(self, user_id: int, follow_id: int) -> FollowView:
        """Active again; the drawdown high-water mark is re-based at the next copy."""
        return await self._set_status(user_id, follow_id, "active", None)

    async def stop(self, user_id: int, follow_id: int) -> FollowView:
        return await self._set_status(user_id, follow_id, "stopped", None)

    async def get(self, user_id: int, follow_id: int) -> FollowView:
        row = await self.session.get(Follow, follow_id)
        if row is None or row.follower_id != user_id:
            raise FollowNotFound(follow_id=follow_id)
        return FollowView.of(row, await self._leader_name(row.leader_id))

    async def following(self, user_id: int, *, include_stopped: bool = False) -> list[FollowView]:
        """The user's follows for `/following`, newest first."""
        stmt = (
            select(Follow, Leader.display_name)
            .join(Leader, Leader.id == Follow.leader_id)
            .where(Follow.follower_id == user_id)
            .order_by(Follow.id.desc())
        )
        if not include_stopped:
            stmt = stmt.where(Follow.status != "stopped")
        rows = (await self.session.execute(stmt)).all()
        return [FollowView.of(follow, name) for follow, name in rows]

    async def followers(self, leader_id: int) -> int:
        count = await self.session.scalar(
            select(func.count(Follow.id)).where(Follow.leader_id == leader_id, Follow.status != "stopped")
        )
        return int(count or 0)

    async def _set_status(self, user_id: int, follow_id: int, status: str, reason: str | None) -> FollowView:
        row = await self.session.get(Follow, follow_id, with_for_update=True)
        if row is None or row.follower_id != user_id:
            raise FollowNotFound(follow_id=follow_id)
        if row.status == "stopped":
            raise FollowStopped()
        if status == "active" and row.status != "active":
            row.equity_hwm = ZERO  # re-based at the next copy
        row.status, row.pause_reason, row.updated_at = status, reason, self.clock()
        await self.audit.add(f"copy.follow_{status}", user_id=user_id, details={"follow_id": follow_id})
        await self.session.commit()
        return FollowView.of(row, await self._leader_name(row.leader_id))

    async def _open(self, user_id: int, leader_id: int) -> Follow | None:
        return await self.session.scalar(
            select(Follow).where(
                Follow.follower_id == user_id, Follow.leader_id == leader_id, Follow.status != "stopped"
            )
        )

    async def _leader_name(self, leader_id: int) -> str:
        name = await self.session.scalar(select(Leader.display_name).where(Leader.id == leader_id))
        return name or ""

    async def _account(self, user: UserProfile, mode: str, account_id: int | None) -> ExchangeAccount:
        if mode == "paper":
            _, active = await self.trading.active_account(user)
            if active.is_paper:
                return active
            accounts = await self.trading.repo.accounts(user.id)
            paper = next((a for a in accounts if a.is_paper), None)
            if paper is None:
                paper = await self.trading._create_paper_account(user)
            return paper
        live = [a for a in await self.trading.repo.accounts(user.id) if not a.is_paper]
        if account_id is not None:
            chosen = next((a for a in live if a.id == account_id), None)
            if chosen is None:
                raise AccountRequired(reason="unknown")
            return chosen
        if not live:
            raise AccountRequired(reason="none")
        if len(live) > 1:
            raise AccountRequired(reason="choose", accounts=[a.id for a in live])
        return live[0]
