"""Accounts, orders and trades of one emulated exchange, matched against a shared :class:`Market`.

Market orders fill at once by walking the book (taker fee); limit orders that do not cross rest, lock their
funds, and fill at their limit price (maker fee) once the market crosses them: what is left of them at once,
or part by part through :meth:`Ledger.fill_part` (the counterparties an exchange matches a resting order
with, a few at a time); a partly filled order stays open with its fills, and a cancel ends it with them.
Stop orders (stop-loss, take-profit) wait with their funds locked until the last price crosses their trigger
price (``down``: at or below it, ``up``: at or above it), then become market or limit orders and fill as those
do. Amounts are Decimal.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from sandbox.exchanges.market import Level, Market, SymbolSpec, is_multiple

FEE_QUANTUM = Decimal("1e-8")
DIRECTIONS = ("down", "up")


class ErrorKind(StrEnum):
    UNKNOWN_SYMBOL = "unknown_symbol"
    BAD_ARGUMENT = "bad_argument"
    AMOUNT_STEP = "amount_step"
    PRICE_TICK = "price_tick"
    MIN_AMOUNT = "min_amount"
    MIN_NOTIONAL = "min_notional"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    DUPLICATE_CLIENT_ID = "duplicate_client_id"
    UNKNOWN_ORDER = "unknown_order"
    ORDER_NOT_OPEN = "order_not_open"
    NO_LIQUIDITY = "no_liquidity"
    POST_ONLY_WOULD_TAKE = "post_only_would_take"
    TRADING_DISABLED = "trading_disabled"
    WOULD_TRIGGER = "would_trigger"  # a stop order whose trigger is already crossed (where refused)


class LedgerError(Exception):
    def __init__(self, kind: ErrorKind, detail: str = "") -> None:
        super().__init__(f"{kind.value}: {detail}" if detail else kind.value)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class FeeSchedule:
    maker: Decimal = Decimal("0.001")
    taker: Decimal = Decimal("0.001")
    # "received": the fee is taken from what the order receives (Binance);
    # "quote": the fee is always in the quote currency, added to a buy's cost (Kraken, KuCoin)
    mode: str = "received"


@dataclass
class Account:
    api_key: str
    secret: str
    passphrase: str | None = None
    can_trade: bool = True
    can_withdraw: bool = False
    balances: dict[str, Decimal] = field(default_factory=dict)  # totals
    locked: dict[str, Decimal] = field(default_factory=dict)
    uid: int = 0
    created_ms: int = 0

    def total(self, asset: str) -> Decimal:
        return self.balances.get(asset, Decimal(0))

    def held(self, asset: str) -> Decimal:
        return self.locked.get(asset, Decimal(0))

    def free(self, asset: str) -> Decimal:
        return self.total(asset) - self.held(asset)

    def credit(self, asset: str, amount: Decimal) -> None:
        self.balances[asset] = self.total(asset) + amount

    def lock(self, asset: str, amount: Decimal) -> None:
        self.locked[asset] = self.held(asset) + amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        self.locked[asset] = self.held(asset) - amount

    def assets(self) -> list[str]:
        return sorted(set(self.balances) | set(self.locked))


@dataclass
class Fill:
    id: str
    seq: int
    order_id: str
    symbol: str
    side: str
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_asset: str
    maker: bool
    ts_ms: int

    @property
    def cost(self) -> Decimal:
        return self.price * self.amount


@dataclass
class Order:
    id: str
    seq: int
    api_key: str
    symbol: str
    side: str  # buy | sell
    type: str  # market | limit
    amount: Decimal | None
    price: Decimal | None
    quote_amount: Decimal | None = None
    client_id: str | None = None
    user_ref: int | None = None
    time_in_force: str = "GTC"
    post_only: bool = False
    status: str = "open"  # open | filled | canceled
    filled: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    fee_asset: str = ""
    created_ms: int = 0
    updated_ms: int = 0
    fills: list[Fill] = field(default_factory=list)
    locked_asset: str = ""
    locked_amount: Decimal = Decimal(0)
    # stop orders: the trigger, its direction ("down": last <= trigger, "up": last >= trigger), the
    # exchange's own name of the order type, and whether (when) it has triggered
    trigger_price: Decimal | None = None
    trigger_dir: str = ""
    stop_kind: str = ""
    triggered: bool = False
    triggered_ms: int = 0

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def is_stop(self) -> bool:
        return self.trigger_price is not None

    @property
    def waiting(self) -> bool:
        """A stop order that has not triggered yet."""
        return self.is_stop and not self.triggered and self.is_open

    @property
    def average(self) -> Decimal | None:
        return self.cost / self.filled if self.filled else None

    @property
    def remaining(self) -> Decimal:
        return (self.amount - self.filled) if self.amount is not None else Decimal(0)


def _same(spec: SymbolSpec) -> SymbolSpec:
    return spec


def _fee(value: Decimal, rate: Decimal) -> Decimal:
    return (value * rate).quantize(FEE_QUANTUM, ROUND_HALF_UP)


class Ledger:
    """The book-keeping of one exchange: accounts, orders, trades."""

    def __init__(
        self,
        market: Market,
        fees: FeeSchedule,
        order_id: Callable[[int], str],
        trade_id: Callable[[int], str],
        client_id_scope: str = "open",  # "open": unique among open orders; "all": never reusable
        adapt: Callable[[SymbolSpec], SymbolSpec] | None = None,
        symbols: list[str] | None = None,
    ) -> None:
        self.market = market
        self.fees = fees
        self._order_id = order_id
        self._trade_id = trade_id
        self.client_id_scope = client_id_scope
        self.symbols = symbols or list(market.specs)
        self._specs = {s: (adapt or _same)(market.spec(s)) for s in self.symbols}
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, Order] = {}
        self._order_seq = itertools.count(1)
        self._trade_seq = itertools.count(1)
        self._uid_seq = itertools.count(10_000_001)
        market.add_listener(self._on_price)

    # -- accounts --------------------------------------------------------------------------------------------
    def add_account(
        self,
        api_key: str,
        secret: str,
        passphrase: str | None = None,
        balances: dict[str, Decimal | str | int | float] | None = None,
        can_trade: bool = True,
        can_withdraw: bool = False,
    ) -> Account:
        account = Account(
            api_key,
            secret,
            passphrase,
            can_trade,
            can_withdraw,
            {k: Decimal(str(v)) for k, v in (balances or {}).items()},
            {},
            next(self._uid_seq),
            self.market.now_ms(),
        )
        self.accounts[api_key] = account
        return account

    def account(self, api_key: str) -> Account | None:
        return self.accounts.get(api_key)

    # -- queries ---------------------------------------------------------------------------------------------
    def spec(self, symbol: str) -> SymbolSpec:
        """The market's rules as this exchange applies them (step, minimums may differ per exchange)."""
        if symbol not in self._specs:
            raise LedgerError(ErrorKind.UNKNOWN_SYMBOL, symbol)
        return self._specs[symbol]

    def get_order(self, account: Account, order_id: str | None = None, client_id: str | None = None) -> Order:
        if order_id is not None:
            order = self.orders.get(str(order_id))
            if order is None or order.api_key != account.api_key:
                raise LedgerError(ErrorKind.UNKNOWN_ORDER, str(order_id))
            if client_id is not None and order.client_id != client_id:
                raise LedgerError(ErrorKind.UNKNOWN_ORDER, str(client_id))
            return order
        if client_id is not None:
            matches = [
                o for o in self.orders.values() if o.api_key == account.api_key and o.client_id == client_id
            ]
            if not matches:
                raise LedgerError(ErrorKind.UNKNOWN_ORDER, client_id)
            open_matches = [o for o in matches if o.is_open]
            return open_matches[-1] if open_matches else matches[-1]
        raise LedgerError(ErrorKind.BAD_ARGUMENT, "order id or client order id required")

    def list_orders(
        self, account: Account, symbol: str | None = None, status: str | None = None
    ) -> list[Order]:
        result = [o for o in self.orders.values() if o.api_key == account.api_key]
        if symbol is not None:
            result = [o for o in result if o.symbol == symbol]
        if status == "open":
            result = [o for o in result if o.is_open]
        elif status == "closed":
            result = [o for o in result if not o.is_open]
        return sorted(result, key=lambda o: o.seq)

    def list_fills(self, account: Account, symbol: str | None = None) -> list[Fill]:
        fills = [f for o in self.list_orders(account, symbol) for f in o.fills]
        return sorted(fills, key=lambda f: f.seq)

    # -- orders ----------------------------------------------------------------------------------------------
    def create_order(
        self,
        account: Account,
        symbol: str,
        side: str,
        type_: str,
        amount: Decimal | None = None,
        price: Decimal | None = None,
        quote_amount: Decimal | None = None,
        client_id: str | None = None,
        user_ref: int | None = None,
        time_in_force: str = "GTC",
        post_only: bool = False,
        validate_only: bool = False,
    ) -> Order:
        self.market.sync()
        spec = self.spec(symbol)
        if not account.can_trade:
            raise LedgerError(ErrorKind.TRADING_DISABLED)
        if side not in ("buy", "sell") or type_ not in ("market", "limit"):
            raise LedgerError(ErrorKind.BAD_ARGUMENT, f"{side} {type_}")
        if type_ == "limit" and (price is None or amount is None):
            raise LedgerError(ErrorKind.BAD_ARGUMENT, "limit orders need amount and price")
        if type_ == "market" and amount is None and quote_amount is None:
            raise LedgerError(ErrorKind.BAD_ARGUMENT, "market orders need an amount")
        self._check_filters(spec, symbol, type_, side, amount, price, quote_amount)
        if client_id is not None and self._client_id_taken(account, client_id):
            raise LedgerError(ErrorKind.DUPLICATE_CLIENT_ID, client_id)
        now = self.market.now_ms()
        seq = next(self._order_seq)
        order = Order(
            self._order_id(seq),
            seq,
            account.api_key,
            symbol,
            side,
            type_,
            amount,
            price,
            quote_amount,
            client_id,
            user_ref,
            time_in_force,
            post_only,
            created_ms=now,
            updated_ms=now,
        )
        if type_ == "market":
            fills = self._walk(symbol, side, amount, quote_amount, None)
            if fills is None:
                raise LedgerError(ErrorKind.NO_LIQUIDITY)
            self._check_taker_funds(account, spec, side, fills)
            if validate_only:
                return order
            if order.amount is None:
                order.amount = sum((lv.amount for lv in fills), Decimal(0))
            self._register(order)
            self._execute(account, order, fills, maker=False)
            return order
        assert price is not None and amount is not None
        crosses = (side == "buy" and price >= self.market.best_ask(symbol)) or (
            side == "sell" and price <= self.market.best_bid(symbol)
        )
        if crosses and post_only:
            raise LedgerError(ErrorKind.POST_ONLY_WOULD_TAKE)
        fills = self._walk(symbol, side, amount, None, price) if crosses else None
        if fills is not None:
            self._check_taker_funds(account, spec, side, fills)
            if validate_only:
                return order
            self._register(order)
            self._execute(account, order, fills, maker=False)
            return order
        if time_in_force in ("IOC", "FOK"):
            if validate_only:
                return order
            self._register(order)
            order.status = "canceled"
            return order
        lock_asset, lock_amount = self._lock_for(spec, side, amount, price)
        if account.free(lock_asset) < lock_amount:
            raise LedgerError(ErrorKind.INSUFFICIENT_FUNDS, lock_asset)
        if validate_only:
            return order
        account.lock(lock_asset, lock_amount)
        order.locked_asset, order.locked_amount = lock_asset, lock_amount
        self._register(order)
        return order

    def cancel_order(
        self, account: Account, order_id: str | None = None, client_id: str | None = None
    ) -> Order:
        order = self.get_order(account, order_id, client_id)
        if not order.is_open:
            raise LedgerError(ErrorKind.ORDER_NOT_OPEN, order.id)
        self._release(account, order)
        order.status = "canceled"
        order.updated_ms = self.market.now_ms()
        return order

    def fill_part(self, order_id: str, amount: Decimal | str | int | float) -> Order:
        """Fill ``amount`` of a resting limit order at its price (maker fee), as a counterparty taking part of
        it would; the order stays open until nothing is left of it. ``amount`` must be a multiple of the
        symbol's step and at most what is left."""
        order = self.orders.get(str(order_id))
        if order is None:
            raise LedgerError(ErrorKind.UNKNOWN_ORDER, str(order_id))
        if not order.is_open or order.waiting or order.type != "limit" or order.price is None:
            raise LedgerError(ErrorKind.ORDER_NOT_OPEN, order.id)
        part = Decimal(str(amount))
        if part <= 0 or part > order.remaining:
            raise LedgerError(ErrorKind.BAD_ARGUMENT, f"{part} of {order.remaining} left")
        if not is_multiple(part, self.spec(order.symbol).step):
            raise LedgerError(ErrorKind.AMOUNT_STEP, str(part))
        self._fill_resting(self.accounts[order.api_key], order, part)
        return order

    def cancel_all(self, account: Account, symbol: str | None = None) -> list[Order]:
        return [self.cancel_order(account, o.id) for o in self.list_orders(account, symbol, "open")]

    def create_stop_order(
        self,
        account: Account,
        symbol: str,
        side: str,
        type_: str,
        amount: Decimal,
        trigger_price: Decimal,
        trigger_dir: str,
        price: Decimal | None = None,
        client_id: str | None = None,
        stop_kind: str = "",
        time_in_force: str = "GTC",
        reject_immediate: bool = False,
        validate_only: bool = False,
    ) -> Order:
        """A stop order: it waits (its funds locked) until the last price crosses ``trigger_price`` in
        ``trigger_dir``, then becomes a ``type_`` (market or limit at ``price``) order. One whose trigger is
        already crossed is refused with ``reject_immediate`` (Binance), else it triggers at once."""
        self.market.sync()
        spec = self.spec(symbol)
        if not account.can_trade:
            raise LedgerError(ErrorKind.TRADING_DISABLED)
        if side not in ("buy", "sell") or type_ not in ("market", "limit") or trigger_dir not in DIRECTIONS:
            raise LedgerError(ErrorKind.BAD_ARGUMENT, f"{side} {type_} {trigger_dir}")
        if type_ == "limit" and price is None:
            raise LedgerError(ErrorKind.BAD_ARGUMENT, "stop-limit orders need a price")
        if trigger_price <= 0:
            raise LedgerError(ErrorKind.BAD_ARGUMENT, "trigger price must be positive")
        if not is_multiple(trigger_price, spec.tick):
            raise LedgerError(ErrorKind.PRICE_TICK, str(trigger_price))
        reference = price if price is not None else trigger_price
        self._check_filters(spec, symbol, type_, side, amount, reference, None)
        if client_id is not None and self._client_id_taken(account, client_id):
            raise LedgerError(ErrorKind.DUPLICATE_CLIENT_ID, client_id)
        last = self.market.price(symbol)
        crossed = last <= trigger_price if trigger_dir == "down" else last >= trigger_price
        if crossed and reject_immediate:
            raise LedgerError(ErrorKind.WOULD_TRIGGER, str(trigger_price))
        lock_asset, lock_amount = self._lock_for(spec, side, amount, reference)
        if account.free(lock_asset) < lock_amount:
            raise LedgerError(ErrorKind.INSUFFICIENT_FUNDS, lock_asset)
        now = self.market.now_ms()
        seq = next(self._order_seq)
        order = Order(
            self._order_id(seq),
            seq,
            account.api_key,
            symbol,
            side,
            type_,
            amount,
            price,
            None,
            client_id,
            None,
            time_in_force,
            False,
            created_ms=now,
            updated_ms=now,
            trigger_price=trigger_price,
            trigger_dir=trigger_dir,
            stop_kind=stop_kind,
        )
        if validate_only:
            return order
        account.lock(lock_asset, lock_amount)
        order.locked_asset, order.locked_amount = lock_asset, lock_amount
        self._register(order)
        if crossed:
            self._trigger(account, order)
        return order

    def _trigger(self, account: Account, order: Order) -> None:
        """A stop order's trigger was crossed: it becomes a market or limit order now."""
        now = self.market.now_ms()
        order.triggered, order.triggered_ms, order.updated_ms = True, now, now
        self._release(account, order)
        spec = self.spec(order.symbol)
        assert order.amount is not None
        if order.type == "market":
            fills = self.market.walk_book(order.symbol, order.side, order.amount)
            try:
                if fills is None:
                    raise LedgerError(ErrorKind.NO_LIQUIDITY)
                self._check_taker_funds(account, spec, order.side, fills)
            except LedgerError:
                order.status = "canceled"  # the exchange expires a triggered order it cannot fill
                return
            self._execute(account, order, fills, maker=False)
            return
        assert order.price is not None
        crosses = (order.side == "buy" and order.price >= self.market.best_ask(order.symbol)) or (
            order.side == "sell" and order.price <= self.market.best_bid(order.symbol)
        )
        taken = None
        if crosses:
            taken = self.market.walk_book(order.symbol, order.side, order.amount, order.price)
        if taken is not None:
            try:
                self._check_taker_funds(account, spec, order.side, taken)
            except LedgerError:
                order.status = "canceled"
                return
            self._execute(account, order, taken, maker=False)
            return
        lock_asset, lock_amount = self._lock_for(spec, order.side, order.amount, order.price)
        if account.free(lock_asset) < lock_amount:
            order.status = "canceled"
            return
        account.lock(lock_asset, lock_amount)
        order.locked_asset, order.locked_amount = lock_asset, lock_amount

    # -- internals -------------------------------------------------------------------------------------------
    def _check_filters(
        self,
        spec: SymbolSpec,
        symbol: str,
        type_: str,
        side: str,
        amount: Decimal | None,
        price: Decimal | None,
        quote_amount: Decimal | None,
    ) -> None:
        if amount is not None:
            if amount <= 0:
                raise LedgerError(ErrorKind.BAD_ARGUMENT, "amount must be positive")
            if not is_multiple(amount, spec.step):
                raise LedgerError(ErrorKind.AMOUNT_STEP, str(amount))
            if amount < spec.min_amount:
                raise LedgerError(ErrorKind.MIN_AMOUNT, str(amount))
        if price is not None:
            if price <= 0:
                raise LedgerError(ErrorKind.BAD_ARGUMENT, "price must be positive")
            if not is_multiple(price, spec.tick):
                raise LedgerError(ErrorKind.PRICE_TICK, str(price))
        if quote_amount is not None and quote_amount <= 0:
            raise LedgerError(ErrorKind.BAD_ARGUMENT, "quote amount must be positive")
        reference = price if price is not None else self.market.price(symbol)
        notional = quote_amount if amount is None else amount * reference
        if notional is not None and notional < spec.min_notional:
            raise LedgerError(ErrorKind.MIN_NOTIONAL, str(notional))

    def _client_id_taken(self, account: Account, client_id: str) -> bool:
        for order in self.orders.values():
            same = order.api_key == account.api_key and order.client_id == client_id
            if same and (self.client_id_scope == "all" or order.is_open):
                return True
        return False

    def _walk(
        self,
        symbol: str,
        side: str,
        amount: Decimal | None,
        quote_amount: Decimal | None,
        limit: Decimal | None,
    ) -> list[Level] | None:
        if amount is not None:
            return self.market.walk_book(symbol, side, amount, limit)
        assert quote_amount is not None
        fills = self.market.walk_book_quote(symbol, side, quote_amount)
        return fills if fills else None

    def _lock_for(self, spec: SymbolSpec, side: str, amount: Decimal, price: Decimal) -> tuple[str, Decimal]:
        if side == "sell":
            return spec.base, amount
        cost = amount * price
        if self.fees.mode == "quote":
            cost += _fee(cost, max(self.fees.maker, self.fees.taker))
        return spec.quote, cost

    def _check_taker_funds(self, account: Account, spec: SymbolSpec, side: str, fills: list[Level]) -> None:
        if side == "sell":
            need = sum((lv.amount for lv in fills), Decimal(0))
            if account.free(spec.base) < need:
                raise LedgerError(ErrorKind.INSUFFICIENT_FUNDS, spec.base)
            return
        cost = sum((lv.price * lv.amount for lv in fills), Decimal(0))
        if self.fees.mode == "quote":
            cost += sum((_fee(lv.price * lv.amount, self.fees.taker) for lv in fills), Decimal(0))
        if account.free(spec.quote) < cost:
            raise LedgerError(ErrorKind.INSUFFICIENT_FUNDS, spec.quote)

    def _register(self, order: Order) -> None:
        self.orders[order.id] = order

    def _release(self, account: Account, order: Order) -> None:
        if order.locked_amount:
            account.unlock(order.locked_asset, order.locked_amount)
            order.locked_amount = Decimal(0)

    def _fill_resting(self, account: Account, order: Order, part: Decimal) -> None:
        """Fill ``part`` of a resting limit order at its price, releasing the funds locked for that part."""
        assert order.price is not None
        if part >= order.remaining:
            self._release(account, order)
        else:
            _, share = self._lock_for(self.spec(order.symbol), order.side, part, order.price)
            share = min(share, order.locked_amount)
            account.unlock(order.locked_asset, share)
            order.locked_amount -= share
        self._execute(
            account, order, [Level(order.price, part)], maker=True, complete=part >= order.remaining
        )

    def _execute(
        self, account: Account, order: Order, levels: list[Level], maker: bool, complete: bool = True
    ) -> None:
        spec = self.market.spec(order.symbol)
        rate = self.fees.maker if maker else self.fees.taker
        now = self.market.now_ms()
        for level in levels:
            cost = level.price * level.amount
            if self.fees.mode == "received":
                fee_asset = spec.base if order.side == "buy" else spec.quote
                fee = _fee(level.amount if order.side == "buy" else cost, rate)
            else:
                fee_asset, fee = spec.quote, _fee(cost, rate)
            if order.side == "buy":
                account.credit(spec.quote, -cost)
                account.credit(spec.base, level.amount)
            else:
                account.credit(spec.base, -level.amount)
                account.credit(spec.quote, cost)
            account.credit(fee_asset, -fee)
            seq = next(self._trade_seq)
            order.fills.append(
                Fill(
                    self._trade_id(seq),
                    seq,
                    order.id,
                    order.symbol,
                    order.side,
                    level.price,
                    level.amount,
                    fee,
                    fee_asset,
                    maker,
                    now,
                )
            )
            order.filled += level.amount
            order.cost += cost
            order.fee += fee
            order.fee_asset = fee_asset
        if complete:
            order.status = "filled"
        order.updated_ms = now

    def _on_price(self, symbol: str, low: Decimal, high: Decimal, last: Decimal) -> None:
        if symbol not in self.symbols:
            return
        for order in [o for o in self.orders.values() if o.waiting and o.symbol == symbol]:
            assert order.trigger_price is not None
            trigger = order.trigger_price
            if (low <= trigger) if order.trigger_dir == "down" else (high >= trigger):
                self._trigger(self.accounts[order.api_key], order)
        half = self.market.half_spread(symbol)
        for order in [o for o in self.orders.values() if o.is_open and o.symbol == symbol and not o.waiting]:
            assert order.price is not None and order.amount is not None
            crossed = (order.side == "buy" and low + half <= order.price) or (
                order.side == "sell" and high - half >= order.price
            )
            if not crossed:
                continue
            self._fill_resting(self.accounts[order.api_key], order, order.remaining)
