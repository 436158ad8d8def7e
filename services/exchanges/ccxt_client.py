"""``ExchangeClient`` over ``ccxt.async_support`` for Binance, Kraken and KuCoin spot.

Every network call goes through the exchange's circuit breaker; reads are also retried (temporary errors
only). Order creation is sent exactly ONCE: after a timeout / 5xx / dropped connection the order is looked up
by its client order id, never resent (Binance and Kraken only refuse a duplicate client id while the first
order is open, so a resend could buy twice)."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Callable, Mapping
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from types import TracebackType
from typing import Any, TypeVar, cast

import aiohttp
import ccxt.async_support as ccxt
from ccxt.base.decimal_to_precision import DECIMAL_PLACES, TICK_SIZE

from services.exchanges.breaker import CircuitBreaker
from services.exchanges.cache import SingleFlightCache
from services.exchanges.errors import (
    DuplicateOrderError,
    ExchangeAuthError,
    ExchangeError,
    ExchangeRateLimited,
    ExchangeTemporaryError,
    ExchangeUnavailable,
    InvalidOrderError,
    OrderBelowMinimum,
    OrderNotFoundError,
    OrderNotPlaced,
    OrderOutcomeUnknown,
    UnknownSymbolError,
    map_ccxt_error,
)
from services.exchanges.retry import Sleep, backoff_delay, retry
from services.exchanges.symbols import normalize_symbol, suggest_symbols
from services.exchanges.types import (
    EXCHANGES,
    Balance,
    Candle,
    Credentials,
    MarketInfo,
    OrderBook,
    OrderResult,
    OrderStatus,
    OrderType,
    Side,
    StopKind,
    StopSupport,
    Ticker,
)
from services.exchanges.urls import rebase_urls

log = logging.getLogger(__name__)

T = TypeVar("T")

# what each exchange's ccxt client needs: spot only, no probing of account modes we do not use
CCXT_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {
        "defaultType": "spot",
        "fetchMarkets": {"types": ["spot"]},
        "fetchMargins": False,
        "warnOnFetchOpenOrdersWithoutSymbol": False,
    },
    "kraken": {},
    "kucoin": {"fetchMarkets": {"types": ["spot"]}, "hf": False, "uta": False},
}
# order book depths the public endpoints accept (None: any up to the cap)
BOOK_DEPTHS: dict[str, tuple[int, ...] | None] = {
    "binance": (5, 10, 20, 50, 100, 500, 1000, 5000),
    "kraken": None,
    "kucoin": (20, 100),
}
BOOK_CAP = {"binance": 5000, "kraken": 500, "kucoin": 100}
# Native protective orders on spot, as we send them (a market sell with ccxt's stopLossPrice/takeProfitPrice):
# Binance STOP_LOSS / TAKE_PROFIT, Kraken stop-loss / take-profit, KuCoin stop orders (stop=loss / entry).
# None of them is sent as an OCO pair by this product (Binance has OCO lists; not used).
NATIVE_STOPS: dict[str, StopSupport] = {
    "binance": StopSupport(stop_loss=True, take_profit=True),
    "kraken": StopSupport(stop_loss=True, take_profit=True),
    "kucoin": StopSupport(stop_loss=True, take_profit=True),
}
STOP_PARAM: dict[str, str] = {"sl": "stopLossPrice", "tp": "takeProfitPrice"}
# the exact (string) quote amount of an order in each exchange's payload
EXACT_COST_FIELD = {"binance": "cummulativeQuoteQty", "kraken": "cost", "kucoin": "dealFunds"}
_STATUSES: frozenset[str] = frozenset({"open", "closed", "canceled", "rejected", "expired"})
_ZERO = Decimal(0)


def to_decimal(value: Any) -> Decimal | None:
    """ccxt number (float, int, str) -> Decimal via ``str`` (never the binary float); None/''/NaN -> None."""
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def tidy(value: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation (``Decimal('5.000')`` -> ``5``)."""
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal.as_tuple().exponent > 0 else normal  # type: ignore[operator]


class CcxtExchangeClient:
    """One exchange: public data (no credentials) or one account's private calls (with credentials).

    ``markets_source``: a client of the same exchange whose markets this one reuses (no request of its own);
    ``session``: a shared aiohttp session (then ``close`` does not close it and costs no wait)."""

    exchange_id: str

    def __init__(
        self,
        exchange_id: str,
        *,
        api_url: str | None = None,
        credentials: Credentials | None = None,
        timeout_ms: int = 10_000,
        breaker: CircuitBreaker,
        markets_source: CcxtExchangeClient | None = None,
        session: aiohttp.ClientSession | None = None,
        retry_attempts: int = 3,
        retry_base_delay: float = 0.2,
        retry_max_delay: float = 2.0,
        lookup_attempts: int = 4,
        lookup_base_delay: float = 0.25,
        sleep: Sleep = asyncio.sleep,
        rate_limit: bool = True,
        public_cache_ttl: float = 0.0,
    ) -> None:
        if exchange_id not in EXCHANGES:
            raise ValueError(f"unsupported exchange {exchange_id!r}; expected one of {EXCHANGES}")
        if markets_source is not None and markets_source.exchange_id != exchange_id:
            raise ValueError("markets_source must be a client of the same exchange")
        self.exchange_id = exchange_id
        self.breaker = breaker
        # Order books and tickers are public: a private client shares its public client's cache.
        self.public_cache: SingleFlightCache = (
            markets_source.public_cache if markets_source is not None else SingleFlightCache(public_cache_ttl)
        )
        self._credentials = credentials
        self._source = markets_source
        self._retry_attempts = retry_attempts
        self._retry_base_delay = retry_base_delay
        self._retry_max_delay = retry_max_delay
        self._lookup_attempts = max(1, lookup_attempts)
        self._lookup_base_delay = lookup_base_delay
        self._sleep = sleep
        config: dict[str, Any] = {
            "options": copy.deepcopy(CCXT_OPTIONS[exchange_id]),
            "enableRateLimit": rate_limit,  # ccxt's per-client throttle; off only in tests
            "timeout": timeout_ms,
        }
        if credentials is not None:
            config.update(
                {
                    "apiKey": credentials.api_key,
                    "secret": credentials.secret,
                    "password": credentials.passphrase,
                }
            )
        if session is not None:
            config["session"] = session
        self._exchange: Any = getattr(ccxt, exchange_id)(config)
        if session is not None:
            self._exchange.timeout_on_exit = 0  # nothing of ours to drain on close
            self._exchange.ssl_context = False  # the shared session's connector holds the TLS settings
        if api_url:
            self._exchange.urls["api"] = rebase_urls(self._exchange.urls["api"], api_url)
        self._infos: dict[str, MarketInfo] | None = None
        self._markets_lock = asyncio.Lock()

    def __repr__(self) -> str:
        kind = "private" if self._credentials is not None else "public"
        return f"CcxtExchangeClient({self.exchange_id!r}, {kind})"

    async def __aenter__(self) -> CcxtExchangeClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._exchange.close()

    @property
    def has_credentials(self) -> bool:
        return self._credentials is not None

    # -- plumbing --------------------------------------------------------------------------------------------
    async def _once(self, fn: Callable[[], Awaitable[T]]) -> T:
        """One request through the breaker, ccxt errors mapped to ours (the original, whose message may hold a
        signed URL, is not chained)."""
        async with self.breaker.guard():
            try:
                return await fn()
            except ccxt.BaseError as exc:
                raise map_ccxt_error(exc, self.exchange_id) from None
            except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                raise map_ccxt_error(exc, self.exchange_id) from None

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """A read: through the breaker, retried on temporary errors."""
        return await retry(
            lambda: self._once(fn),
            attempts=self._retry_attempts,
            base_delay=self._retry_base_delay,
            max_delay=self._retry_max_delay,
            sleep=self._sleep,
        )

    def _require_credentials(self) -> None:
        if self._credentials is None:
            raise ExchangeAuthError("exchange.credentials_required", exchange=self.exchange_id)

    # -- markets ------------------------------------------------------------------------------------------
    def _share_from_source(self) -> bool:
        source = self._source
        if source is None or source._infos is None:
            return False
        self._exchange.set_markets_from_exchange(source._exchange)
        self._infos = source._infos
        return True

    async def _ensure_markets(self) -> dict[str, MarketInfo]:
        if self._infos is not None:
            return self._infos
        if self._source is not None:
            await self._source._ensure_markets()
            self._share_from_source()
            assert self._infos is not None
            return self._infos
        return await self._load(reload=False)

    async def _load(self, reload: bool) -> dict[str, MarketInfo]:
        async with self._markets_lock:
            if self._infos is not None and not reload:
                return self._infos
            await self._call(lambda: self._exchange.load_markets(reload))
            self._infos = self._build_infos()
            return self._infos

    async def load_markets(self, reload: bool = False) -> dict[str, MarketInfo]:
        """Spot markets by unified symbol. A client with a ``markets_source`` shares the source's markets."""
        if reload:
            if self._source is not None:
                await self._source._load(reload=True)
                self._share_from_source()
            else:
                await self._load(reload=True)
        infos = await self._ensure_markets()
        return dict(infos)

    def _step(self, value: Any) -> Decimal | None:
        number = to_decimal(value)
        if number is None or number <= 0:
            return None
        mode = self._exchange.precisionMode
        if mode == TICK_SIZE:
            return number
        if mode == DECIMAL_PLACES:
            return Decimal(1).scaleb(-int(number))
        return None  # significant digits: no fixed step

    def _build_infos(self) -> dict[str, MarketInfo]:
        infos: dict[str, MarketInfo] = {}
        for symbol, m in (self._exchange.markets or {}).items():
            if not m.get("spot") or m.get("active") is False:
                continue
            precision = m.get("precision") or {}
            limits = m.get("limits") or {}
            min_amount = to_decimal((limits.get("amount") or {}).get("min"))
            min_cost = to_decimal((limits.get("cost") or {}).get("min"))
            infos[symbol] = MarketInfo(
                symbol=symbol,
                base=m["base"],
                quote=m["quote"],
                amount_step=self._step(precision.get("amount")),
                price_step=self._step(precision.get("price")),
                min_amount=min_amount if min_amount else None,
                min_cost=min_cost if min_cost else None,
                taker_fee=to_decimal(m.get("taker")) or _ZERO,
                maker_fee=to_decimal(m.get("maker")) or _ZERO,
            )
        return infos

    def _lookup(self, symbol: str) -> MarketInfo:
        infos = self._infos
        if infos is None and self._share_from_source():
            infos = self._infos
        if infos is None:
            raise ExchangeError("exchange.markets_not_loaded", exchange=self.exchange_id)
        info = infos.get(symbol) or infos.get(normalize_symbol(symbol))
        if info is None:
            raise UnknownSymbolError(
                exchange=self.exchange_id, symbol=symbol, suggestions=suggest_symbols(symbol, infos)
            )
        return info

    async def market(self, symbol: str) -> MarketInfo:
        await self._ensure_markets()
        return self._lookup(symbol)

    def amount_to_precision(self, symbol: str, amount: Decimal) -> Decimal:
        """``amount`` rounded DOWN to the market's amount step (0 if below one step)."""
        info = self._lookup(symbol)
        try:
            return Decimal(self._exchange.amount_to_precision(info.symbol, str(amount)))
        except ccxt.InvalidOrder:  # ccxt refuses to round to zero
            return _ZERO

    def price_to_precision(self, symbol: str, price: Decimal) -> Decimal:
        """``price`` rounded to the nearest price tick."""
        info = self._lookup(symbol)
        return Decimal(self._exchange.price_to_precision(info.symbol, str(price)))

    # -- market data ----------------------------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self._exchange.milliseconds())

    def _ticker(self, symbol: str, t: Mapping[str, Any]) -> Ticker:
        bid, ask = to_decimal(t.get("bid")), to_decimal(t.get("ask"))
        last = to_decimal(t.get("last")) or to_decimal(t.get("close"))
        if last is None and bid is not None and ask is not None:
            last = (bid + ask) / 2
        if last is None:
            raise ExchangeTemporaryError(
                exchange=self.exchange_id, reason="bad_response", detail="no last price"
            )
        return Ticker(
            symbol=symbol,
            last=last,
            bid=bid,
            ask=ask,
            high=to_decimal(t.get("high")),
            low=to_decimal(t.get("low")),
            base_volume=to_decimal(t.get("baseVolume")),
            quote_volume=to_decimal(t.get("quoteVolume")),
            change_pct=to_decimal(t.get("percentage")),
            timestamp_ms=int(t.get("timestamp") or self._now_ms()),
        )

    async def fetch_ticker(self, symbol: str) -> Ticker:
        info = await self.market(symbol)

        async def fetch() -> Ticker:
            raw = await self._call(lambda: self._exchange.fetch_ticker(info.symbol))
            return self._ticker(info.symbol, raw)

        return await self.public_cache.get(("ticker", info.symbol), fetch)

    async def fetch_tickers(self, symbols: list[str] | None = None) -> dict[str, Ticker]:
        infos = await self._ensure_markets()
        wanted = sorted({self._lookup(s).symbol for s in symbols}) if symbols else None
        key = ("tickers", tuple(wanted) if wanted else None)
        return await self.public_cache.get(key, lambda: self._fetch_tickers(infos, wanted))

    async def _fetch_tickers(
        self, infos: dict[str, MarketInfo], wanted: list[str] | None
    ) -> dict[str, Ticker]:
        raw = await self._call(lambda: self._exchange.fetch_tickers(wanted))
        keep = set(wanted) if wanted else set(infos)
        result: dict[str, Ticker] = {}
        for symbol, t in raw.items():
            if symbol in keep:
                try:
                    result[symbol] = self._ticker(symbol, t)
                except ExchangeTemporaryError:
                    continue  # a market without a price yet
        return result

    def _book_depth(self, limit: int) -> int:
        allowed = BOOK_DEPTHS[self.exchange_id]
        cap = BOOK_CAP[self.exchange_id]
        if allowed is None:
            return max(1, min(limit, cap))
        return next((depth for depth in allowed if depth >= limit), allowed[-1])

    async def fetch_order_book(
        self, symbol: str, limit: int = 50, *, max_age: float | None = None
    ) -> OrderBook:
        """`max_age=0` for a book to fill against: never older than the decision to trade."""
        info = await self.market(symbol)
        key = ("book", info.symbol, limit)
        return await self.public_cache.get(key, lambda: self._fetch_book(info, limit), max_age=max_age)

    async def _fetch_book(self, info: MarketInfo, limit: int) -> OrderBook:
        depth = self._book_depth(limit)
        raw = await self._call(lambda: self._exchange.fetch_order_book(info.symbol, depth))

        def side(levels: list[list[Any]]) -> tuple[tuple[Decimal, Decimal], ...]:
            out: list[tuple[Decimal, Decimal]] = []
            for level in levels[:limit]:
                price, amount = to_decimal(level[0]), to_decimal(level[1])
                if price is not None and amount is not None:
                    out.append((price, amount))
            return tuple(out)

        return OrderBook(
            symbol=info.symbol,
            bids=side(raw.get("bids") or []),
            asks=side(raw.get("asks") or []),
            timestamp_ms=int(raw.get("timestamp") or self._now_ms()),
        )

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since_ms: int | None = None, limit: int = 500
    ) -> list[Candle]:
        info = await self.market(symbol)
        if timeframe not in (self._exchange.timeframes or {}):
            raise InvalidOrderError(
                "exchange.unsupported_timeframe", exchange=self.exchange_id, timeframe=timeframe
            )
        raw = await self._call(lambda: self._exchange.fetch_ohlcv(info.symbol, timeframe, since_ms, limit))
        candles: list[Candle] = []
        for row in raw:
            values = [to_decimal(v) for v in row[1:6]]
            if any(v is None for v in values):
                continue
            o, h, low, c, v = cast(list[Decimal], values)
            candles.append(Candle(int(row[0]), o, h, low, c, v))
        return candles

    # -- account ------------------------------------------------------------------------------------------
    async def fetch_balance(self) -> dict[str, Balance]:
        """Assets with a non-zero free, used or total amount."""
        self._require_credentials()
        await self._ensure_markets()
        raw = await self._call(lambda: self._exchange.fetch_balance())
        free_map, used_map, total_map = (raw.get(k) or {} for k in ("free", "used", "total"))
        result: dict[str, Balance] = {}
        for asset in {*free_map, *used_map, *total_map}:
            free, used, total = (to_decimal(m.get(asset)) for m in (free_map, used_map, total_map))
            if total is None:
                total = (free or _ZERO) + (used or _ZERO)
            if free is None:
                free = total - (used or _ZERO)
            if used is None:
                used = total - free
            if free or used or total:
                result[asset] = Balance(asset=asset, free=free, used=used, total=total)
        return result

    async def withdrawal_enabled(self) -> bool | None:
        """Whether the API key may withdraw (Binance only; None where the exchange does not say)."""
        self._require_credentials()
        if self.exchange_id != "binance":
            return None
        raw = await self._call(lambda: self._exchange.sapi_get_account_apirestrictions())
        value = raw.get("enableWithdrawals")
        return None if value is None else bool(value)

    # -- orders -------------------------------------------------------------------------------------------
    async def _reference_price(self, symbol: str, side: Side) -> Decimal | None:
        ticker = await self.fetch_ticker(symbol)
        return (ticker.ask if side == "buy" else ticker.bid) or ticker.last

    def _check_order(
        self, info: MarketInfo, order_type: OrderType, amount: Decimal, price: Decimal | None
    ) -> tuple[Decimal, Decimal | None]:
        """Round amount down to the step and price to the tick; refuse what is left at zero."""
        if amount <= 0:
            raise InvalidOrderError(exchange=self.exchange_id, detail="amount must be positive")
        rounded_price: Decimal | None = None
        if order_type == "limit":
            if price is None or price <= 0:
                raise InvalidOrderError(
                    exchange=self.exchange_id, detail="a limit order needs a positive price"
                )
            rounded_price = self.price_to_precision(info.symbol, price)
            if rounded_price <= 0:
                raise InvalidOrderError(exchange=self.exchange_id, detail="price below the price tick")
        rounded_amount = self.amount_to_precision(info.symbol, amount)
        if rounded_amount <= 0:
            minimum = max(info.min_amount or _ZERO, info.amount_step or _ZERO)
            raise OrderBelowMinimum(exchange=self.exchange_id, minimum=tidy(minimum) or None, unit=info.base)
        return rounded_amount, rounded_price

    def _check_limits(self, info: MarketInfo, amount: Decimal, price: Decimal | None) -> None:
        if info.min_amount is not None and amount < info.min_amount:
            raise OrderBelowMinimum(exchange=self.exchange_id, minimum=tidy(info.min_amount), unit=info.base)
        if info.min_cost is not None and price is not None and amount * price < info.min_cost:
            # the minimum in the quote currency, and as a base amount at this price (rounded up to the step)
            as_base = info.min_cost / price
            step = info.amount_step
            if step:
                as_base = (as_base / step).to_integral_value(ROUND_CEILING) * step
            raise OrderBelowMinimum(
                exchange=self.exchange_id,
                minimum=tidy(info.min_cost),
                unit=info.quote,
                minimum_base=tidy(as_base),
                base=info.base,
            )

    async def place_order(
        self,
        symbol: str,
        side: Side,
        order_type: OrderType,
        amount: Decimal,
        price: Decimal | None,
        client_order_id: str,
    ) -> OrderResult:
        """Check precision and limits locally, send the order ONCE with ``client_order_id``, and return it.

        After a timeout / 5xx / dropped connection the order is looked up by its client id (with backoff):
        found -> returned; surely absent -> :class:`OrderNotPlaced`; the lookups failing ->
        :class:`OrderOutcomeUnknown`. The order is never resent."""
        self._require_credentials()
        if side not in ("buy", "sell") or order_type not in ("market", "limit"):
            raise InvalidOrderError(exchange=self.exchange_id, detail=f"{side} {order_type}")
        if not client_order_id:
            raise InvalidOrderError(exchange=self.exchange_id, detail="client order id required")
        info = await self.market(symbol)
        amount_q, price_q = self._check_order(info, order_type, Decimal(amount), price)
        reference = price_q if order_type == "limit" else await self._reference_price(info.symbol, side)
        self._check_limits(info, amount_q, reference)

        params = {"clientOrderId": client_order_id}
        price_arg = float(price_q) if price_q is not None else None
        try:
            created = await self._once(
                lambda: self._exchange.create_order(
                    info.symbol, order_type, side, float(amount_q), price_arg, dict(params)
                )
            )
        except ExchangeUnavailable:
            raise  # the circuit is open: nothing was sent
        except DuplicateOrderError:
            # an order with this client id is open already: that is the order (idempotent placement)
            existing = await self._find_raw_or_none(info, client_order_id)
            if existing is None:
                raise
            return await self._complete(info, existing)
        except (ExchangeRateLimited, ExchangeTemporaryError) as exc:
            if isinstance(exc, ExchangeRateLimited) or exc.params.get("reason") in ("clock", "maintenance"):
                raise  # refused by the exchange before it did anything
            return await self._reconcile(info, client_order_id, exc)
        except ExchangeError:
            raise
        except Exception as exc:  # e.g. a parsing failure after the exchange accepted the order
            log.warning(
                "%s: unexpected %s creating an order; reconciling", self.exchange_id, type(exc).__name__
            )
            return await self._reconcile(info, client_order_id, None)
        return await self._after_create(info, created, order_type, side, amount_q, price_q, client_order_id)

    async def _after_create(
        self,
        info: MarketInfo,
        created: Mapping[str, Any],
        order_type: OrderType,
        side: Side,
        amount: Decimal,
        price: Decimal | None,
        client_order_id: str,
    ) -> OrderResult:
        fallback = {
            "clientOrderId": client_order_id,
            "type": order_type,
            "side": side,
            "amount": amount,
            "price": price,
        }
        order_id = created.get("id")
        # Binance answers with the full order (FULL: status and fills); Kraken and KuCoin with the id only
        complete = created.get("status") in _STATUSES and created.get("filled") is not None
        if complete and not (order_type == "market" and created.get("status") == "open"):
            return await self._complete(info, created, fallback)
        if not order_id:
            raise OrderOutcomeUnknown(
                exchange=self.exchange_id, symbol=info.symbol, client_order_id=client_order_id
            )
        last: Mapping[str, Any] = created
        for attempt in range(3):  # a market order may take a moment to show as filled
            try:
                last = await self._call(lambda: self._exchange.fetch_order(order_id, info.symbol))
            except ExchangeError as exc:
                log.warning("%s: order %s placed but not fetched: %s", self.exchange_id, order_id, exc)
                break
            if not (order_type == "market" and last.get("status") == "open"):
                break
            await self._sleep(0.2 * (attempt + 1))
        return await self._complete(info, last, fallback)

    async def _reconcile(
        self, info: MarketInfo, client_order_id: str, cause: ExchangeError | None, *, stop: bool = False
    ) -> OrderResult:
        not_found = 0
        last_answered = False
        for attempt in range(self._lookup_attempts):
            await self._sleep(backoff_delay(attempt, self._lookup_base_delay, 4.0, jitter=False))
            try:
                raw = await self._find_raw(info, client_order_id, stop=stop)
            except ExchangeError as exc:
                log.info(
                    "%s: lookup %d of %s failed: %s", self.exchange_id, attempt + 1, client_order_id, exc
                )
                last_answered = False
                continue
            if raw is not None:
                log.info("%s: order %s found after a failed creation", self.exchange_id, client_order_id)
                return await self._complete(info, raw)
            not_found += 1
            last_answered = True
        params = {"exchange": self.exchange_id, "symbol": info.symbol, "client_order_id": client_order_id}
        if last_answered and not_found >= min(2, self._lookup_attempts):
            raise OrderNotPlaced(**params) from cause
        raise OrderOutcomeUnknown(**params) from cause

    async def _find_raw(
        self, info: MarketInfo, client_order_id: str, *, stop: bool = False
    ) -> Mapping[str, Any] | None:
        """The ccxt order with this client id, or None; one attempt per request (no retry).

        ``stop``: the order may be a stop order; KuCoin keeps those on their own endpoints until they trigger
        (by client id it answers an empty list there once the order triggered or ended)."""
        ex = self._exchange
        if stop and self.exchange_id == "kucoin":
            waiting = await self._once(
                lambda: ex.fetch_order(None, info.symbol, {"clientOrderId": client_order_id, "trigger": True})
            )
            if waiting.get("id"):
                return cast(Mapping[str, Any], waiting)
        if self.exchange_id == "kraken":  # QueryOrders needs a txid: search the open and closed lists
            query = {"clientOrderId": client_order_id}
            for fetch in (ex.fetch_open_orders, ex.fetch_closed_orders):

                async def listed(fetch: Any = fetch) -> list[dict[str, Any]]:
                    return cast(list[dict[str, Any]], await fetch(info.symbol, None, None, dict(query)))

                for order in await self._once(listed):
                    if order.get("clientOrderId") == client_order_id:
                        return cast(Mapping[str, Any], order)
            return None
        try:
            order = await self._once(
                lambda: ex.fetch_order(None, info.symbol, {"clientOrderId": client_order_id})
            )
        except OrderNotFoundError:
            return None
        return cast(Mapping[str, Any], order)

    async def _find_raw_or_none(self, info: MarketInfo, client_order_id: str) -> Mapping[str, Any] | None:
        try:
            return await retry(
                lambda: self._find_raw(info, client_order_id),
                attempts=self._retry_attempts,
                base_delay=self._retry_base_delay,
                max_delay=self._retry_max_delay,
                sleep=self._sleep,
            )
        except ExchangeError:
            return None

    async def find_order(self, symbol: str, client_order_id: str) -> OrderResult | None:
        """The order placed with ``client_order_id``, or None if the exchange has none."""
        self._require_credentials()
        info = await self.market(symbol)
        raw = await retry(
            lambda: self._find_raw(info, client_order_id),
            attempts=self._retry_attempts,
            base_delay=self._retry_base_delay,
            max_delay=self._retry_max_delay,
            sleep=self._sleep,
        )
        return None if raw is None else await self._complete(info, raw)

    async def fetch_order(self, symbol: str, exchange_order_id: str) -> OrderResult:
        self._require_credentials()
        info = await self.market(symbol)
        try:
            raw = await self._call(lambda: self._exchange.fetch_order(exchange_order_id, info.symbol))
        except InvalidOrderError as exc:
            if self.exchange_id == "kraken" and type(exc) is InvalidOrderError:  # EOrder:Invalid order
                raise OrderNotFoundError(exchange=self.exchange_id, detail=exc.detail) from None
            raise
        return await self._complete(info, raw)

    async def cancel_order(self, symbol: str, exchange_order_id: str) -> OrderResult | None:
        """Cancel and return the order's final state (``canceled``, or ``closed`` if it filled first); None if
        the exchange does not know the order."""
        self._require_credentials()
        info = await self.market(symbol)
        try:
            answer = await self._call(lambda: self._exchange.cancel_order(exchange_order_id, info.symbol))
        except OrderNotFoundError:
            answer = None
        try:
            return await self.fetch_order(info.symbol, exchange_order_id)
        except OrderNotFoundError:
            return None
        except ExchangeError:
            if answer is not None and answer.get("status") in _STATUSES:
                return await self._complete(info, answer)
            raise

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderResult]:
        """Open orders (of one symbol or all). Fees of partly filled orders are what ccxt reports."""
        self._require_credentials()
        await self._ensure_markets()
        unified = self._lookup(symbol).symbol if symbol else None
        raw = await self._call(lambda: self._exchange.fetch_open_orders(unified))
        results: list[OrderResult] = []
        for order in raw:
            if order.get("symbol") in (self._infos or {}):
                results.append(self._order_result(self._lookup(order["symbol"]), order, None, None))
        return results

    # -- protective (stop) orders ------------------------------------------------------------------------
    def stop_support(self) -> StopSupport:
        """Native protective orders this exchange takes on spot: our table, confirmed by ccxt's features."""
        table = NATIVE_STOPS.get(self.exchange_id, StopSupport())
        features = ((self._exchange.features or {}).get("spot") or {}).get("createOrder") or {}
        return StopSupport(
            stop_loss=table.stop_loss and bool(features.get("stopLossPrice")),
            take_profit=table.take_profit and bool(features.get("takeProfitPrice")),
            oco=False,
        )

    async def place_stop(
        self, symbol: str, kind: StopKind, amount: Decimal, trigger_price: Decimal, client_order_id: str
    ) -> OrderResult:
        """Place a protective sell that waits on the exchange until the last price crosses ``trigger_price``
        (down for a stop-loss, up for a take-profit), then sells ``amount`` at market.

        Checked locally first (precision, minimum amount and notional at the trigger price:
        :class:`OrderBelowMinimum`); sent ONCE with ``client_order_id`` and, after a timeout / 5xx, looked up
        by it as :meth:`place_order` does. Unsupported -> :class:`InvalidOrderError` ("not supported")."""
        self._require_credentials()
        if not self.stop_support().supports(kind):
            raise InvalidOrderError(exchange=self.exchange_id, detail=f"native {kind} not supported")
        if not client_order_id:
            raise InvalidOrderError(exchange=self.exchange_id, detail="client order id required")
        info = await self.market(symbol)
        amount_q, _ = self._check_order(info, "market", Decimal(amount), None)
        trigger = self.price_to_precision(info.symbol, trigger_price)
        if trigger <= 0:
            raise InvalidOrderError(exchange=self.exchange_id, detail="trigger price below the price tick")
        self._check_limits(info, amount_q, trigger)
        params: dict[str, Any] = {"clientOrderId": client_order_id, STOP_PARAM[kind]: float(trigger)}
        fallback = {
            "clientOrderId": client_order_id,
            "type": "market",
            "side": "sell",
            "amount": amount_q,
            "triggerPrice": trigger,
        }
        try:
            created = await self._once(
                lambda: self._exchange.create_order(
                    info.symbol, "market", "sell", float(amount_q), None, dict(params)
                )
            )
        except ExchangeUnavailable:
            raise
        except DuplicateOrderError:
            existing = await self._find_stop_or_none(info, client_order_id)
            if existing is None:
                raise
            return await self._complete(info, existing, fallback)
        except (ExchangeRateLimited, ExchangeTemporaryError) as exc:
            if isinstance(exc, ExchangeRateLimited) or exc.params.get("reason") in ("clock", "maintenance"):
                raise
            return await self._reconcile(info, client_order_id, exc, stop=True)
        except ExchangeError:
            raise
        except Exception as exc:
            log.warning("%s: unexpected %s creating a stop; reconciling", self.exchange_id, type(exc))
            return await self._reconcile(info, client_order_id, None, stop=True)
        if created.get("status") in _STATUSES and created.get("filled") is not None:
            return await self._complete(info, created, fallback)  # Binance: the full order
        if created.get("id"):  # Kraken, KuCoin: the id only; a stop that triggered at once is followed up
            return await self._complete(info, {**created, "status": "open", "filled": 0}, fallback)
        try:
            found = await self._find_stop_raw(info, client_order_id)
        except ExchangeError as exc:
            log.warning("%s: stop %s placed but not fetched: %s", self.exchange_id, client_order_id, exc)
            found = None
        raw = found if found is not None else {**created, "status": "open"}
        return await self._complete(info, raw, fallback)

    async def _find_stop_raw(self, info: MarketInfo, client_order_id: str) -> Mapping[str, Any] | None:
        """A stop order by its client id (retried on temporary errors), or None."""
        return await retry(
            lambda: self._find_raw(info, client_order_id, stop=True),
            attempts=self._retry_attempts,
            base_delay=self._retry_base_delay,
            max_delay=self._retry_max_delay,
            sleep=self._sleep,
        )

    async def _find_stop_or_none(self, info: MarketInfo, client_order_id: str) -> Mapping[str, Any] | None:
        try:
            return await self._find_stop_raw(info, client_order_id)
        except ExchangeError:
            return None

    async def find_stop(self, symbol: str, client_order_id: str) -> OrderResult | None:
        """The stop order placed with ``client_order_id`` in its current state (``open`` while it waits,
        ``closed`` once it triggered and filled, ``canceled``...), or None if the exchange has none."""
        self._require_credentials()
        info = await self.market(symbol)
        raw = await self._find_stop_raw(info, client_order_id)
        return None if raw is None else await self._complete(info, raw)

    async def cancel_stop(
        self, symbol: str, exchange_order_id: str | None, client_order_id: str
    ) -> OrderResult | None:
        """Cancel a waiting stop order; returns its final state (``canceled``, or ``closed`` if it triggered
        and filled first), or None if the exchange does not know it."""
        self._require_credentials()
        info = await self.market(symbol)
        params: dict[str, Any] = {"trigger": True} if self.exchange_id == "kucoin" else {}
        if exchange_order_id:
            try:
                await self._call(
                    lambda: self._exchange.cancel_order(exchange_order_id, info.symbol, dict(params))
                )
            except OrderNotFoundError:
                pass  # triggered (or ended) already: its final state says what happened
            except InvalidOrderError as exc:
                if not (self.exchange_id == "kraken" and type(exc) is InvalidOrderError):
                    raise
        raw = await self._find_stop_raw(info, client_order_id)
        if raw is None:
            return None
        if raw.get("status") == "open" and not exchange_order_id and raw.get("id"):
            order_id = str(raw["id"])
            await self._call(lambda: self._exchange.cancel_order(order_id, info.symbol, dict(params)))
            raw = await self._find_stop_raw(info, client_order_id)
            if raw is None:
                return None
        result = await self._complete(info, raw)
        if result.status == "open" and self.exchange_id == "kucoin" and result.filled == 0:
            return None  # should not happen: KuCoin answered the cancel but still lists the order
        return result

    # -- order conversion ----------------------------------------------------------------------------------
    async def _complete(
        self, info: MarketInfo, raw: Mapping[str, Any], fallback: Mapping[str, Any] | None = None
    ) -> OrderResult:
        """Convert, fetching the trades for the exact fee when the order payload has none (Binance)."""
        fee = self._exact_fee(raw)
        filled = to_decimal(raw.get("filled")) or _ZERO
        if fee is None and filled > 0 and self.exchange_id == "binance" and raw.get("id"):
            fee = await self._fee_from_trades(info, str(raw["id"]))
        return self._order_result(info, raw, fee, fallback)

    async def _fee_from_trades(self, info: MarketInfo, order_id: str) -> tuple[Decimal, str | None] | None:
        try:
            trades = await self._call(
                lambda: self._exchange.fetch_my_trades(info.symbol, None, None, {"orderId": order_id})
            )
        except ExchangeError as exc:
            log.warning("%s: trades of order %s not fetched: %s", self.exchange_id, order_id, exc)
            return None
        total, assets = _ZERO, set()
        for trade in trades:
            if str(trade.get("order")) != order_id:
                continue
            trade_info = trade.get("info") or {}
            fee = trade.get("fee") or {}
            cost = to_decimal(trade_info.get("commission")) or to_decimal(fee.get("cost")) or _ZERO
            total += cost
            if fee.get("currency"):
                assets.add(fee["currency"])
        return total, (assets.pop() if len(assets) == 1 else None)

    def _exact_fee(self, raw: Mapping[str, Any]) -> tuple[Decimal, str | None] | None:
        """The fee from the order payload's own strings where the exchange gives them."""
        info = raw.get("info") or {}
        if self.exchange_id == "binance":
            fills = info.get("fills")
            if not fills:
                return None
            total, assets = _ZERO, set()
            for fill in fills:
                total += to_decimal(fill.get("commission")) or _ZERO
                if fill.get("commissionAsset"):
                    assets.add(self._exchange.safe_currency_code(fill["commissionAsset"]))
            return total, (assets.pop() if len(assets) == 1 else None)
        ccxt_fee = raw.get("fee") or {}
        exact = to_decimal(info.get("fee"))
        if exact is not None:
            currency = ccxt_fee.get("currency")
            if currency is None and info.get("feeCurrency"):
                currency = self._exchange.safe_currency_code(info["feeCurrency"])
            return exact, currency
        fees = raw.get("fees") or ([ccxt_fee] if ccxt_fee else [])
        costs = [to_decimal(f.get("cost")) for f in fees if f]
        if not costs or any(c is None for c in costs):
            return None
        currencies = {f.get("currency") for f in fees if f and f.get("currency")}
        return sum((c for c in costs if c is not None), _ZERO), (
            currencies.pop() if len(currencies) == 1 else None
        )

    def _order_result(
        self,
        info: MarketInfo,
        raw: Mapping[str, Any],
        fee: tuple[Decimal, str | None] | None,
        fallback: Mapping[str, Any] | None,
    ) -> OrderResult:
        fb = fallback or {}
        payload = raw.get("info") or {}
        status_raw = raw.get("status")
        status = cast(OrderStatus, status_raw if status_raw in _STATUSES else "open")
        order_type = cast(
            OrderType, raw.get("type") if raw.get("type") in ("market", "limit") else fb.get("type")
        )
        side = cast(Side, raw.get("side") if raw.get("side") in ("buy", "sell") else fb.get("side"))
        amount = to_decimal(raw.get("amount")) or to_decimal(fb.get("amount")) or _ZERO
        filled = to_decimal(raw.get("filled")) or _ZERO
        cost = (
            to_decimal(payload.get(EXACT_COST_FIELD[self.exchange_id])) if isinstance(payload, dict) else None
        )
        if cost is None:
            cost = to_decimal(raw.get("cost"))
        average = to_decimal(raw.get("average"))
        if cost is None:
            cost = filled * average if average is not None else _ZERO
        if filled > 0 and cost > 0:
            average = tidy((cost / filled).quantize(Decimal("1e-12")))
        elif filled == 0:
            average = None
        limit_price = None
        if order_type == "limit":
            limit_price = to_decimal(raw.get("price")) or to_decimal(fb.get("price"))
        fee_cost, fee_asset = fee if fee is not None else (_ZERO, None)
        trigger = (
            to_decimal(raw.get("triggerPrice"))
            or to_decimal(raw.get("stopLossPrice"))
            or to_decimal(raw.get("takeProfitPrice"))
            or to_decimal(fb.get("triggerPrice"))
        )
        return OrderResult(
            exchange_order_id=str(raw.get("id") or ""),
            client_order_id=raw.get("clientOrderId") or fb.get("clientOrderId"),
            symbol=raw.get("symbol") or info.symbol,
            side=side,
            order_type=order_type,
            status=status,
            amount=amount,
            filled=filled,
            price=limit_price,
            average_price=average,
            cost=tidy(cost) if cost else _ZERO,
            fee=tidy(fee_cost) if fee_cost else _ZERO,
            fee_asset=fee_asset,
            trigger_price=trigger,
        )
