"""What the exchange layer hands to the rest of the product: plain, exact (Decimal) values."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, Protocol

Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit"]
OrderStatus = Literal["open", "closed", "canceled", "rejected", "expired"]
EXCHANGES = ("binance", "kraken", "kucoin")
EXCHANGE_NAMES = {"binance": "Binance", "kraken": "Kraken", "kucoin": "KuCoin"}


def exchange_name(exchange_id: str | None) -> str:
    """How people write the exchange's name."""
    return EXCHANGE_NAMES.get(exchange_id or "", (exchange_id or "").capitalize())


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    passphrase: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return "Credentials(***)"


@dataclass(frozen=True, slots=True)
class MarketInfo:
    symbol: str  # unified, e.g. "BTC/USDT"
    base: str
    quote: str
    amount_step: Decimal | None  # smallest amount increment (None: not given by the exchange)
    price_step: Decimal | None
    min_amount: Decimal | None
    min_cost: Decimal | None  # minimum notional in quote
    taker_fee: Decimal
    maker_fee: Decimal


@dataclass(frozen=True, slots=True)
class Ticker:
    symbol: str
    last: Decimal
    bid: Decimal | None
    ask: Decimal | None
    high: Decimal | None
    low: Decimal | None
    base_volume: Decimal | None
    quote_volume: Decimal | None
    change_pct: Decimal | None  # 24h
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class OrderBook:
    symbol: str
    bids: tuple[tuple[Decimal, Decimal], ...]  # (price, amount), best first
    asks: tuple[tuple[Decimal, Decimal], ...]
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class Candle:
    timestamp_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True, slots=True)
class Balance:
    asset: str
    free: Decimal
    used: Decimal
    total: Decimal


@dataclass(frozen=True, slots=True)
class OrderResult:
    exchange_order_id: str
    client_order_id: str | None
    symbol: str
    side: Side
    order_type: OrderType
    status: OrderStatus
    amount: Decimal
    filled: Decimal
    price: Decimal | None  # limit price
    average_price: Decimal | None
    cost: Decimal  # quote spent or received (filled part)
    fee: Decimal
    fee_asset: str | None
    trigger_price: Decimal | None = None  # a stop order's trigger


StopKind = Literal["sl", "tp"]


@dataclass(frozen=True, slots=True)
class StopSupport:
    """Which protective orders an exchange takes natively on spot (a sell that waits for its trigger price,
    its base asset reserved meanwhile); ``oco``: a stop-loss and a take-profit that cancel each other."""

    stop_loss: bool = False
    take_profit: bool = False
    oco: bool = False

    def supports(self, kind: StopKind) -> bool:
        return self.stop_loss if kind == "sl" else self.take_profit


class ExchangeClient(Protocol):
    """One exchange, public data or one account's private calls, behind a circuit breaker."""

    exchange_id: str

    async def load_markets(self, reload: bool = False) -> dict[str, MarketInfo]: ...
    async def market(self, symbol: str) -> MarketInfo: ...
    async def fetch_ticker(self, symbol: str) -> Ticker: ...
    async def fetch_tickers(self, symbols: list[str] | None = None) -> dict[str, Ticker]: ...
    async def fetch_order_book(
        self, symbol: str, limit: int = 50, *, max_age: float | None = None
    ) -> OrderBook: ...
    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since_ms: int | None = None, limit: int = 500
    ) -> list[Candle]: ...
    async def fetch_balance(self) -> dict[str, Balance]: ...
    async def place_order(
        self,
        symbol: str,
        side: Side,
        order_type: OrderType,
        amount: Decimal,
        price: Decimal | None,
        client_order_id: str,
    ) -> OrderResult: ...
    async def find_order(self, symbol: str, client_order_id: str) -> OrderResult | None: ...
    async def fetch_order(self, symbol: str, exchange_order_id: str) -> OrderResult: ...
    async def cancel_order(self, symbol: str, exchange_order_id: str) -> OrderResult | None: ...
    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderResult]: ...
    def stop_support(self) -> StopSupport: ...
    async def place_stop(
        self, symbol: str, kind: StopKind, amount: Decimal, trigger_price: Decimal, client_order_id: str
    ) -> OrderResult: ...
    async def find_stop(self, symbol: str, client_order_id: str) -> OrderResult | None: ...
    async def cancel_stop(
        self, symbol: str, exchange_order_id: str | None, client_order_id: str
    ) -> OrderResult | None: ...
    async def withdrawal_enabled(self) -> bool | None: ...
    def amount_to_precision(self, symbol: str, amount: Decimal) -> Decimal: ...
    def price_to_precision(self, symbol: str, price: Decimal) -> Decimal: ...
    async def close(self) -> None: ...
