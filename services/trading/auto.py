"""Orders placed on a user's behalf without a confirmation card: copies of a leader's trades, which the
user authorised once when they followed the leader.

An automatic order goes through the same steps as a confirmed manual one, in one go: the account's
balances, the exchange's market rules and minimums, the risk limits (`services.risk.limits.check_order`),
and for a live buy the `live_entry` entitlement (plan and credits). Paper orders fill against the exchange's
public order book; live orders go through `LiveOrders.submit`, which stores the order with its client order
id before sending it. The caller gives the client order id and it must be deterministic: an order whose id
is already stored is never placed again (its recorded execution is returned, or `OrderInFlight` while the
exchange has not answered).

It uses these parts of `TradingService`: `session`, `repo`, `audit`, `market_data`, `config`, `clock`,
`active_account`, `live_balances`, `_exchange_of`, `_require_live_entry`, `_estimate`, `_check_minimums`,
`_account_state`, `_limits`, `_check_protections`, `_prices` and `_apply_paper_fill`, and `_equity` of
its module.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from db.models import ExchangeAccount, Order
from services.errors import ValidationError
from services.exchanges.types import MarketInfo
from services.trading.live import ENDED, LiveOrders
from services.trading.paper import Fill
from services.trading.parser import OrderType, RequestKind, TradeRequest
from services.trading.service import (
    PAPER,
    Execution,
    RiskRefused,
    TradingService,
    _equity,
)
from services.users import UserProfile

ZERO = Decimal(0)


class OrderInFlight(ValidationError):
    """An order with this client order id was sent and its outcome is not known yet."""

    message_key = "trade.errors.order_in_flight"


class AutoTrader:
    """Executes market orders without a confirmation card, for one trading service (one session)."""

    def __init__(self, trading: TradingService) -> None:
        self.trading = trading
        self.session = trading.session
        self.repo = trading.repo

    async def holdings(self, account: ExchangeAccount) -> dict[str, Any]:
        """The account's balances (rows with `free` and `locked`): paper rows, or read from the exchange."""
        if account.is_paper:
            return dict(await self.repo.balances(account.id))
        return await self.trading.live_balances(account)

    async def equity(self, account: ExchangeAccount, balances: dict[str, Any] | None = None) -> Decimal:
        """What the account holds, valued in the quote asset at the exchange's bid."""
        if balances is None:
            balances = await self.holdings(account)
        prices = await self.trading._prices(account, balances)
        return _equity(balances, prices, self.trading.config.paper_quote)

    async def existing(self, client_order_id: str) -> Order | None:
        return await self.session.scalar(select(Order).where(Order.client_order_id == client_order_id))

    async def execute(
        self,
        user: UserProfile,
        request: TradeRequest,
        *,
        client_order_id: str,
        account: ExchangeAccount | None = None,
        reason: str = "copy",
    ) -> Execution:
        """Preview, risk-check and execute a market order at once, on `account` (default: the active one).

        Raises what a manual order would (`InsufficientBalance`, `RiskRefused`, the minimums, the
        entitlement errors of a live buy) and nothing is placed then."""
        if (
            request.kind is not RequestKind.ORDER
            or request.side is None
            or request.symbol is None
            or request.order_type is OrderType.LIMIT
            or request.limit_price is not None
        ):
            raise ValidationError("trade.errors.not_an_order")
        trading = self.trading
        if account is None:
            _, account = await trading.active_account(user)
        elif account.user_id != user.id or account.removed_at is not None:
            raise ValidationError("trade.errors.live_not_available")
        done = await self.existing(client_order_id)
        if done is not None:
            return await self._replay(done, account)
        # priced and checked exactly as a manual order's confirmation card is
        inputs = await trading.order_inputs(user, request, account=account)
        fill = trading.market_fill(inputs, request)
        decision = await trading.market_risk(inputs, request, fill)
        if not decision.allowed:
            raise RiskRefused(decision)
        if account.is_paper:
            return await self._paper(user, account, inputs.market, request, fill, client_order_id, reason)
        return await self._live(user, account, inputs.market, request, fill.amount, client_order_id, reason)

    async def _paper(
        self,
        user: UserProfile,
        account: ExchangeAccount,
        market: MarketInfo,
        request: TradeRequest,
        fill: Fill,
        client_order_id: str,
        reason: str,
    ) -> Execution:
        trading = self.trading
        side = str(request.side)
        await self.repo.balances(account.id, for_update=True)
        execution = await trading._apply_paper_fill(
            user,
            account,
            market,
            side,
            fill,
            client_order_id=client_order_id,
            stop_loss=request.stop_loss,
            take_profit=request.take_profit,
            reason=reason,
        )
        await trading.audit.add(
            "order.filled",
            tenant_id=user.tenant_id,
            user_id=user.id,
            details={
                "order_id": execution.order_id,
                "mode": PAPER,
                "symbol": market.symbol,
                "side": side,
                "amount": str(fill.amount),
                "price": str(fill.average_price),
                "reason": reason,
            },
        )
        return execution

    async def _live(
        self,
        user: UserProfile,
        account: ExchangeAccount,
        market: MarketInfo,
        request: TradeRequest,
        amount: Decimal,
        client_order_id: str,
        reason: str,
    ) -> Execution:
        if str(request.side) == "sell":
            await self.trading.disarm_before_sell(account.id, market.symbol)  # its coins are held by the stop
        order, execution = await LiveOrders(self.trading).submit(
            user.id,
            account,
            market,
            side=str(request.side),
            order_type="market",
            amount=amount,
            limit_price=None,
            client_order_id=client_order_id,
            reason=reason,
            stop_loss=request.stop_loss,
            take_profit=request.take_profit,
        )
        await self.trading.audit.add(
            "order.filled" if execution is not None else "order.placed",
            tenant_id=user.tenant_id,
            user_id=user.id,
            details={
                "order_id": order.id,
                "mode": "live",
                "exchange": account.exchange,
                "status": order.status,
                "reason": reason,
            },
        )
        if execution is None:
            await self.session.commit()
            raise ValidationError("trade.errors.order_not_filled", status=order.status)
        return execution

    async def _replay(self, order: Order, account: ExchangeAccount) -> Execution:
        """The execution of an order placed before under the same client order id."""
        if order.status not in ENDED:
            raise OrderInFlight(order_id=order.id, symbol=order.symbol)
        if order.filled <= 0 or order.average_price is None:
            raise ValidationError("trade.errors.order_not_filled", status=order.status)
        client = self.trading.market_data.public(self.trading._exchange_of(account))
        market = await client.market(order.symbol)
        if not account.is_paper:
            execution = await LiveOrders(self.trading).execution_of(order, market)
            assert execution is not None
            return execution
        position = await self.repo.open_position(order.account_id, order.symbol)
        return Execution(
            order_id=order.id,
            mode=PAPER,
            symbol=order.symbol,
            side=order.side,
            amount=order.filled,
            average_price=order.average_price,
            cost=order.cost,
            fee=order.fee,
            quote=market.quote,
            realized_pnl=order.realized_pnl if order.side == "sell" else None,
            position_amount=position.amount if position is not None else ZERO,
            position_entry=position.average_entry if position is not None else ZERO,
            order_type=order.order_type,
        )


__all__ = ["AutoTrader", "OrderInFlight"]
