"""Native protective orders of live positions: a stop-loss or take-profit placed on the exchange itself.

The rule (README, Trading): on a live account whose exchange takes native stops (Binance, Kraken, KuCoin),
ONE protective order is placed per position, a market sell of the whole position that waits on the exchange:
the stop-loss if it is set, else the take-profit. With both set (no OCO here) the stop-loss is native and the
take-profit is watched; when the watched take-profit fires, the native stop-loss is cancelled first (if it
filled meanwhile, that fill is booked instead). When the exchange cannot take the order (not supported, the
position below the exchange's minimum, or the exchange refused it), both are watched as before; paper
accounts are always watched.

A native order is an ``orders`` row (order_type ``stop``, reason ``sl``/``tp``, ``trigger_price``) with a
deterministic client order id, committed before it is sent; its statuses are ``arming`` (sent, outcome not
known yet), ``armed`` (waiting on the exchange), ``disarming`` (being cancelled), then the usual ended ones.
``positions.stop_order_id`` points at it and ``positions.protection`` says how the position is protected
(``native``/``watched``; None: to be decided, e.g. after the position's amount changed). The protections
watcher follows armed orders by client id and books a fill once (the order row is locked and checked).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

import structlog
from sqlalchemy import func, select

from db.models import ExchangeAccount, Order, Position
from services.errors import AppError
from services.exchanges.errors import (
    ExchangeUnavailable,
    InsufficientFundsError,
    InvalidOrderError,
    OrderBelowMinimum,
    OrderNotPlaced,
    OrderOutcomeUnknown,
)
from services.exchanges.types import MarketInfo, OrderResult, StopKind
from services.trading.live import ENDED, LiveOrders
from services.trading.paper import round_step

if TYPE_CHECKING:
    from services.trading.service import Execution, TradingService

log = structlog.get_logger(__name__)

T = TypeVar("T")
ZERO = Decimal(0)
STOP = "stop"  # order_type of a native protective order
ARMING, ARMED, DISARMING = "arming", "armed", "disarming"
WAITING = (ARMING, ARMED, DISARMING)
#: how long an order stays "arming"/"disarming" before the watcher looks it up (its request may be in flight)
SETTLE = timedelta(seconds=20)
#: an "arming" order the exchange has never heard of after this long was not placed
GIVE_UP = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Protection:
    """How a position's stop-loss / take-profit is kept after a change.

    ``mode``: native | watched | none; ``kind``: the protection placed natively; ``why``: why it is watched
    (unsupported | minimum | refused | unavailable); ``execution``: a native stop that filled meanwhile."""

    mode: str
    kind: str | None = None
    why: str | None = None
    execution: Execution | None = None

    @property
    def code(self) -> str | None:
        """The locale key suffix of the reply line (``trade.protection.<code>``), None to say nothing."""
        if self.mode == "native":
            return f"native_{self.kind}" + ("_tp_watched" if self.why == "tp_watched" else "")
        if self.mode == "watched":
            return f"watched_{self.why or 'refused'}"
        return None


NONE = Protection("none")


def _native(position: Position, kind: str) -> Protection:
    """A native order placed; with both set, the take-profit is the watched one."""
    both = kind == "sl" and position.take_profit is not None
    return Protection("native", kind, why="tp_watched" if both else None)


def primary(position: Position) -> tuple[StopKind, Decimal] | None:
    """The protection placed natively: the stop-loss if set, else the take-profit."""
    if position.stop_loss is not None:
        return "sl", position.stop_loss
    if position.take_profit is not None:
        return "tp", position.take_profit
    return None


class NativeStops:
    """Placing, replacing, cancelling and following live positions' native protective orders."""

    def __init__(self, trading: TradingService) -> None:
        self.trading = trading
        self.session = trading.session
        self.repo = trading.repo
        self.clock = trading.clock
        self.live = LiveOrders(trading)

    async def _load(self, position_id: int) -> tuple[Position, ExchangeAccount] | None:
        position = await self.session.get(Position, position_id, populate_existing=True)
        if position is None:
            return None
        account = await self.session.get(ExchangeAccount, position.account_id)
        if account is None or account.is_paper or account.removed_at is not None:
            return None
        return position, account

    async def reserved(self, account_id: int, symbol: str) -> Decimal:
        """The base amount our native stops hold on the exchange for this symbol (free to sell: they are
        cancelled before a sell)."""
        total = await self.session.scalar(
            select(func.sum(Order.amount)).where(
                Order.account_id == account_id,
                Order.symbol == symbol,
                Order.order_type == STOP,
                Order.status.in_((ARMED, ARMING)),
            )
        )
        return Decimal(total or 0)

    async def _done(self, result: T) -> T:
        """End the session's transaction (SQLite: none may stay open across the caller's next awaits)."""
        if self.session.in_transaction():
            await self.session.commit()
        return result

    async def sync(self, position_id: int) -> Protection:
        """Make the exchange hold what the position asks for: keep the native order if it is still right,
        else cancel it and place the new one (or fall back to watching). Commits."""
        return await self._done(await self._sync(position_id))

    async def arm(self, position_id: int) -> Protection:
        """Place the position's native protective order (the position has none). Commits."""
        return await self._done(await self._arm(position_id))

    async def disarm(self, position_id: int, *, then: str | None = None) -> Execution | None:
        """Cancel the position's native order on the exchange; if it filled first, book that fill and return
        its execution. The position is left without a native order, its protection ``then``: None (to be
        decided: the watcher places it again) or "watched" (before a sell: not placed again meanwhile; a
        sell that fills part of it makes it undecided again). Commits."""
        return await self._done(await self._disarm(position_id, then))

    async def follow(self, position_id: int) -> tuple[str, Execution] | None:
        """The watcher's look at a position's native order: book it once if it filled (returns the kind and
        the execution), mark it armed once the exchange shows it, replace it if the position's protection
        changed elsewhere, drop it if the exchange did. Commits."""
        return await self._done(await self._follow(position_id))

    async def _sync(self, position_id: int) -> Protection:
        """Make the exchange hold what the position asks for: keep the native order if it is still right,
        else cancel it and place the new one (or fall back to watching). Commits."""
        loaded = await self._load(position_id)
        if loaded is None:
            return NONE
        position, _ = loaded
        want = primary(position) if position.status == "open" and position.amount > 0 else None
        current = await self.session.get(Order, position.stop_order_id) if position.stop_order_id else None
        if current is not None and current.status not in ENDED:
            keep = (
                want is not None
                and position.protection == "native"
                and current.reason == want[0]
                and current.trigger_price == want[1]
            )
            if keep:
                return _native(position, current.reason)
            execution = await self._disarm(position_id, "native")  # replaced below, not by the watcher
            if execution is not None:
                return Protection("none", current.reason, execution=execution)
            loaded = await self._load(position_id)
            if loaded is None:
                return NONE
            position, _ = loaded
        if want is None:
            if position.protection is not None:
                position.protection = None
                await self.session.commit()
            return NONE
        return await self._arm(position_id)

    async def _watched(self, position: Position, why: str, *, retry: bool = False) -> Protection:
        position.protection = None if retry else "watched"
        await self.session.commit()
        log.info("protections.watched", position_id=position.id, why=why)
        return Protection("watched", why=why)

    async def _arm(self, position_id: int) -> Protection:
        """Place the position's native protective order (the position has none). Commits."""
        loaded = await self._load(position_id)
        if loaded is None:
            return NONE
        position, account = loaded
        want = primary(position)
        if want is None or position.status != "open" or position.amount <= 0:
            return NONE
        kind, trigger = want
        client = await self.live.client(account)
        await self.session.commit()
        try:
            if not client.stop_support().supports(kind):
                return await self._watched(position, "unsupported")
            try:
                market = await client.market(position.symbol)
            except AppError:
                return await self._watched(position, "unavailable", retry=True)
            # the position's amount (what the exchange holds less is refused: then watched)
            amount = round_step(position.amount, market.amount_step)
            too_small = amount <= 0 or (market.min_amount is not None and amount < market.min_amount)
            if too_small or (market.min_cost is not None and amount * trigger < market.min_cost):
                return await self._watched(position, "minimum")
            prefix = f"cu{kind}n{position.id:x}x"
            count = await self.session.scalar(
                select(func.count(Order.id)).where(
                    Order.account_id == account.id, Order.client_order_id.startswith(prefix, autoescape=True)
                )
            )
            order = await self.repo.add_order(
                self.trading.new_order(
                    position.user_id,
                    account,
                    position.symbol,
                    "sell",
                    order_type=STOP,
                    amount=amount,
                    client_order_id=f"{prefix}{count or 0}",
                    status=ARMING,
                    reason=kind,
                )
            )
            order.trigger_price, order.position_id = trigger, position.id
            position.stop_order_id, position.protection = order.id, "native"
            await self.session.commit()  # the row exists before the exchange hears of the order
            try:
                result = await client.place_stop(
                    position.symbol, kind, amount, trigger, order.client_order_id
                )
            except OrderOutcomeUnknown:
                return _native(position, kind)  # the watcher settles it by its client order id
            except (OrderNotPlaced, ExchangeUnavailable) as exc:
                return await self._failed(order.id, position_id, "not_placed", exc, "unavailable", retry=True)
            except OrderBelowMinimum as exc:
                return await self._failed(order.id, position_id, "rejected", exc, "minimum")
            except (InvalidOrderError, InsufficientFundsError) as exc:
                return await self._failed(order.id, position_id, "rejected", exc, "refused")
            except AppError as exc:
                return await self._failed(order.id, position_id, "rejected", exc, "unavailable", retry=True)
        finally:
            await client.close()
        locked = await self.repo.locked_order(order.id)
        if locked is None or locked.status in ENDED:
            await self.session.commit()
            return _native(position, kind)
        locked.exchange_order_id = result.exchange_order_id or locked.exchange_order_id
        locked.updated_at = self.clock()
        if result.status == "open":
            locked.status = ARMED
            await self.session.commit()
            return _native(position, kind)
        # triggered at once (Kraken, KuCoin)
        execution = await self._settle(locked, position_id, result, market)
        await self.session.commit()
        return Protection("none", kind, execution=execution)

    async def _failed(
        self, order_id: int, position_id: int, status: str, exc: AppError, why: str, *, retry: bool = False
    ) -> Protection:
        order = await self.repo.locked_order(order_id)
        if order is not None and order.status not in ENDED:
            order.status, order.error, order.updated_at = status, exc.message_key[:255], self.clock()
        position = await self.session.get(Position, position_id, populate_existing=True)
        if position is None:
            await self.session.commit()
            return Protection("watched", why=why)
        if position.stop_order_id == order_id:
            position.stop_order_id = None
        return await self._watched(position, why, retry=retry)

    async def _settle(
        self, order: Order, position_id: int, result: OrderResult, market: MarketInfo
    ) -> Execution | None:
        """Book a native order that ended (its row locked); the position no longer has a native order."""
        execution: Execution | None = None
        if result.filled > 0:
            execution = await self.live.book(order, market, result)
        else:
            order.status = result.status if result.status in ENDED else "canceled"
            order.exchange_order_id = result.exchange_order_id or order.exchange_order_id
            order.updated_at = self.clock()
        position = await self.session.get(Position, position_id, populate_existing=True)
        if position is not None and position.stop_order_id == order.id:
            position.stop_order_id = None
            if execution is None and position.status == "open":
                position.protection = "watched"  # the exchange dropped it: we watch from now on
        await self.session.flush()
        return execution

    async def _disarm(self, position_id: int, then: str | None = None) -> Execution | None:
        """Cancel the position's native order on the exchange; if it filled first, book that fill and return
        its execution. The position is left without a native order (protection to be decided). Commits."""
        position = await self.session.get(Position, position_id, populate_existing=True)
        if position is None or position.stop_order_id is None:
            return None
        order_id = position.stop_order_id
        order = await self.repo.locked_order(order_id)
        account = await self.session.get(ExchangeAccount, position.account_id)
        position.protection = then
        if order is None or order.status in ENDED or account is None:
            position.stop_order_id = None
            await self.session.commit()
            return None
        before, symbol = order.status, order.symbol
        exchange_order_id, client_order_id = order.exchange_order_id, order.client_order_id
        order.status, order.updated_at = DISARMING, self.clock()
        client = await self.live.client(account)
        await self.session.commit()  # no transaction held across the exchange call
        try:
            result = await client.cancel_stop(symbol, exchange_order_id, client_order_id)
            market = await client.market(symbol)
        except AppError:
            reverted = await self.repo.locked_order(order_id)
            if reverted is not None and reverted.status == DISARMING:
                reverted.status = before
            await self.session.commit()
            raise
        finally:
            await client.close()
        locked = await self.repo.locked_order(order_id)
        execution: Execution | None = None
        if locked is not None and locked.status not in ENDED:
            if result is None:
                locked.status = "canceled" if locked.exchange_order_id else "not_placed"
                locked.updated_at = self.clock()
            else:
                execution = await self._settle(locked, position_id, result, market)
        position = await self.session.get(Position, position_id, populate_existing=True)
        if position is not None and position.stop_order_id == order_id:
            position.stop_order_id = None
        if position is not None and execution is None:
            position.protection = then
        await self.session.commit()
        return execution

    async def _follow(self, position_id: int) -> tuple[str, Execution] | None:
        """The watcher's look at a position's native order: book it once if it filled (returns the kind and
        the execution), mark it armed once the exchange shows it, drop it if the exchange did."""
        position = await self.session.get(Position, position_id, populate_existing=True)
        if position is None or position.stop_order_id is None:
            return None
        order = await self.session.get(Order, position.stop_order_id, populate_existing=True)
        account = await self.session.get(ExchangeAccount, position.account_id)
        if order is None or account is None:
            return None
        now = self.clock()
        if order.status in ENDED:
            position.stop_order_id = None
            await self.session.commit()
            return None
        if order.status in (ARMING, DISARMING) and now - order.updated_at < SETTLE:
            return None  # its request may still be in flight
        want = primary(position) if position.status == "open" else None
        if order.status == ARMED and (want is None or (order.reason, order.trigger_price) != want):
            kind = order.reason  # changed elsewhere (e.g. copied from a leader): replace the order
            protection = await self._sync(position_id)
            return (kind, protection.execution) if protection.execution is not None else None
        order_id, symbol, client_order_id = order.id, order.symbol, order.client_order_id
        age = now - order.created_at
        client = await self.live.client(account)
        await self.session.commit()
        try:
            result = await client.find_stop(symbol, client_order_id)
            market = await client.market(symbol)
        finally:
            await client.close()
        locked = await self.repo.locked_order(order_id)
        if locked is None or locked.status in ENDED:
            await self.session.commit()
            return None
        if result is None:
            if locked.status == ARMING and age < GIVE_UP:
                await self.session.commit()
                return None
            locked.status = "not_placed" if locked.status == ARMING else "canceled"
            locked.updated_at = now
            position = await self.session.get(Position, position_id, populate_existing=True)
            if position is not None and position.stop_order_id == order_id:
                position.stop_order_id = None
                position.protection = None if locked.status == "not_placed" else "watched"
            await self.session.commit()
            return None
        if result.status == "open" and result.filled <= 0:
            if locked.status == ARMING:
                locked.status, locked.exchange_order_id = ARMED, result.exchange_order_id
                locked.updated_at = now
            await self.session.commit()
            return None
        if result.status == "open":
            await self.session.commit()
            return None  # triggered and partly filled: booked when it ends
        kind = locked.reason
        execution = await self._settle(locked, position_id, result, market)
        await self.session.commit()
        return (kind, execution) if execution is not None else None


__all__ = ["ARMED", "ARMING", "DISARMING", "STOP", "WAITING", "NativeStops", "Protection", "primary"]
