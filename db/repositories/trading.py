"""Queries for accounts, paper balances, profiles, orders, positions and confirmations."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ExchangeAccount, Order, PaperBalance, PendingAction, Position, TradingProfile


class TradingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # accounts and profile -------------------------------------------------------------------------

    async def profile(self, user_id: int, *, for_update: bool = False) -> TradingProfile | None:
        stmt = select(TradingProfile).where(TradingProfile.user_id == user_id)
        if for_update:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return await self.session.scalar(stmt)

    async def add_profile(self, profile: TradingProfile) -> TradingProfile:
        self.session.add(profile)
        await self.session.flush()
        return profile

    async def account(self, account_id: int) -> ExchangeAccount | None:
        return await self.session.get(ExchangeAccount, account_id)

    async def accounts(self, user_id: int) -> list[ExchangeAccount]:
        stmt = (
            select(ExchangeAccount)
            .where(ExchangeAccount.user_id == user_id, ExchangeAccount.removed_at.is_(None))
            .order_by(ExchangeAccount.id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def add_account(self, account: ExchangeAccount) -> ExchangeAccount:
        self.session.add(account)
        await self.session.flush()
        return account

    # paper balances -------------------------------------------------------------------------------

    async def balances(self, account_id: int, *, for_update: bool = False) -> dict[str, PaperBalance]:
        stmt = select(PaperBalance).where(PaperBalance.account_id == account_id)
        if for_update:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return {row.asset: row for row in (await self.session.scalars(stmt)).all()}

    async def balance_row(self, account_id: int, asset: str) -> PaperBalance:
        row = await self.session.get(PaperBalance, (account_id, asset))
        if row is None:
            row = PaperBalance(account_id=account_id, asset=asset, free=Decimal(0), locked=Decimal(0))
            self.session.add(row)
        return row

    # orders and positions -------------------------------------------------------------------------

    async def add_order(self, order: Order) -> Order:
        self.session.add(order)
        await self.session.flush()
        return order

    async def orders(
        self, account_id: int, *, statuses: tuple[str, ...] | None = None, limit: int = 50
    ) -> list[Order]:
        stmt = select(Order).where(Order.account_id == account_id).order_by(Order.id.desc()).limit(limit)
        if statuses:
            stmt = stmt.where(Order.status.in_(statuses))
        return list((await self.session.scalars(stmt)).all())

    async def locked_order(self, order_id: int) -> Order | None:
        """The order row, locked and re-read (never a stale copy from this session's identity map)."""
        stmt = select(Order).where(Order.id == order_id).with_for_update()
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def locked_position(self, position_id: int) -> Position | None:
        stmt = select(Position).where(Position.id == position_id).with_for_update()
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def open_position(
        self, account_id: int, symbol: str, *, for_update: bool = False
    ) -> Position | None:
        stmt = select(Position).where(
            Position.account_id == account_id, Position.symbol == symbol, Position.status == "open"
        )
        if for_update:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return await self.session.scalar(stmt)

    async def open_positions(self, account_id: int) -> list[Position]:
        stmt = (
            select(Position)
            .where(Position.account_id == account_id, Position.status == "open")
            .order_by(Position.opened_at)
        )
        return list((await self.session.scalars(stmt)).all())

    async def add_position(self, position: Position) -> Position:
        self.session.add(position)
        await self.session.flush()
        return position

    async def realized_since(self, account_id: int, since: datetime) -> Decimal:
        """Realised PnL of the account's orders filled since a moment (summed exactly in Python)."""
        stmt = select(Order.realized_pnl).where(
            Order.account_id == account_id,
            Order.updated_at >= since,
            Order.side == "sell",  # only sales realise anything
            Order.status == "closed",
        )
        return sum((value for value in (await self.session.scalars(stmt)).all()), Decimal(0))

    async def realized_total(self, account_id: int) -> Decimal:
        stmt = select(Position.realized_pnl).where(Position.account_id == account_id)
        return sum((value for value in (await self.session.scalars(stmt)).all()), Decimal(0))

    async def count_orders(self, account_id: int) -> int:
        return int(
            await self.session.scalar(select(func.count(Order.id)).where(Order.account_id == account_id)) or 0
        )

    # confirmations --------------------------------------------------------------------------------

    async def add_pending(self, action: PendingAction) -> None:
        self.session.add(action)
        await self.session.flush()

    async def claim_pending(self, action_id: str, user_id: int, now: datetime) -> PendingAction | None:
        """Single use: only the first confirmation before expiry gets the action."""
        result = await self.session.execute(
            update(PendingAction)
            .where(
                and_(
                    PendingAction.id == action_id,
                    PendingAction.user_id == user_id,
                    PendingAction.used_at.is_(None),
                    PendingAction.expires_at > now,
                )
            )
            .values(used_at=now)
        )
        if not getattr(result, "rowcount", 0):
            return None
        return await self.session.get(PendingAction, action_id)

    async def pending(self, action_id: str) -> PendingAction | None:
        return await self.session.get(PendingAction, action_id)

    async def finish_pending(self, action: PendingAction, outcome: str, **payload: Any) -> None:
        action.outcome = outcome
        if payload:
            action.payload = {**action.payload, **payload}
