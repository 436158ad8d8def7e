"""What the copy-trading services return: plain values, never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from db.models import Follow, Leader, LeaderAction, LeaderChannel


@dataclass(frozen=True, slots=True)
class LeaderView:
    id: int
    user_id: int
    display_name: str
    publishes_trades: bool
    publishes_signals: bool
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, row: Leader) -> LeaderView:
        return cls(
            id=row.id,
            user_id=row.user_id,
            display_name=row.display_name,
            publishes_trades=row.publishes_trades,
            publishes_signals=row.publishes_signals,
            active=row.active,
            created_at=row.created_at,
        )


@dataclass(frozen=True, slots=True)
class ChannelView:
    id: int
    leader_id: int
    chat_id: int
    title: str
    kind: str  # channel | group
    rights_ok: bool
    missing: tuple[str, ...]  # rights the bot lacks (see `BotRights.missing`)
    linked_at: datetime

    @classmethod
    def of(cls, row: LeaderChannel) -> ChannelView:
        missing = tuple(m for m in (row.missing_rights or "").split(",") if m)
        return cls(
            row.id, row.leader_id, row.chat_id, row.title, row.kind, row.rights_ok, missing, row.linked_at
        )


@dataclass(frozen=True, slots=True)
class FollowView:
    id: int
    follower_id: int
    leader_id: int
    leader_name: str
    mode: str  # paper | live
    account_id: int
    allocation_kind: str  # fixed | percent
    allocation_value: Decimal
    max_per_trade: Decimal | None
    stop_drawdown_pct: Decimal | None
    status: str  # active | paused | stopped
    pause_reason: str | None  # manual | drawdown
    start_equity: Decimal
    realized_pnl: Decimal
    equity_hwm: Decimal
    created_at: datetime

    @classmethod
    def of(cls, row: Follow, leader_name: str) -> FollowView:
        return cls(
            id=row.id,
            follower_id=row.follower_id,
            leader_id=row.leader_id,
            leader_name=leader_name,
            mode=row.mode,
            account_id=row.account_id,
            allocation_kind=row.allocation_kind,
            allocation_value=row.allocation_value,
            max_per_trade=row.max_per_trade,
            stop_drawdown_pct=row.stop_drawdown_pct,
            status=row.status,
            pause_reason=row.pause_reason,
            start_equity=row.start_equity,
            realized_pnl=row.realized_pnl,
            equity_hwm=row.equity_hwm,
            created_at=row.created_at,
        )


@dataclass(frozen=True, slots=True)
class ActionView:
    id: int
    leader_id: int
    kind: str  # entry | exit | sl | tp
    symbol: str
    side: str
    price: Decimal | None
    amount: Decimal | None
    pct_equity: Decimal | None
    close_pct: Decimal | None
    stop_loss: Decimal | None
    targets: tuple[Decimal, ...]
    source: str  # trade | post | signal
    source_ref: str
    created_at: datetime

    @classmethod
    def of(cls, row: LeaderAction) -> ActionView:
        return cls(
            id=row.id,
            leader_id=row.leader_id,
            kind=row.kind,
            symbol=row.symbol,
            side=row.side,
            price=row.price,
            amount=row.amount,
            pct_equity=row.pct_equity,
            close_pct=row.close_pct,
            stop_loss=row.stop_loss,
            targets=tuple(Decimal(t) for t in row.targets or ()),
            source=row.source,
            source_ref=row.source_ref,
            created_at=row.created_at,
        )
