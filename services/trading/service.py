"""Trading: a parsed request becomes a priced, risk-checked preview; a confirmed preview is executed once.

Paper accounts (the default) fill against the exchange's real public order book; live accounts go through
the exchange layer with a deterministic client order id stored before anything is sent.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ExchangeAccount, Order, PendingAction, Position, TradingProfile
from db.repositories import AuditRepository
from db.repositories.trading import TradingRepository
from db.types import utcnow
from services.billing.entitlements import Entitlements
from services.errors import AppError, NotFoundError, ValidationError
from services.exchanges.types import Credentials, ExchangeClient, MarketInfo, OrderBook, Ticker
from services.risk.limits import (
    NO_CEILINGS,
    AccountState,
    RiskCeilings,
    RiskDecision,
    RiskLimits,
    check_order,
    clamp,
)
from services.trading.paper import Fill, limit_fill, round_step, walk_book
from services.trading.parser import AmountUnit, RequestKind, TradeRequest
from services.trading.pnl import PositionState
from services.users import UserProfile

log = structlog.get_logger(__name__)
ZERO = Decimal(0)
HUNDRED = Decimal(100)
PAPER = "paper"


class MarketData(Protocol):
    """Public market data of an exchange (the exchange registry)."""

    def public(self, exchange_id: str) -> ExchangeClient: ...


CredentialsSource = Callable[[ExchangeAccount], Awaitable[Credentials]]
PrivateClients = Callable[[str, Credentials], ExchangeClient]


@dataclass(frozen=True, slots=True)
class Holding:
    """A balance line of a live account, shaped like a paper balance row."""

    asset: str
    free: Decimal
    locked: Decimal


@dataclass(frozen=True, slots=True)
class OrderInputs:
    """What an order on an account is priced and checked from: the account, its market, what it holds
    (coins reserved by the position's native stop count as held for a sell: the stop is cancelled first)
    and the order book."""

    profile: TradingProfile
    account: ExchangeAccount
    exchange_id: str
    client: ExchangeClient
    side: str
    balances: dict[str, Any]
    market: MarketInfo
    held: Decimal
    quote_free: Decimal
    book: OrderBook


class ConfirmationExpired(ValidationError):
    message_key = "trade.errors.confirmation_expired"


class PriceMoved(ValidationError):
    message_key = "trade.errors.price_moved"


class InsufficientBalance(ValidationError):
    message_key = "trade.errors.insufficient_balance"


class RiskRefused(ValidationError):
    """An order refused by a risk limit; the decision says which limit and by how much."""

    def __init__(self, decision: RiskDecision) -> None:
        super().__init__(decision.message_key, **decision.params)
        self.decision = decision


@dataclass(frozen=True, slots=True)
class TradingConfig:
    default_exchange: str = "binance"
    paper_starting_balance: Decimal = Decimal(10_000)
    paper_quote: str = "USDT"
    confirm_ttl: timedelta = timedelta(seconds=60)
    max_slippage_pct: Decimal = Decimal(2)
    limits: RiskLimits = field(default_factory=RiskLimits)


@dataclass(frozen=True, slots=True)
class OrderPreview:
    account_id: int
    mode: str  # paper | live
    exchange: str
    symbol: str
    base: str
    quote: str
    side: str
    order_type: str
    amount: Decimal
    price: Decimal  # estimated average fill price (market) or the limit price
    cost: Decimal
    fee: Decimal
    fee_rate: Decimal
    limit_price: Decimal | None
    stop_loss: Decimal | None
    take_profit: Decimal | None
    risk: RiskDecision

    @property
    def total(self) -> Decimal:
        return self.cost + self.fee if self.side == "buy" else self.cost - self.fee


@dataclass(frozen=True, slots=True)
class Confirmation:
    token: str
    preview: OrderPreview
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Execution:
    order_id: int
    mode: str
    symbol: str
    side: str
    amount: Decimal
    average_price: Decimal
    cost: Decimal
    fee: Decimal
    quote: str
    realized_pnl: Decimal | None
    position_amount: Decimal
    position_entry: Decimal
    status: str = "filled"  # filled | open (a resting limit order)
    order_type: str = "market"
    # live: how the position's stop-loss / take-profit is kept after this order (a Protection code:
    # native_sl | native_tp | watched_<why>), None when there is nothing to say
    protection: str | None = None


@dataclass(frozen=True, slots=True)
class PositionView:
    symbol: str
    base: str
    amount: Decimal
    average_entry: Decimal
    price: Decimal
    value: Decimal
    unrealized: Decimal
    unrealized_pct: Decimal
    realized: Decimal
    fees: Decimal
    stop_loss: Decimal | None
    take_profit: Decimal | None


@dataclass(frozen=True, slots=True)
class BalanceView:
    asset: str
    free: Decimal
    locked: Decimal
    value: Decimal  # in the quote asset


@dataclass(frozen=True, slots=True)
class Portfolio:
    mode: str
    exchange: str
    quote: str
    balances: list[BalanceView]
    positions: list[PositionView]
    equity: Decimal
    realized_today: Decimal
    realized_total: Decimal
    unrealized: Decimal
    starting_balance: Decimal


def _d(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


class TradingService:
    def __init__(
        self,
        session: AsyncSession,
        market_data: MarketData,
        config: TradingConfig,
        *,
        clock: Any = utcnow,
        credentials: CredentialsSource | None = None,
        private: PrivateClients | None = None,
        entitlements: Entitlements | None = None,
        on_fill: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.session = session
        self.entitlements = entitlements
        self.on_fill = on_fill  # (mode, side, order type) of each fill, for the metrics
        self.repo = TradingRepository(session)
        self.audit = AuditRepository(session)
        self.market_data = market_data
        self.config = config
        self.clock = clock
        self.credentials = credentials
        self.private = private

    # ---------------------------------------------------------------------------------- accounts

    async def active_account(self, user: UserProfile) -> tuple[TradingProfile, ExchangeAccount]:
        """The account orders go to: the paper account unless the user switched to a live one."""
        profile = await self.repo.profile(user.id)
        if profile is None:
            paper = await self._create_paper_account(user)
            limits = self.config.limits
            profile = await self.repo.add_profile(
                TradingProfile(
                    user_id=user.id,
                    active_account_id=paper.id,
                    max_position_pct=limits.max_position_pct,
                    max_open_positions=limits.max_open_positions,
                    max_daily_loss_pct=limits.max_daily_loss_pct,
                )
            )
            return profile, paper
        account = await self.repo.account(profile.active_account_id) if profile.active_account_id else None
        if account is None or account.removed_at is not None:
            account = next((a for a in await self.repo.accounts(user.id) if a.is_paper), None)
            if account is None:
                account = await self._create_paper_account(user)
            profile.active_account_id = account.id
        return profile, account

    async def _create_paper_account(self, user: UserProfile) -> ExchangeAccount:
        account = await self.repo.add_account(
            ExchangeAccount(user_id=user.id, exchange=PAPER, is_paper=True, created_at=self.clock())
        )
        row = await self.repo.balance_row(account.id, self.config.paper_quote)
        row.free = self.config.paper_starting_balance
        await self.session.flush()
        return account

    def _exchange_of(self, account: ExchangeAccount) -> str:
        return self.config.default_exchange if account.is_paper else account.exchange

    # ---------------------------------------------------------------------------------- preview

    async def order_inputs(
        self, user: UserProfile, request: TradeRequest, *, account: ExchangeAccount | None = None
    ) -> OrderInputs:
        """Everything an order is priced and checked from, on `account` (default: the active one). A live
        buy needs the plan and credits for it (entitlements)."""
        if request.kind is not RequestKind.ORDER or request.side is None or request.symbol is None:
            raise ValidationError("trade.errors.not_an_order")
        profile, active = await self.active_account(user)
        if account is None:
            account = active
        elif account.user_id != user.id or account.removed_at is not None:
            raise ValidationError("trade.errors.live_not_available")
        exchange_id = self._exchange_of(account)
        client = self.market_data.public(exchange_id)
        side = str(request.side)
        balances: dict[str, Any]
        if account.is_paper:
            balances = dict(await self.repo.balances(account.id))
            await self.session.commit()  # no transaction (or SQLite write lock) held across network calls
        else:
            if side == "buy":
                await self._require_live_entry(user, account)
            balances = await self.live_balances(account)
        market = await client.market(request.symbol)
        if side == "sell":
            held = await self.sellable(account, market.symbol, balances)
        else:
            held = balances[market.base].free if market.base in balances else ZERO
        quote_free = balances[market.quote].free if market.quote in balances else ZERO
        book = await client.fetch_order_book(market.symbol, 50)
        return OrderInputs(
            profile, account, exchange_id, client, side, balances, market, held, quote_free, book
        )

    async def sellable(self, account: ExchangeAccount, symbol: str, balances: dict[str, Any]) -> Decimal:
        """What a sell of `symbol` can sell on the account: the free coins, and on a live account those
        the position's native stop holds (it is cancelled before a sell, `disarm_before_sell`)."""
        base = symbol.partition("/")[0]
        held: Decimal = balances[base].free if base in balances else ZERO
        if not account.is_paper:
            from services.trading.protections import NativeStops

            held += await NativeStops(self).reserved(account.id, symbol)
            await self.session.commit()  # no transaction held across network calls
        return held

    def market_fill(self, inputs: OrderInputs, request: TradeRequest) -> Fill:
        """A market order's fill estimated on the book, checked against the exchange's minimums and the
        account's balances."""
        market, side = inputs.market, inputs.side
        try:
            fill = self._estimate(inputs.book, market, side, request, inputs.held, inputs.quote_free)
        except ValidationError as exc:
            if exc.message_key != "trade.errors.amount_too_small":
                raise
            raise ValidationError(
                "trade.errors.below_min_amount",
                minimum=market.min_amount or market.amount_step,
                unit=market.base,
            ) from None
        self._check_minimums(market, fill)
        if side == "buy" and fill.cost + fill.fee > inputs.quote_free:
            raise InsufficientBalance(need=fill.cost + fill.fee, have=inputs.quote_free, asset=market.quote)
        if side == "sell" and fill.amount > inputs.held:
            raise InsufficientBalance(need=fill.amount, have=inputs.held, asset=market.base)
        return fill

    async def market_risk(self, inputs: OrderInputs, request: TradeRequest, fill: Fill) -> RiskDecision:
        """The risk check of a market order's fill, and its stop-loss and take-profit against the price."""
        state = await self._account_state(
            inputs.profile, inputs.account, inputs.market, inputs.balances, inputs.book
        )
        risk = check_order(
            self._limits(inputs.profile), state, side=inputs.side, notional=fill.cost, now=self.clock()
        )
        self._check_protections(inputs.side, fill.average_price, request)
        return risk

    async def preview(self, user: UserProfile, request: TradeRequest) -> OrderPreview:
        inputs = await self.order_inputs(user, request)
        profile, account, exchange_id = inputs.profile, inputs.account, inputs.exchange_id
        market, side = inputs.market, inputs.side
        if request.limit_price is not None:
            return await self._preview_limit(
                profile,
                account,
                exchange_id,
                inputs.client,
                market,
                request,
                inputs.book,
                inputs.balances,
                inputs.held,
                inputs.quote_free,
            )
        fill = self.market_fill(inputs, request)
        risk = await self.market_risk(inputs, request, fill)
        return OrderPreview(
            account_id=account.id,
            mode=PAPER if account.is_paper else "live",
            exchange=exchange_id,
            symbol=market.symbol,
            base=market.base,
            quote=market.quote,
            side=side,
            order_type="market",
            amount=fill.amount,
            price=fill.average_price,
            cost=fill.cost,
            fee=fill.fee,
            fee_rate=market.taker_fee,
            limit_price=None,
            stop_loss=request.stop_loss,
            take_profit=request.take_profit,
            risk=risk,
        )

    async def disarm_before_sell(self, account_id: int, symbol: str) -> None:
        """A live position's native stop holds its coins on the exchange: it is cancelled before a sell.
        When it filled meanwhile, the sell is refused (the stop's fill is booked by the watcher)."""
        from services.trading.protections import NativeStops

        position = await self.repo.open_position(account_id, symbol)
        if position is None or position.stop_order_id is None:
            return
        if await NativeStops(self).disarm(position.id, then="watched") is not None:
            raise ValidationError("trade.protection.filled_first", symbol=symbol)

    async def _require_live_entry(self, user: UserProfile, account: ExchangeAccount) -> None:
        """New live entries need a plan that trades live on this exchange and credits (no debt)."""
        if self.entitlements is not None:
            await self.entitlements.require(user.id, "live_entry", exchange=account.exchange)

    async def live_balances(self, account: ExchangeAccount) -> dict[str, Any]:
        """A live account's balances, read from the exchange with its own key."""
        if self.credentials is None or self.private is None:
            raise ValidationError("trade.errors.live_not_available")
        credentials = await self.credentials(account)
        await self.session.commit()  # no transaction held across the exchange call
        client = self.private(account.exchange, credentials)
        try:
            balances = await client.fetch_balance()
        finally:
            await client.close()
        return {
            asset: Holding(asset, b.free, b.used) for asset, b in balances.items() if b.total and b.total > 0
        }

    async def _preview_limit(
        self,
        profile: TradingProfile,
        account: ExchangeAccount,
        exchange_id: str,
        client: ExchangeClient,
        market: MarketInfo,
        request: TradeRequest,
        book: OrderBook,
        balances: dict[str, Any],
        held: Decimal,
        quote_free: Decimal,
    ) -> OrderPreview:
        assert request.limit_price is not None and request.side is not None
        side = str(request.side)
        price = client.price_to_precision(market.symbol, request.limit_price)
        if price <= 0:
            raise ValidationError("trade.errors.bad_limit_price")
        unit, amount = request.amount_unit, request.amount
        if unit is AmountUnit.QUOTE:
            assert amount is not None
            quantity = amount / price
        elif unit is AmountUnit.BASE:
            assert amount is not None
            quantity = amount
        else:
            if held <= 0:
                raise ValidationError("trade.errors.nothing_to_sell", asset=market.base)
            quantity = held if unit is AmountUnit.ALL else held * (amount or ZERO) / HUNDRED
        quantity = round_step(quantity, market.amount_step)
        if quantity <= 0:
            raise ValidationError(
                "trade.errors.below_min_amount",
                minimum=market.min_amount or market.amount_step,
                unit=market.base,
            )
        fill = limit_fill(quantity, price, market.maker_fee)
        self._check_minimums(market, fill)
        if side == "buy" and fill.cost + fill.fee > quote_free:
            raise InsufficientBalance(need=fill.cost + fill.fee, have=quote_free, asset=market.quote)
        if side == "sell" and fill.amount > held:
            raise InsufficientBalance(need=fill.amount, have=held, asset=market.base)
        state = await self._account_state(profile, account, market, balances, book)
        risk = check_order(self._limits(profile), state, side=side, notional=fill.cost, now=self.clock())
        self._check_protections(side, price, request)
        return OrderPreview(
            account_id=account.id,
            mode=PAPER if account.is_paper else "live",
            exchange=exchange_id,
            symbol=market.symbol,
            base=market.base,
            quote=market.quote,
            side=side,
            order_type="limit",
            amount=fill.amount,
            price=price,
            cost=fill.cost,
            fee=fill.fee,
            fee_rate=market.maker_fee,
            limit_price=price,
            stop_loss=request.stop_loss,
            take_profit=request.take_profit,
            risk=risk,
        )

    def _estimate(
        self,
        book: OrderBook,
        market: MarketInfo,
        side: str,
        request: TradeRequest,
        held: Decimal,
        quote_free: Decimal,
    ) -> Fill:
        unit, amount = request.amount_unit, request.amount
        fee, step = market.taker_fee, market.amount_step
        if unit is AmountUnit.QUOTE:
            assert amount is not None
            if side == "buy":
                return walk_book(book, "buy", fee, quote_amount=amount, amount_step=step)
            best_bid = book.bids[0][0] if book.bids else None
            if best_bid is None:
                raise ValidationError("trade.errors.no_market", symbol=market.symbol)
            return walk_book(book, "sell", fee, amount=amount / best_bid, amount_step=step)
        if unit is AmountUnit.BASE:
            assert amount is not None
            return walk_book(book, side, fee, amount=amount, amount_step=step)  # type: ignore[arg-type]
        if side == "buy":
            if unit is AmountUnit.ALL:
                return walk_book(book, "buy", fee, quote_amount=quote_free, amount_step=step)
            assert amount is not None
            spend = quote_free * amount / HUNDRED
            return walk_book(book, "buy", fee, quote_amount=spend, amount_step=step)
        if held <= 0:
            raise ValidationError("trade.errors.nothing_to_sell", asset=market.base)
        quantity = held if unit is AmountUnit.ALL else held * (amount or ZERO) / HUNDRED
        return walk_book(book, "sell", fee, amount=min(quantity, held), amount_step=step)

    @staticmethod
    def _check_minimums(market: MarketInfo, fill: Fill) -> None:
        if market.min_amount is not None and fill.amount < market.min_amount:
            raise ValidationError(
                "trade.errors.below_min_amount", minimum=market.min_amount, unit=market.base
            )
        if market.min_cost is not None and fill.cost < market.min_cost:
            raise ValidationError("trade.errors.below_min_cost", minimum=market.min_cost, unit=market.quote)

    @staticmethod
    def _check_protections(side: str, price: Decimal, request: TradeRequest) -> None:
        if side != "buy":
            return
        if request.stop_loss is not None and request.stop_loss >= price:
            raise ValidationError("trade.errors.sl_above_price", stop=request.stop_loss, price=price)
        if request.take_profit is not None and request.take_profit <= price:
            raise ValidationError("trade.errors.tp_below_price", take=request.take_profit, price=price)

    @staticmethod
    def _limits(profile: TradingProfile) -> RiskLimits:
        """The user's own limits; `check_order` clamps them to the plan's ceilings in the account state."""
        return RiskLimits(
            max_position_pct=profile.max_position_pct,
            max_open_positions=profile.max_open_positions,
            max_daily_loss_pct=profile.max_daily_loss_pct,
        )

    async def _account_state(
        self,
        profile: TradingProfile,
        account: ExchangeAccount,
        market: MarketInfo,
        balances: dict[str, Any],
        book: OrderBook,
    ) -> AccountState:
        prices = await self._prices(account, balances, known={market.base: _mid(book)})  # network first
        equity = _equity(balances, prices, self.config.paper_quote)
        positions = await self.repo.open_positions(account.id)
        held = balances[market.base].free if market.base in balances else ZERO
        return AccountState(
            equity=equity,
            open_positions=len(positions),
            position_value=held * prices.get(market.base, ZERO),
            has_position=any(p.symbol == market.symbol for p in positions),
            realized_today=await self.repo.realized_since(account.id, _start_of_day(self.clock())),
            paused_until=profile.paused_until,
            pause_reason=profile.pause_reason,
            ceilings=await self.risk_ceilings(profile.user_id),
        )

    async def limits_in_force(self, user_id: int, profile: TradingProfile) -> RiskLimits:
        """The user's own risk limits lowered to their plan's ceilings: what orders are checked and sized
        against."""
        return clamp(self._limits(profile), await self.risk_ceilings(user_id))

    async def risk_ceilings(self, user_id: int) -> RiskCeilings:
        """The risk ceilings of the user's plan now (a downgrade clamps at once; none without billing)."""
        if self.entitlements is None:
            return NO_CEILINGS
        return (await self.entitlements.plan(user_id)).limits.risk_ceilings

    async def _prices(
        self, account: ExchangeAccount, balances: dict[str, Any], known: dict[str, Decimal] | None = None
    ) -> dict[str, Decimal]:
        quote = self.config.paper_quote
        prices: dict[str, Decimal] = {quote: Decimal(1), **(known or {})}
        wanted = [a for a, row in balances.items() if a not in prices and (row.free + row.locked) > 0]
        if wanted:
            client = self.market_data.public(self._exchange_of(account))
            tickers = await client.fetch_tickers([f"{a}/{quote}" for a in wanted])
            for asset in wanted:
                ticker: Ticker | None = tickers.get(f"{asset}/{quote}")
                if ticker is not None:
                    prices[asset] = ticker.bid or ticker.last
        return prices

    # ---------------------------------------------------------------------------------- confirmation

    async def request_confirmation(self, user: UserProfile, preview: OrderPreview) -> Confirmation:
        if not preview.risk.allowed:
            raise RiskRefused(preview.risk)
        now = self.clock()
        token = secrets.token_hex(8)
        expires = now + self.config.confirm_ttl
        payload = {
            key: (str(value) if isinstance(value, Decimal) else value)
            for key, value in asdict(preview).items()
            if key != "risk"
        }
        await self.repo.add_pending(
            PendingAction(
                id=token, user_id=user.id, kind="order", payload=payload, created_at=now, expires_at=expires
            )
        )
        return Confirmation(token=token, preview=preview, expires_at=expires)

    async def cancel_confirmation(self, user: UserProfile, token: str) -> bool:
        action = await self.repo.claim_pending(token, user.id, self.clock())
        if action is None:
            return False
        await self.repo.finish_pending(action, "cancelled")
        await self.session.commit()
        return True

    async def confirm(self, user: UserProfile, token: str) -> Execution:
        """Execute a confirmed order once: a stale, foreign or repeated confirmation executes nothing.

        The fill is committed here, before the caller tells the user: money is never reported moved
        before it is. The single-use claim on the confirmation (not the update inbox) is what makes a
        retried update harmless: its second run finds the confirmation used."""
        action = await self.repo.pending(token)
        if action is None or action.user_id != user.id or action.kind != "order":
            raise ConfirmationExpired()
        payload = action.payload
        account = await self.repo.account(int(payload["account_id"]))
        if account is None or account.removed_at is not None:
            raise ConfirmationExpired()
        await self.session.commit()  # no transaction (or SQLite write lock) held across network calls
        client = self.market_data.public(str(payload["exchange"]))
        market = await client.market(str(payload["symbol"]))
        book = await client.fetch_order_book(market.symbol, 50, max_age=0)  # fresh: the fill
        claimed = await self.repo.claim_pending(token, user.id, self.clock())
        if claimed is None:
            raise ConfirmationExpired()
        side = str(payload["side"])
        amount = Decimal(payload["amount"])
        if payload.get("order_type") == "limit":
            if not account.is_paper:
                return await self._execute_live(user, account, market, claimed, payload)
            return await self._place_paper_limit(user, account, market, claimed, payload)
        fill = walk_book(book, side, market.taker_fee, amount=amount, amount_step=market.amount_step)  # type: ignore[arg-type]
        estimate = Decimal(payload["price"])
        moved = abs(fill.average_price - estimate) / estimate * HUNDRED
        if moved > self.config.max_slippage_pct:
            await self.repo.finish_pending(claimed, "price_moved")
            await self.session.flush()
            raise PriceMoved(estimate=estimate, price=fill.average_price, pct=moved.quantize(Decimal("0.01")))
        if not account.is_paper:
            if side == "buy":
                try:
                    await self._require_live_entry(user, account)
                except AppError:
                    await self.repo.finish_pending(claimed, "refused")
                    await self.session.commit()
                    raise
            return await self._execute_live(user, account, market, claimed, payload)
        profile, _ = await self.active_account(user)
        balances = await self.repo.balances(account.id, for_update=True)
        if side == "buy":
            state = await self._account_state(profile, account, market, balances, book)
            decision = check_order(
                self._limits(profile), state, side=side, notional=fill.cost, now=self.clock()
            )
            if not decision.allowed:
                await self.repo.finish_pending(claimed, "refused")
                await self.session.flush()
                raise RiskRefused(decision)
        execution = await self._apply_paper_fill(
            user,
            account,
            market,
            side,
            fill,
            client_order_id=f"cu{token}",
            stop_loss=_d(payload.get("stop_loss")),
            take_profit=_d(payload.get("take_profit")),
        )
        await self.repo.finish_pending(claimed, "filled", order_id=execution.order_id)
        await self._audit_order(
            "order.filled",
            user,
            execution.order_id,
            mode=PAPER,
            symbol=market.symbol,
            side=side,
            amount=str(fill.amount),
            price=str(fill.average_price),
        )
        await self.session.commit()
        return execution

    async def _execute_live(
        self,
        user: UserProfile,
        account: ExchangeAccount,
        market: MarketInfo,
        claimed: PendingAction,
        payload: dict[str, Any],
    ) -> Execution:
        """Send a confirmed order to the exchange (see :class:`LiveOrders`): a market order comes back
        filled; a limit order rests on the exchange and the watcher books it when it ends."""
        from services.trading.live import LiveOrders

        side = str(payload["side"])
        limit_price = _d(payload.get("limit_price"))
        order_type = "limit" if payload.get("order_type") == "limit" else "market"

        async def settle_confirmation(order: Order) -> None:
            await self.repo.finish_pending(claimed, "sending", order_id=order.id)

        if side == "sell":
            try:
                await self.disarm_before_sell(account.id, market.symbol)
            except AppError:
                await self.repo.finish_pending(claimed, "refused")
                await self.session.commit()
                raise

        order, execution = await LiveOrders(self).submit(
            user.id,
            account,
            market,
            side=side,
            order_type=order_type,
            amount=Decimal(payload["amount"]),
            limit_price=limit_price if order_type == "limit" else None,
            client_order_id=f"cu{claimed.id}",
            stop_loss=_d(payload.get("stop_loss")),
            take_profit=_d(payload.get("take_profit")),
            before_send=settle_confirmation,
        )
        if execution is None:  # resting on the exchange (or ended without a fill)
            await self._audit_order(
                "order.placed", user, order.id, mode="live", exchange=account.exchange, status=order.status
            )
            await self.session.commit()
            if order.status != "open":
                raise ValidationError("trade.errors.order_not_filled", status=order.status)
            position = await self.repo.open_position(account.id, market.symbol)
            assert limit_price is not None
            return Execution(
                order_id=order.id,
                mode="live",
                symbol=market.symbol,
                side=side,
                amount=order.amount,
                average_price=limit_price,
                cost=order.amount * limit_price,
                fee=order.amount * limit_price * market.maker_fee,
                quote=market.quote,
                realized_pnl=None,
                position_amount=position.amount if position else ZERO,
                position_entry=position.average_entry if position else ZERO,
                status="open",
                order_type="limit",
            )
        await self._audit_order(
            "order.filled",
            user,
            order.id,
            mode="live",
            exchange=account.exchange,
            symbol=market.symbol,
            side=side,
            amount=str(execution.amount),
            price=str(execution.average_price),
        )
        await self.session.commit()
        position = await self.repo.open_position(account.id, market.symbol)
        if position is not None and (position.stop_loss is not None or position.take_profit is not None):
            # the position's protection, placed on the exchange where it can be (else the watcher keeps it)
            from services.trading.protections import NativeStops

            try:
                protection = await NativeStops(self).sync(position.id)
            except AppError as exc:
                log.warning("protections.sync_failed", position_id=position.id, error=exc.message_key)
            else:
                if protection.code is not None and side == "buy":
                    execution = replace(execution, protection=protection.code)
        return execution

    async def _audit_order(self, event: str, user: UserProfile, order_id: int, **details: str) -> None:
        await self.audit.add(
            event, tenant_id=user.tenant_id, user_id=user.id, details={"order_id": order_id, **details}
        )

    def new_order(
        self,
        user_id: int,
        account: ExchangeAccount,
        symbol: str,
        side: str,
        *,
        order_type: str,
        amount: Decimal,
        client_order_id: str,
        status: str,
        limit_price: Decimal | None = None,
        reason: str = "manual",
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
        fee_asset: str | None = None,
        reserved: Decimal = ZERO,
    ) -> Order:
        """A new order row, nothing filled yet."""
        now = self.clock()
        return Order(
            user_id=user_id,
            account_id=account.id,
            position_id=None,
            exchange=PAPER if account.is_paper else account.exchange,
            symbol=symbol,
            side=side,
            order_type=order_type,
            amount=amount,
            limit_price=limit_price,
            client_order_id=client_order_id,
            exchange_order_id=None,
            status=status,
            filled=ZERO,
            average_price=None,
            cost=ZERO,
            fee=ZERO,
            fee_asset=fee_asset,
            realized_pnl=ZERO,
            reserved=reserved,
            stop_loss=stop_loss,
            take_profit=take_profit,
            reason=reason,
            created_at=now,
            updated_at=now,
        )

    async def _place_paper_limit(
        self,
        user: UserProfile,
        account: ExchangeAccount,
        market: MarketInfo,
        claimed: PendingAction,
        payload: dict[str, Any],
    ) -> Execution:
        """Rest a limit order: reserve its funds now; the watcher fills it when the market crosses it."""
        side = str(payload["side"])
        amount, price = Decimal(payload["amount"]), Decimal(payload["limit_price"])
        fill = limit_fill(amount, price, market.maker_fee)
        await self.repo.balances(account.id, for_update=True)
        if side == "buy":
            row, reserve = await self.repo.balance_row(account.id, market.quote), fill.cost + fill.fee
        else:
            row, reserve = await self.repo.balance_row(account.id, market.base), amount
        if row.free < reserve:
            raise InsufficientBalance(need=reserve, have=row.free, asset=row.asset)
        row.free -= reserve
        row.locked += reserve
        order = await self.repo.add_order(
            self.new_order(
                user.id,
                account,
                market.symbol,
                side,
                order_type="limit",
                amount=amount,
                limit_price=price,
                client_order_id=f"cu{claimed.id}",
                status="open",
                fee_asset=market.quote,
                reserved=reserve,
                stop_loss=_d(payload.get("stop_loss")),
                take_profit=_d(payload.get("take_profit")),
            )
        )
        await self.repo.finish_pending(claimed, "placed", order_id=order.id)
        await self._audit_order(
            "order.placed",
            user,
            order.id,
            mode=PAPER,
            symbol=market.symbol,
            side=side,
            amount=str(amount),
            limit_price=str(price),
        )
        await self.session.commit()
        position = await self.repo.open_position(account.id, market.symbol)
        return Execution(
            order_id=order.id,
            mode=PAPER,
            symbol=market.symbol,
            side=side,
            amount=amount,
            average_price=price,
            cost=fill.cost,
            fee=fill.fee,
            quote=market.quote,
            realized_pnl=None,
            position_amount=position.amount if position else ZERO,
            position_entry=position.average_entry if position else ZERO,
            status="open",
            order_type="limit",
        )

    async def fill_resting_order(self, order: Order, price: Decimal) -> Execution | None:
        """Fill a resting paper limit order at its price with the maker fee (the watcher calls this with the
        order row locked); its reserved funds are released into the trade."""
        if order.status != "open" or order.limit_price is None:
            return None
        account = await self.repo.account(order.account_id)
        if account is None:
            return None
        client = self.market_data.public(self._exchange_of(account))
        market = await client.market(order.symbol)
        await self.repo.balances(account.id, for_update=True)
        held_row = await self.repo.balance_row(
            account.id, market.quote if order.side == "buy" else market.base
        )
        held_row.locked -= order.reserved
        held_row.free += order.reserved
        fill = limit_fill(order.amount, order.limit_price, market.maker_fee)
        return await self._apply_paper_fill(
            order.user_id,
            account,
            market,
            order.side,
            fill,
            client_order_id=order.client_order_id,
            stop_loss=order.stop_loss,
            take_profit=order.take_profit,
            existing=order,
        )

    async def _apply_paper_fill(
        self,
        user: UserProfile | int,
        account: ExchangeAccount,
        market: MarketInfo,
        side: str,
        fill: Fill,
        *,
        client_order_id: str,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
        reason: str = "manual",
        existing: Order | None = None,
    ) -> Execution:
        uid = user if isinstance(user, int) else user.id
        quote_row = await self.repo.balance_row(account.id, market.quote)
        base_row = await self.repo.balance_row(account.id, market.base)
        position = await self.repo.open_position(account.id, market.symbol, for_update=True)
        now = self.clock()
        realized: Decimal | None = None
        if side == "buy":
            need = fill.cost + fill.fee
            if quote_row.free < need:
                raise InsufficientBalance(need=need, have=quote_row.free, asset=market.quote)
            quote_row.free -= need
            base_row.free += fill.amount
            if position is None:
                position = await self.repo.add_position(
                    _new_position(uid, account.id, PAPER, market.symbol, now)
                )
            state = _state(position).after_buy(fill.amount, fill.cost, fill.fee)
            if stop_loss is not None:
                position.stop_loss = stop_loss
            if take_profit is not None:
                position.take_profit = take_profit
        else:
            if base_row.free < fill.amount:
                raise InsufficientBalance(need=fill.amount, have=base_row.free, asset=market.base)
            base_row.free -= fill.amount
            quote_row.free += fill.cost - fill.fee
            if position is None or position.amount <= 0:
                # Holdings without a tracked position (e.g. transferred in): the sale realises nothing.
                state, realized = PositionState(), None
            else:
                sold = min(fill.amount, position.amount)
                state, realized = _state(position).after_sell(
                    sold, fill.cost * sold / fill.amount, fill.fee * sold / fill.amount
                )
        if position is not None:
            _store(position, state, now)
        if existing is not None:
            existing.status, existing.filled, existing.average_price = (
                "closed",
                fill.amount,
                fill.average_price,
            )
            existing.cost, existing.fee, existing.reserved = fill.cost, fill.fee, ZERO
            existing.realized_pnl, existing.updated_at = realized or ZERO, now
            existing.position_id = position.id if position else None
            order = existing
            await self.session.flush()
        else:
            order = await self.repo.add_order(
                Order(
                    user_id=uid,
                    account_id=account.id,
                    position_id=position.id if position else None,
                    exchange=PAPER,
                    symbol=market.symbol,
                    side=side,
                    order_type="market",
                    amount=fill.amount,
                    limit_price=None,
                    client_order_id=client_order_id,
                    exchange_order_id=None,
                    status="closed",
                    filled=fill.amount,
                    average_price=fill.average_price,
                    cost=fill.cost,
                    fee=fill.fee,
                    fee_asset=market.quote,
                    realized_pnl=realized or ZERO,
                    reason=reason,
                    created_at=now,
                    updated_at=now,
                )
            )
        if self.on_fill is not None:
            self.on_fill(PAPER, side, order.order_type)
        return Execution(
            order_id=order.id,
            mode=PAPER,
            symbol=market.symbol,
            side=side,
            amount=fill.amount,
            average_price=fill.average_price,
            cost=fill.cost,
            fee=fill.fee,
            quote=market.quote,
            realized_pnl=realized,
            position_amount=state.amount,
            position_entry=state.average_entry,
            order_type=order.order_type,
        )

    # ---------------------------------------------------------------------------------- portfolio

    async def portfolio(self, user: UserProfile) -> Portfolio:
        _, account = await self.active_account(user)
        balances = await self.repo.balances(account.id)
        prices = await self._prices(account, balances)
        quote = self.config.paper_quote
        balance_views = sorted(
            (
                BalanceView(asset, row.free, row.locked, (row.free + row.locked) * prices.get(asset, ZERO))
                for asset, row in balances.items()
                if row.free + row.locked > 0
            ),
            key=lambda b: (-b.value, b.asset),
        )
        positions = []
        for position in await self.repo.open_positions(account.id):
            base = position.symbol.split("/")[0]
            price = prices.get(base, ZERO)
            state = _state(position)
            unrealized = state.unrealized(price) if price else ZERO
            positions.append(
                PositionView(
                    symbol=position.symbol,
                    base=base,
                    amount=position.amount,
                    average_entry=state.average_entry,
                    price=price,
                    value=position.amount * price,
                    unrealized=unrealized,
                    unrealized_pct=(unrealized / position.cost_basis * HUNDRED)
                    if position.cost_basis
                    else ZERO,
                    realized=position.realized_pnl,
                    fees=position.fees,
                    stop_loss=position.stop_loss,
                    take_profit=position.take_profit,
                )
            )
        return Portfolio(
            mode=PAPER if account.is_paper else "live",
            exchange=self._exchange_of(account),
            quote=quote,
            balances=balance_views,
            positions=positions,
            equity=_equity(balances, prices, quote),
            realized_today=await self.repo.realized_since(account.id, _start_of_day(self.clock())),
            realized_total=await self.repo.realized_total(account.id),
            unrealized=sum((p.unrealized for p in positions), ZERO),
            starting_balance=self.config.paper_starting_balance,
        )

    async def position(self, user: UserProfile, symbol: str) -> Position:
        _, account = await self.active_account(user)
        position = await self.repo.open_position(account.id, symbol)
        if position is None:
            raise NotFoundError("trade.errors.no_position", symbol=symbol)
        return position


def _new_position(user_id: int, account_id: int, exchange: str, symbol: str, now: datetime) -> Position:
    """An empty open position, filled by `after_buy`."""
    return Position(
        user_id=user_id,
        account_id=account_id,
        exchange=exchange,
        symbol=symbol,
        status="open",
        amount=ZERO,
        average_entry=ZERO,
        cost_basis=ZERO,
        fees=ZERO,
        realized_pnl=ZERO,
        opened_at=now,
    )


def _is_dust(amount: Decimal, market: MarketInfo) -> bool:
    if amount <= 0:
        return False
    step = market.amount_step or ZERO
    return amount < step or (market.min_amount is not None and amount < market.min_amount)


def _state(position: Position) -> PositionState:
    return PositionState(
        amount=position.amount,
        cost_basis=position.cost_basis,
        fees=position.fees,
        realized_pnl=position.realized_pnl,
    )


def _store(position: Position, state: PositionState, now: datetime) -> None:
    position.amount = state.amount
    position.cost_basis = state.cost_basis
    position.fees = state.fees
    position.realized_pnl = state.realized_pnl
    position.average_entry = state.average_entry
    if not state.is_open:
        position.status = "closed"
        position.closed_at = now


def _mid(book: OrderBook) -> Decimal:
    if book.bids:
        return book.bids[0][0]
    return book.asks[0][0] if book.asks else ZERO


def _equity(balances: dict[str, Any], prices: dict[str, Decimal], quote: str) -> Decimal:
    total = ZERO
    for asset, row in balances.items():
        amount = row.free + row.locked
        total += amount if asset == quote else amount * prices.get(asset, ZERO)
    return total


def _start_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


__all__ = [
    "ConfirmationExpired",
    "Execution",
    "MarketData",
    "OrderPreview",
    "Portfolio",
    "PriceMoved",
    "RiskRefused",
    "TradingConfig",
    "TradingService",
    "round_step",
]
