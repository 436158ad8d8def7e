"""Live orders on an exchange account.

Every order row, with its deterministic client order id, is committed before anything is sent. The exchange's
answer is booked once: a market order when it has ended (filled, rejected), a resting limit order part by part
as the scheduled watcher sees it fill (``Order.booked`` is how much is booked so far, compared under the row's
lock, so each part is booked exactly once), and what is left when it ends (filled, cancelled). A resting limit
order, or an order whose outcome is unknown after a timeout, is followed up by the watcher by its client order
id and never resent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, cast

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ExchangeAccount, Order, Position, User
from db.scoping import of_tenant
from services.credits.ledger import CreditLedger
from services.errors import AppError, ValidationError
from services.exchanges.types import ExchangeClient, MarketInfo, OrderResult, OrderType, Side
from services.trading.paper import round_step
from services.trading.pnl import PositionState

if TYPE_CHECKING:
    from services.trading.service import Execution, TradingService

log = structlog.get_logger(__name__)

ZERO = Decimal(0)
#: statuses of an order the exchange may still be working on (or that we have not heard back about)
PENDING = ("sending", "open", "unknown", "canceling")
#: statuses whose request may still be in flight in another task: left alone for a while
IN_FLIGHT = ("sending", "canceling")
ENDED = frozenset({"closed", "canceled", "rejected", "expired", "not_placed"})
OUTCOME_UNKNOWN = "exchange.order_outcome_unknown"
USD_QUOTES = frozenset({"USDT", "USDC", "USD", "FDUSD", "BUSD", "TUSD", "DAI"})
NOT_PLACED = "exchange.order_not_placed"


def _booked(order: Order) -> Decimal:
    """How much of the order is booked on its position so far."""
    return order.booked if order.booked is not None else ZERO


class LiveUnavailable(ValidationError):
    message_key = "trade.errors.live_not_available"


@dataclass(frozen=True, slots=True)
class PartialFill:
    """How much of a resting order has filled so far (booked), for the user's notification."""

    filled: Decimal
    amount: Decimal
    average_price: Decimal
    base: str
    quote: str


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order the watcher saw end (or fill in part), for the user's notification."""

    telegram_id: int
    locale: str | None
    kind: str  # filled | canceled | not_placed | partial
    order_id: int
    symbol: str
    side: str
    execution: Execution | None
    partial: PartialFill | None = None


class LiveOrders:
    """Sending, following and cancelling one user's live orders (a helper of the trading service)."""

    def __init__(self, trading: TradingService) -> None:
        self.trading = trading
        self.session: AsyncSession = trading.session
        self.repo = trading.repo
        self.clock = trading.clock

    async def client(self, account: ExchangeAccount) -> ExchangeClient:
        """A private client with the account's own key (decrypted only here, for this call)."""
        if self.trading.credentials is None or self.trading.private is None:
            raise LiveUnavailable()
        credentials = await self.trading.credentials(account)
        return self.trading.private(account.exchange, credentials)

    async def submit(
        self,
        user_id: int,
        account: ExchangeAccount,
        market: MarketInfo,
        *,
        side: str,
        order_type: str,
        amount: Decimal,
        limit_price: Decimal | None,
        client_order_id: str,
        reason: str = "manual",
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
        before_send: Callable[[Order], Awaitable[None]] | None = None,
    ) -> tuple[Order, Execution | None]:
        """Store the order, commit, send it once; book it if it already ended (a market order filled).

        Returns the order and its execution (None while a limit order rests). Exchange errors are recorded on
        the order (rejected, or unknown for the watcher to reconcile) and raised."""
        order = await self.repo.add_order(
            self.trading.new_order(
                user_id,
                account,
                market.symbol,
                side,
                order_type=order_type,
                amount=amount,
                limit_price=limit_price,
                client_order_id=client_order_id,
                status="sending",
                reason=reason,
                stop_loss=stop_loss,
                take_profit=take_profit,
            )
        )
        if before_send is not None:
            await before_send(order)
        client = await self.client(account)
        await self.session.commit()  # the row exists before the exchange hears of the order
        try:
            result = await client.place_order(
                market.symbol,
                cast(Side, side),
                cast(OrderType, order_type),
                amount,
                limit_price,
                client_order_id,
            )
        except AppError as exc:
            failed = await self.repo.locked_order(order.id)
            if failed is not None and failed.status not in ENDED:
                failed.status = "unknown" if exc.message_key == OUTCOME_UNKNOWN else "rejected"
                if exc.message_key == NOT_PLACED:
                    failed.status = "not_placed"
                failed.error, failed.updated_at = exc.message_key[:255], self.clock()
            await self.session.commit()
            raise
        finally:
            await client.close()
        locked = await self.repo.locked_order(order.id)
        assert locked is not None
        if locked.status in ENDED:  # a slow answer: the order watcher settled it meanwhile
            return locked, await self.execution_of(locked, market)
        # a part filled at once is booked by the watcher: the caller reports a resting order
        return locked, await self.apply(locked, market, result, book_partial=False)

    async def execution_of(self, order: Order, market: MarketInfo) -> Execution | None:
        """The execution of an order already booked (as the watcher recorded it)."""
        from services.trading.service import Execution

        if order.filled <= 0 or order.average_price is None:
            return None
        position = await self.repo.open_position(order.account_id, market.symbol)
        fee_quote = order.fee if order.fee_asset in (None, market.quote) else order.fee * order.average_price
        received = (
            order.filled - order.fee
            if order.fee_asset == market.base and order.side == "buy"
            else order.filled
        )
        return Execution(
            order_id=order.id,
            mode="live",
            symbol=market.symbol,
            side=order.side,
            amount=received,
            average_price=order.average_price,
            cost=order.cost,
            fee=fee_quote,
            quote=market.quote,
            realized_pnl=order.realized_pnl if order.side == "sell" else None,
            position_amount=position.amount if position is not None else ZERO,
            position_entry=position.average_entry if position is not None else ZERO,
            order_type=order.order_type,
        )

    async def apply(
        self, order: Order, market: MarketInfo, result: OrderResult, *, book_partial: bool = True
    ) -> Execution | None:
        """Record the exchange's view of an order that has not ended yet (the caller holds its row).

        An order that ended is booked on its position (what was not booked before); a resting limit order
        that filled in part has that part booked (``book_partial``; an execution of status "open"), once."""
        if order.status in ENDED:
            return None
        order.exchange_order_id = result.exchange_order_id or order.exchange_order_id
        order.updated_at = self.clock()
        if result.status == "open":
            order.status = "open"
            if book_partial and order.order_type == "limit" and result.filled > _booked(order):
                return await self.book(order, market, result)
            order.filled = max(result.filled, _booked(order))
            await self.session.flush()
            return None
        if result.filled <= 0:
            order.status, order.filled = result.status, ZERO
            await self.session.flush()
            return None
        if result.filled <= _booked(order):  # every part was booked already: the order just ended
            order.status, order.updated_at = result.status, self.clock()
            await self.session.flush()
            return await self.execution_of(order, market)
        return await self.book(order, market, result)

    async def book(self, order: Order, market: MarketInfo, result: OrderResult) -> Execution:
        """Book an exchange fill on the order and the position (fees converted to the quote asset): what the
        exchange reports beyond the part already booked (``order.booked``; the caller holds the row).

        The execution returned is the order's whole fill so far (status "open" while it rests)."""
        from services.trading.service import Execution, _is_dust, _new_position, _state, _store

        now = self.clock()
        price = result.average_price or (result.cost / result.filled if result.filled else ZERO)
        fee_quote = result.fee if result.fee_asset in (None, market.quote) else result.fee * price
        received = (
            result.filled - result.fee
            if result.fee_asset == market.base and order.side == "buy"
            else result.filled
        )
        # the part not booked yet: what the exchange reports beyond what earlier parts booked
        first = _booked(order) <= 0
        new_filled = result.filled - _booked(order)
        new_cost = result.cost - (ZERO if first else order.cost)
        new_fee = max(result.fee - (ZERO if first else order.fee), ZERO)
        new_price = new_cost / new_filled if new_filled > 0 else price
        new_fee_quote = new_fee if result.fee_asset in (None, market.quote) else new_fee * new_price
        new_received = (
            new_filled - new_fee if result.fee_asset == market.base and order.side == "buy" else new_filled
        )
        order.exchange_order_id = result.exchange_order_id or order.exchange_order_id
        order.status = result.status
        order.filled, order.booked, order.average_price = result.filled, result.filled, price
        order.cost, order.fee, order.fee_asset, order.updated_at = (
            result.cost,
            result.fee,
            result.fee_asset,
            now,
        )
        position = await self.repo.open_position(order.account_id, market.symbol, for_update=True)
        realized: Decimal | None = None
        if order.side == "buy" and new_received > 0:
            if position is None:
                position = await self.repo.add_position(
                    _new_position(order.user_id, order.account_id, order.exchange, market.symbol, now)
                )
            state = _state(position).after_buy(new_received, new_cost, new_fee_quote)
            if order.stop_loss is not None:
                position.stop_loss = order.stop_loss
            if order.take_profit is not None:
                position.take_profit = order.take_profit
            _store(position, state, now)
        elif order.side == "sell" and position is not None and position.amount > 0 and new_filled > 0:
            sold = min(new_filled, position.amount)
            state, realized = _state(position).after_sell(
                sold, new_cost * sold / new_filled, new_fee_quote * sold / new_filled
            )
            if _is_dust(state.amount, market):
                # What is left cannot be traded (below the exchange's step or minimum): written off.
                realized -= state.cost_basis
                state = replace(
                    state, amount=ZERO, cost_basis=ZERO, realized_pnl=state.realized_pnl - state.cost_basis
                )
            _store(position, state, now)
        else:
            state = _state(position) if position is not None else PositionState()
        if position is not None and order.order_type != "stop" and position.protection is not None:
            position.protection = None  # its amount changed: the native stop is placed again for it
        order.realized_pnl = (ZERO if first else order.realized_pnl) + (realized or ZERO)
        if position is not None:
            order.position_id = position.id
        elif first:
            order.position_id = None
        await self.session.flush()
        if self.trading.on_fill is not None:
            self.trading.on_fill("live", order.side, order.order_type)
        if realized is not None and realized > 0 and market.quote in USD_QUOTES:
            # live profit uses up credits (1 credit per USD); what they do not cover becomes debt. One key
            # per booking: the whole order booked at once, else each part by the fill it brought the order to
            whole = first and result.status != "open"
            key = f"profit:order:{order.id}" if whole else f"profit:order:{order.id}:{result.filled}"
            await CreditLedger(self.session).consume_profit(
                order.user_id, realized, key, reference=f"order:{order.id}"
            )
        return Execution(
            order_id=order.id,
            mode="live",
            symbol=market.symbol,
            side=order.side,
            amount=received,
            average_price=price,
            cost=result.cost,
            fee=fee_quote,
            quote=market.quote,
            realized_pnl=order.realized_pnl if order.side == "sell" and realized is not None else realized,
            position_amount=state.amount,
            position_entry=state.average_entry,
            status="open" if result.status == "open" else "filled",
            order_type=order.order_type,
        )

    async def cancel(self, account: ExchangeAccount, order_id: int) -> tuple[bool, Execution | None]:
        """Cancel a resting order on the exchange. Returns (cancelled, execution of what filled before).

        The row is marked "canceling" first, so the order watcher leaves it to us while the request runs
        (and settles it if this process dies meanwhile)."""
        order = await self.repo.locked_order(order_id)
        if order is None or order.status != "open" or not order.exchange_order_id:
            return False, None
        symbol, exchange_order_id = order.symbol, order.exchange_order_id
        order.status, order.updated_at = "canceling", self.clock()
        client = await self.client(account)
        await self.session.commit()  # no transaction held across the exchange call
        try:
            result = await client.cancel_order(symbol, exchange_order_id)
            market = await client.market(symbol)
        except AppError:
            reverted = await self.repo.locked_order(order_id)
            if reverted is not None and reverted.status == "canceling":
                reverted.status = "open"
            await self.session.commit()
            raise
        finally:
            await client.close()
        locked = await self.repo.locked_order(order_id)
        if locked is None or locked.status in ENDED:
            return False, None
        if result is None:  # the exchange no longer knows it: it ended without a fill we know of
            locked.status, locked.updated_at = "canceled", self.clock()
            await self.session.flush()
            return True, None
        execution = await self.apply(locked, market, result)
        return locked.status == "canceled", execution

    async def sell_position(
        self, position: Position, account: ExchangeAccount, *, reason: str, client_order_id: str
    ) -> Execution | None:
        """Sell a live position at market: its amount, or what the exchange holds if that is less."""
        client = await self.client(account)
        symbol = position.symbol
        await self.session.commit()
        try:
            market = await client.market(symbol)
            balances = await client.fetch_balance()
        finally:
            await client.close()
        held = balances[market.base].free if market.base in balances else ZERO
        amount = round_step(min(position.amount, held), market.amount_step)
        if amount <= 0 or (market.min_amount is not None and amount < market.min_amount):
            raise ValidationError("trade.errors.nothing_to_sell", asset=market.base)
        _, execution = await self.submit(
            position.user_id,
            account,
            market,
            side="sell",
            order_type="market",
            amount=amount,
            limit_price=None,
            client_order_id=client_order_id,
            reason=reason,
        )
        return execution

    async def in_flight(self, account_id: int, symbol: str) -> bool:
        """An order of this symbol whose outcome we do not know yet (sent, not answered)."""
        found = await self.session.scalar(
            select(Order.id).where(
                Order.account_id == account_id,
                Order.symbol == symbol,
                Order.status.in_(("sending", "unknown")),
            )
        )
        return found is not None


async def watch_live_orders(
    session_factory: async_sessionmaker[AsyncSession],
    trading_factory: Callable[[AsyncSession], TradingService],
    *,
    settle_after: timedelta = timedelta(seconds=20),
    give_up_after: timedelta = timedelta(minutes=10),
    tenant_id: int | None = None,
) -> list[OrderUpdate]:
    """Follow every live order that has not ended: resting limit orders until they fill or are cancelled,
    and orders sent without a known outcome, looked up by their client order id.

    An order still "sending" is left alone for ``settle_after`` (its request may be in flight). An order the
    exchange has never heard of after ``give_up_after`` is marked not placed; nothing is ever resent."""
    async with session_factory() as session:
        rows = (
            await session.execute(
                select(Order.id)
                .join(ExchangeAccount, ExchangeAccount.id == Order.account_id)
                .where(
                    Order.status.in_(PENDING),
                    ExchangeAccount.is_paper.is_(False),
                    of_tenant(Order.user_id, tenant_id),
                )
                .order_by(Order.id)
            )
        ).all()
    updates: list[OrderUpdate] = []
    for (order_id,) in rows:
        try:
            update = await _follow(session_factory, trading_factory, order_id, settle_after, give_up_after)
        except AppError as exc:
            log.info("live_orders.follow_failed", order_id=order_id, error=exc.message_key)
            continue
        if update is not None:
            updates.append(update)
    return updates


async def _follow(
    session_factory: async_sessionmaker[AsyncSession],
    trading_factory: Callable[[AsyncSession], TradingService],
    order_id: int,
    settle_after: timedelta,
    give_up_after: timedelta,
) -> OrderUpdate | None:
    async with session_factory() as session:
        trading = trading_factory(session)
        live = LiveOrders(trading)
        order = await session.get(Order, order_id)
        if order is None or order.status in ENDED:
            return None
        age = trading.clock() - order.created_at
        if order.status in IN_FLIGHT and trading.clock() - order.updated_at < settle_after:
            return None
        account = await session.get(ExchangeAccount, order.account_id)
        user = await session.get(User, order.user_id)
        if account is None or user is None:
            return None
        symbol, client_order_id, exchange_order_id = (
            order.symbol,
            order.client_order_id,
            order.exchange_order_id,
        )
        client = await live.client(account)
        await session.commit()
        try:
            if exchange_order_id:
                result: OrderResult | None = await client.fetch_order(symbol, exchange_order_id)
            else:
                result = await client.find_order(symbol, client_order_id)
            market = await client.market(symbol)
        finally:
            await client.close()
        locked = await trading.repo.locked_order(order_id)
        if locked is None or locked.status in ENDED:
            return None
        locale = user.locale or user.language_code
        if result is None:
            if age < give_up_after:
                return None
            locked.status, locked.error, locked.updated_at = "not_placed", NOT_PLACED, trading.clock()
            await trading.audit.add(
                "order.not_placed", tenant_id=user.tenant_id, user_id=user.id, details={"order_id": order_id}
            )
            await session.commit()
            return OrderUpdate(user.telegram_id, locale, "not_placed", order_id, symbol, locked.side, None)
        before, booked_before = locked.status, _booked(locked)
        execution = await live.apply(locked, market, result)
        if locked.status == "open" and execution is not None:  # a part filled: booked now, once
            await trading.audit.add(
                "order.partially_filled",
                tenant_id=user.tenant_id,
                user_id=user.id,
                details={
                    "order_id": order_id,
                    "mode": "live",
                    "filled": str(locked.filled),
                    "booked_before": str(booked_before),
                },
            )
            await session.commit()
            partial = PartialFill(
                locked.filled, locked.amount, execution.average_price, market.base, market.quote
            )
            return OrderUpdate(
                user.telegram_id, locale, "partial", order_id, symbol, locked.side, execution, partial
            )
        if locked.status == before:
            await session.commit()
            return None
        await trading.audit.add(
            f"order.{locked.status}",
            tenant_id=user.tenant_id,
            user_id=user.id,
            details={"order_id": order_id, "mode": "live", "filled": str(locked.filled)},
        )
        await session.commit()
        if locked.status == "open":
            return None
        kind = "filled" if execution is not None else "canceled"
        return OrderUpdate(user.telegram_id, locale, kind, order_id, symbol, locked.side, execution)


__all__ = [
    "ENDED",
    "PENDING",
    "LiveOrders",
    "LiveUnavailable",
    "OrderUpdate",
    "PartialFill",
    "watch_live_orders",
]
