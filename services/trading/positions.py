"""Closing positions (one, all, or the kill switch), stop-loss and take-profit, and the watcher that fires
them. Every close that moves money is confirmed by the user first, except protections the user set."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ExchangeAccount, Order, PendingAction, Position, User
from db.repositories.trading import TradingRepository
from db.scoping import of_tenant
from db.types import utcnow
from services.errors import AppError, NotFoundError, ValidationError
from services.trading.live import LiveOrders
from services.trading.paper import limit_crossed, walk_book
from services.trading.protections import NONE, NativeStops, Protection
from services.trading.service import (
    ConfirmationExpired,
    Execution,
    TradingConfig,
    TradingService,
)
from services.users import UserProfile

ZERO = Decimal(0)
log = structlog.get_logger(__name__)
#: the watcher places a live position's native protection only this long after its last order
ARM_DELAY = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class CloseLine:
    symbol: str
    amount: Decimal
    price: Decimal  # estimated
    proceeds: Decimal  # estimated, after fee
    pnl: Decimal  # estimated


@dataclass(frozen=True, slots=True)
class ClosePreview:
    token: str
    kind: str  # close | panic
    lines: list[CloseLine]
    quote: str
    expires_at: datetime
    mode: str = "paper"  # paper | live
    open_orders: int = 0  # resting orders the kill switch cancels


@dataclass(frozen=True, slots=True)
class CloseResult:
    kind: str
    executions: list[Execution]
    failed: list[tuple[str, str]]  # (symbol, message key)
    paused_until: datetime | None
    cancelled: list[int] = field(default_factory=list)  # orders the kill switch cancelled


@dataclass(frozen=True, slots=True)
class OrderView:
    id: int
    symbol: str
    side: str
    order_type: str
    status: str
    amount: Decimal
    average_price: Decimal | None
    cost: Decimal
    fee: Decimal
    reason: str
    created_at: datetime
    filled: Decimal = ZERO  # of a resting order: the part filled so far (amount is the whole order)


@dataclass(frozen=True, slots=True)
class Trigger:
    """A stop-loss or take-profit that fired, for the notification."""

    telegram_id: int
    locale: str | None
    kind: str  # sl | tp
    execution: Execution
    trigger_price: Decimal


TradingFactory = Callable[[AsyncSession], TradingService]


def _end_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


class PositionService:
    def __init__(self, trading: TradingService) -> None:
        self.trading = trading
        self.session: AsyncSession = trading.session
        self.repo = trading.repo
        self.config: TradingConfig = trading.config
        self.clock = trading.clock

    # ------------------------------------------------------------------------------------ closing

    async def preview_close(self, user: UserProfile, target: str, *, kind: str = "close") -> ClosePreview:
        """`target`: a symbol, or "ALL". The card lists what would be sold and the estimated result."""
        _, account = await self.trading.active_account(user)
        positions = await self.repo.open_positions(account.id)
        resting = await self.repo.orders(account.id, statuses=("open",), limit=500) if kind == "panic" else []
        if target.upper() != "ALL":
            positions = [p for p in positions if p.symbol == target]
            if not positions:
                raise NotFoundError("trade.errors.no_position", symbol=target)
        if not positions and kind != "panic":
            raise NotFoundError("trade.errors.no_positions")
        client = self.trading.market_data.public(self.trading._exchange_of(account))
        lines: list[CloseLine] = []
        for position in positions:
            market = await client.market(position.symbol)
            book = await client.fetch_order_book(position.symbol, 50)
            fill = walk_book(
                book, "sell", market.taker_fee, amount=position.amount, amount_step=market.amount_step
            )
            proceeds = fill.cost - fill.fee
            basis = position.cost_basis * fill.amount / position.amount
            lines.append(
                CloseLine(position.symbol, fill.amount, fill.average_price, proceeds, proceeds - basis)
            )
        now = self.clock()
        token = secrets.token_hex(8)
        expires = now + self.config.confirm_ttl
        await self.repo.add_pending(
            PendingAction(
                id=token,
                user_id=user.id,
                kind=kind,
                payload={"account_id": account.id, "symbols": [line.symbol for line in lines]},
                created_at=now,
                expires_at=expires,
            )
        )
        await self.session.commit()
        mode = "paper" if account.is_paper else "live"
        return ClosePreview(token, kind, lines, self.config.paper_quote, expires, mode, len(resting))

    async def confirm_close(self, user: UserProfile, token: str) -> CloseResult:
        action = await self.repo.pending(token)
        if action is None or action.user_id != user.id or action.kind not in ("close", "panic"):
            raise ConfirmationExpired()
        claimed = await self.repo.claim_pending(token, user.id, self.clock())
        if claimed is None:
            raise ConfirmationExpired()
        account = await self.repo.account(int(claimed.payload["account_id"]))
        if account is None:
            raise ConfirmationExpired()
        executions: list[Execution] = []
        failed: list[tuple[str, str]] = []
        cancelled: list[int] = []
        if claimed.kind == "panic":
            cancelled = await self._cancel_all(account)
        for symbol in claimed.payload["symbols"]:
            try:
                done = await self._close_one(user.id, account, symbol, reason=claimed.kind, token=token)
            except AppError as exc:
                failed.append((symbol, exc.message_key))
                continue
            if done is not None:
                executions.append(done)
        paused_until = None
        if claimed.kind == "panic":
            profile, _ = await self.trading.active_account(user)
            paused_until = _end_of_day(self.clock())
            profile.paused_until = paused_until
            profile.pause_reason = "panic"
        await self.repo.finish_pending(claimed, "done")
        await self.trading.audit.add(
            f"trading.{claimed.kind}",
            tenant_id=user.tenant_id,
            user_id=user.id,
            details={
                "orders": [e.order_id for e in executions],
                "failed": [s for s, _ in failed],
                "cancelled": cancelled,
            },
        )
        await self.session.commit()
        return CloseResult(claimed.kind, executions, failed, paused_until, cancelled)

    async def _close_one(
        self, user_id: int, account: ExchangeAccount, symbol: str, *, reason: str, token: str
    ) -> Execution | None:
        if not account.is_paper:
            position = await self.repo.open_position(account.id, symbol)
            if position is None or position.amount <= 0:
                return None
            live = LiveOrders(self.trading)
            if await live.in_flight(account.id, symbol):
                raise ValidationError("trade.errors.order_in_flight", symbol=symbol)
            if position.stop_order_id is not None:  # its native stop holds the coins: cancelled first
                stopped = await NativeStops(self.trading).disarm(position.id, then="watched")
                if stopped is not None:
                    return stopped  # it had filled meanwhile: that was the close
                position = await self.repo.open_position(account.id, symbol)
                if position is None or position.amount <= 0:
                    return None
            return await live.sell_position(
                position, account, reason=reason, client_order_id=f"cu{token}{position.id:x}"[:36]
            )
        position = await self.repo.open_position(account.id, symbol, for_update=True)
        if position is None or position.amount <= 0:
            return None
        client = self.trading.market_data.public(self.trading._exchange_of(account))
        market = await client.market(symbol)
        book = await client.fetch_order_book(symbol, 50, max_age=0)
        balances = await self.repo.balances(account.id, for_update=True)
        held = balances[market.base].free if market.base in balances else ZERO
        amount = min(position.amount, held)
        fill = walk_book(book, "sell", market.taker_fee, amount=amount, amount_step=market.amount_step)
        return await self.trading._apply_paper_fill(
            user_id,
            account,
            market,
            "sell",
            fill,
            client_order_id=f"cu{token}{position.id:x}"[:40],
            reason=reason,
        )

    # ------------------------------------------------------------------------------------ protections

    async def set_protection(
        self, user: UserProfile, symbol: str, kind: str, price: Decimal | None
    ) -> tuple[Position, Decimal, Protection]:
        """Set (or clear, with None) the stop-loss or take-profit; returns the position, the price now and how
        it is kept: on a live account the exchange's native order is placed, replaced or cancelled here."""
        _, account = await self.trading.active_account(user)
        position = await self.repo.open_position(account.id, symbol, for_update=True)
        if position is None:
            raise NotFoundError("trade.errors.no_position", symbol=symbol)
        client = self.trading.market_data.public(self.trading._exchange_of(account))
        ticker = await client.fetch_ticker(symbol)
        now_price = ticker.bid or ticker.last
        if price is not None:
            if kind == "sl" and price >= now_price:
                raise ValidationError("trade.errors.sl_above_price", stop=price, price=now_price)
            if kind == "tp" and price <= now_price:
                raise ValidationError("trade.errors.tp_below_price", take=price, price=now_price)
            market = await client.market(symbol)
            price = client.price_to_precision(market.symbol, price)
        if kind == "sl":
            position.stop_loss = price
        else:
            position.take_profit = price
        await self.trading.audit.add(
            f"position.{kind}_set",
            tenant_id=user.tenant_id,
            user_id=user.id,
            details={"symbol": symbol, "price": None if price is None else str(price)},
        )
        await self.session.commit()
        protection = NONE
        if not account.is_paper:
            try:
                protection = await NativeStops(self.trading).sync(position.id)
            except AppError as exc:  # the old native order could not be cancelled: it stays, watched too
                log.warning("protections.sync_failed", position_id=position.id, error=exc.message_key)
                protection = Protection("watched", why="unavailable")
        return position, now_price, protection

    async def cancel_orders(self, user: UserProfile, target: str) -> list[int]:
        """Cancel resting orders (one id, or "ALL"); their reserved funds are released at once."""
        _, account = await self.trading.active_account(user)
        open_orders = await self.repo.orders(account.id, statuses=("open",), limit=500)
        if target.upper() != "ALL":
            open_orders = [o for o in open_orders if str(o.id) == target]
            if not open_orders:
                raise NotFoundError("trade.errors.no_order", order=target)
        cancelled = await self._cancel(account, [o.id for o in open_orders])
        if cancelled:
            await self.trading.audit.add(
                "order.canceled", tenant_id=user.tenant_id, user_id=user.id, details={"orders": cancelled}
            )
        await self.session.commit()
        return cancelled

    async def _cancel_all(self, account: ExchangeAccount) -> list[int]:
        open_orders = await self.repo.orders(account.id, statuses=("open",), limit=500)
        return await self._cancel(account, [o.id for o in open_orders])

    async def _cancel(self, account: ExchangeAccount, order_ids: list[int]) -> list[int]:
        """Cancel resting orders: on the exchange for a live account (what filled first is booked), else
        release the paper reservation at once."""
        cancelled: list[int] = []
        if not account.is_paper:
            live = LiveOrders(self.trading)
            for order_id in order_ids:
                done, _ = await live.cancel(account, order_id)
                if done:
                    cancelled.append(order_id)
            return cancelled
        for order_id in order_ids:
            order = await self.repo.locked_order(order_id)
            if order is None or order.status != "open":
                continue
            base, quote = order.symbol.split("/")
            row = await self.repo.balance_row(account.id, quote if order.side == "buy" else base)
            row.locked -= order.reserved
            row.free += order.reserved
            order.reserved, order.status, order.updated_at = ZERO, "canceled", self.clock()
            cancelled.append(order.id)
        return cancelled

    async def orders(self, user: UserProfile, limit: int = 10) -> list[OrderView]:
        _, account = await self.trading.active_account(user)
        rows: list[Order] = await self.repo.orders(account.id, limit=limit)
        return [
            OrderView(
                o.id,
                o.symbol,
                o.side,
                o.order_type,
                o.status,
                o.amount if o.status == "open" else (o.filled or o.amount),
                o.average_price,
                o.cost,
                o.fee,
                o.reason,
                o.created_at,
                o.filled if o.status == "open" else ZERO,
            )
            for o in rows
        ]


@dataclass(frozen=True, slots=True)
class LimitFilled:
    telegram_id: int
    locale: str | None
    execution: Execution


async def watch_limit_orders(
    session_factory: async_sessionmaker[AsyncSession],
    trading_factory: TradingFactory,
    tenant_id: int | None = None,
) -> list[LimitFilled]:
    """Fill resting paper limit orders the market has crossed (at their price, maker fee)."""
    async with session_factory() as session:
        config = trading_factory(session).config
        rows = (
            await session.execute(
                select(Order.id, Order.symbol, Order.side, Order.limit_price)
                .join(ExchangeAccount, ExchangeAccount.id == Order.account_id)
                .where(
                    Order.status == "open",
                    Order.order_type == "limit",
                    ExchangeAccount.is_paper.is_(True),
                    of_tenant(Order.user_id, tenant_id),
                )
            )
        ).all()
    if not rows:
        return []
    async with session_factory() as session:
        market_data = trading_factory(session).market_data
    tickers = await market_data.public(config.default_exchange).fetch_tickers(
        sorted({r.symbol for r in rows})
    )
    filled: list[LimitFilled] = []
    for row in rows:
        ticker = tickers.get(row.symbol)
        if ticker is None or not limit_crossed(row.side, row.limit_price, ticker.bid, ticker.ask):
            continue
        async with session_factory() as session:
            order = await TradingRepository(session).locked_order(row.id)
            if order is None or order.status != "open":
                continue
            user = await session.get(User, order.user_id)
            execution = await trading_factory(session).fill_resting_order(order, row.limit_price)
            if execution is None or user is None:
                await session.rollback()
                continue
            await session.commit()
            filled.append(LimitFilled(user.telegram_id, user.locale or user.language_code, execution))
    return filled


async def watch_protections(
    session_factory: async_sessionmaker[AsyncSession],
    trading_factory: TradingFactory,
    tenant_id: int | None = None,
) -> list[Trigger]:
    """One pass of the watcher: close every position whose stop-loss or take-profit was crossed, on paper
    against the default exchange's prices, live against the account's own exchange with a market sell.

    Each close runs in its own transaction with the position re-checked (and, on paper, locked), so two
    watchers (or a watcher and the user) never sell the same position twice; a live position with an order
    in flight is left until that order's outcome is known."""
    triggers: list[Trigger] = await _follow_native(session_factory, trading_factory, tenant_id)
    async with session_factory() as session:
        trading = trading_factory(session)
        rows = (
            await session.execute(
                select(
                    Position.id,
                    Position.symbol,
                    Position.stop_loss,
                    Position.take_profit,
                    Position.protection,
                    Position.stop_order_id,
                    ExchangeAccount.is_paper,
                    ExchangeAccount.exchange,
                )
                .join(ExchangeAccount, ExchangeAccount.id == Position.account_id)
                .where(
                    Position.status == "open",
                    ExchangeAccount.removed_at.is_(None),
                    of_tenant(Position.user_id, tenant_id),
                    (Position.stop_loss.is_not(None)) | (Position.take_profit.is_not(None)),
                )
            )
        ).all()
    if not rows:
        return triggers
    by_exchange: dict[str, set[str]] = {}
    for row in rows:
        source = trading.config.default_exchange if row.is_paper else row.exchange
        by_exchange.setdefault(source, set()).add(row.symbol)
    tickers = {}
    for source, symbols in by_exchange.items():
        try:
            fetched = await trading.market_data.public(source).fetch_tickers(sorted(symbols))
        except AppError as exc:
            log.warning("protections.tickers_failed", exchange=source, error=exc.message_key)
            continue
        tickers.update({(source, symbol): ticker for symbol, ticker in fetched.items()})
    due: list[tuple[int, str, Decimal]] = []
    for row in rows:
        source = trading.config.default_exchange if row.is_paper else row.exchange
        ticker = tickers.get((source, row.symbol))
        if ticker is None:
            continue
        bid = ticker.bid or ticker.last
        # the protection placed natively is the exchange's to fire (the stop-loss if set, else take-profit)
        native = None
        if not row.is_paper and row.protection == "native" and row.stop_order_id is not None:
            native = "sl" if row.stop_loss is not None else "tp"
        if row.stop_loss is not None and native != "sl" and bid <= row.stop_loss:
            due.append((row.id, "sl", bid))
        elif row.take_profit is not None and native != "tp" and bid >= row.take_profit:
            due.append((row.id, "tp", bid))
    for position_id, kind, _price in due:
        try:
            trigger = await _fire(session_factory, trading_factory, position_id, kind)
        except AppError as exc:
            log.warning("protections.fire_failed", position_id=position_id, kind=kind, error=exc.message_key)
            continue
        if trigger is not None:
            triggers.append(trigger)
    return triggers


async def _fire(
    session_factory: async_sessionmaker[AsyncSession],
    trading_factory: TradingFactory,
    position_id: int,
    kind: str,
) -> Trigger | None:
    async with session_factory() as session:
        trading = trading_factory(session)
        position = await session.get(Position, position_id)
        if position is None or position.status != "open" or position.amount <= 0:
            return None
        account = await session.get(ExchangeAccount, position.account_id)
        user = await session.get(User, position.user_id)
        if account is None or user is None:
            return None
        if account.is_paper:
            execution = await _fire_paper(trading, position_id, kind)
        else:
            kind, execution = await _fire_live(trading, position, account, kind)
        if execution is None:
            await session.rollback()
            return None
        level = position.stop_loss if kind == "sl" else position.take_profit
        await trading.audit.add(
            f"position.{kind}_hit",
            tenant_id=user.tenant_id,
            user_id=user.id,
            details={"symbol": execution.symbol, "level": str(level), "order_id": execution.order_id},
        )
        await session.commit()
        assert level is not None
        return Trigger(user.telegram_id, user.locale or user.language_code, kind, execution, level)


async def _fire_paper(trading: TradingService, position_id: int, kind: str) -> Execution | None:
    session = trading.session
    position = await trading.repo.locked_position(position_id)
    if position is None or position.status != "open" or position.amount <= 0:
        return None
    level = position.stop_loss if kind == "sl" else position.take_profit
    account = await session.get(ExchangeAccount, position.account_id)
    if level is None or account is None:
        return None
    client = trading.market_data.public(trading.config.default_exchange)
    market = await client.market(position.symbol)
    book = await client.fetch_order_book(position.symbol, 50, max_age=0)
    if kind == "sl" and book.bids and book.bids[0][0] > level:
        return None  # the market came back above the stop before we could act
    balances = await trading.repo.balances(account.id, for_update=True)
    held = balances[market.base].free if market.base in balances else ZERO
    amount = min(position.amount, held)
    if amount <= 0:
        return None
    fill = walk_book(book, "sell", market.taker_fee, amount=amount, amount_step=market.amount_step)
    return await trading._apply_paper_fill(
        position.user_id,
        account,
        market,
        "sell",
        fill,
        client_order_id=f"cu{kind}{position.id:x}t{int(utcnow().timestamp())}"[:36],
        reason=kind,
    )


async def _fire_live(
    trading: TradingService, position: Position, account: ExchangeAccount, kind: str
) -> tuple[str, Execution | None]:
    """A watched stop-loss or take-profit on a live account: one market sell, its client order id derived
    from the position and how many exits it has had, so a repeat of the same trigger is the same order.

    A native order of the position (the stop-loss, when the take-profit is the watched one) holds the coins:
    it is cancelled first; if it filled meanwhile, that fill is the exit (returned with its own kind)."""
    live = LiveOrders(trading)
    if await live.in_flight(account.id, position.symbol):
        return kind, None  # the outcome of an earlier order is not known yet: the order watcher settles it
    level = position.stop_loss if kind == "sl" else position.take_profit
    if level is None:
        return kind, None
    ticker = await trading.market_data.public(account.exchange).fetch_ticker(position.symbol)
    bid = ticker.bid or ticker.last
    if (kind == "sl" and bid > level) or (kind == "tp" and bid < level):
        return kind, None  # the market came back before we could act
    if position.stop_order_id is not None:
        native_kind = "sl" if position.stop_loss is not None else "tp"
        stopped = await NativeStops(trading).disarm(position.id, then="watched")  # not placed again
        if stopped is not None:
            return native_kind, stopped
        refreshed = await trading.session.get(Position, position.id, populate_existing=True)
        if refreshed is None or refreshed.status != "open" or refreshed.amount <= 0:
            return kind, None
        position = refreshed
    prefix = f"cu{kind}{position.id:x}x"
    attempts = await trading.session.scalar(
        select(func.count(Order.id)).where(
            Order.account_id == account.id, Order.client_order_id.startswith(prefix, autoescape=True)
        )
    )
    client_order_id = f"{prefix}{attempts or 0}"
    return kind, await live.sell_position(position, account, reason=kind, client_order_id=client_order_id)


async def _follow_native(
    session_factory: async_sessionmaker[AsyncSession],
    trading_factory: TradingFactory,
    tenant_id: int | None,
) -> list[Trigger]:
    """Live positions' native orders: book those the exchange filled (once), place the ones a position
    still needs (its protection is undecided: just bought, its amount changed, or the order was lost)."""
    async with session_factory() as session:
        rows = (
            await session.execute(
                select(Position.id, Position.stop_order_id)
                .join(ExchangeAccount, ExchangeAccount.id == Position.account_id)
                .where(
                    Position.status == "open",
                    ExchangeAccount.is_paper.is_(False),
                    ExchangeAccount.removed_at.is_(None),
                    of_tenant(Position.user_id, tenant_id),
                    (Position.stop_order_id.is_not(None))
                    | (
                        Position.protection.is_(None)
                        & ((Position.stop_loss.is_not(None)) | (Position.take_profit.is_not(None)))
                    ),
                )
                .order_by(Position.id)
            )
        ).all()
    triggers: list[Trigger] = []
    for position_id, stop_order_id in rows:
        try:
            async with session_factory() as session:
                trading = trading_factory(session)
                stops = NativeStops(trading)
                fired: tuple[str, Execution] | None = None
                if stop_order_id is not None:
                    fired = await stops.follow(position_id)
                else:
                    position = await session.get(Position, position_id)
                    if position is None or await _recently_traded(trading, position):
                        continue  # whoever traded it places the protection (or we do, a little later)
                    protection = await stops.sync(position_id)
                    if protection.execution is not None and protection.kind is not None:
                        fired = (protection.kind, protection.execution)
                if fired is None:
                    continue
                trigger = await _native_trigger(trading, position_id, *fired)
                if trigger is not None:
                    triggers.append(trigger)
        except AppError as exc:
            log.warning("protections.native_failed", position_id=position_id, error=exc.message_key)
    return triggers


async def _recently_traded(trading: TradingService, position: Position) -> bool:
    """An order of the position's symbol in flight or just booked: the handler that sent it places the
    native protection itself right after, so the watcher leaves the position alone for ``ARM_DELAY``."""
    if await LiveOrders(trading).in_flight(position.account_id, position.symbol):
        return True
    recent = await trading.session.scalar(
        select(Order.id)
        .where(
            Order.account_id == position.account_id,
            Order.symbol == position.symbol,
            Order.updated_at > trading.clock() - ARM_DELAY,
        )
        .limit(1)
    )
    return recent is not None


async def _native_trigger(
    trading: TradingService, position_id: int, kind: str, execution: Execution
) -> Trigger | None:
    """The notification of a native stop that filled (booked already), with its audit entry."""
    session = trading.session
    position = await session.get(Position, position_id, populate_existing=True)
    order = await session.get(Order, execution.order_id)
    user = await session.get(User, position.user_id) if position is not None else None
    if position is None or user is None:
        return None
    level = order.trigger_price if order is not None and order.trigger_price is not None else ZERO
    await trading.audit.add(
        f"position.{kind}_hit",
        tenant_id=user.tenant_id,
        user_id=user.id,
        details={
            "symbol": execution.symbol,
            "level": str(level),
            "order_id": execution.order_id,
            "native": True,
        },
    )
    await session.commit()
    return Trigger(user.telegram_id, user.locale or user.language_code, kind, execution, level)


__all__ = [
    "CloseLine",
    "ClosePreview",
    "CloseResult",
    "LimitFilled",
    "OrderView",
    "PositionService",
    "Trigger",
    "watch_limit_orders",
    "watch_protections",
]
