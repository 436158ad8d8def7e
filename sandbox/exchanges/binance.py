"""Binance spot REST emulator: ``/api/v3/*`` and the ``/sapi/*`` endpoints ccxt calls for spot."""

from __future__ import annotations

import hashlib
import hmac
import time
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from sandbox.exchanges.http import Frontend, fmt, json_response, to_decimal
from sandbox.exchanges.ledger import Account, ErrorKind, FeeSchedule, LedgerError, Order
from sandbox.exchanges.market import TIMEFRAMES

FEES = FeeSchedule(maker=Decimal("0.001"), taker=Decimal("0.001"), mode="received")
MAX_RECV_WINDOW = 60_000

STATUS = {"open": "NEW", "filled": "FILLED", "canceled": "CANCELED"}
PARTIALLY_FILLED = "PARTIALLY_FILLED"  # an open order with fills
COIN_NAMES = {
    "BTC": "Bitcoin",
    "ETH": "Ethereum",
    "USDT": "TetherUS",
    "SOL": "Solana",
    "XRP": "XRP",
    "BNB": "BNB",
    "ADA": "Cardano",
    "DOGE": "Dogecoin",
    "LTC": "Litecoin",
    "DOT": "Polkadot",
    "LINK": "ChainLink",
    "USDC": "USD Coin",
}


def order_id(seq: int) -> str:
    return str(1_000_000 + seq)


def trade_id(seq: int) -> str:
    return str(5_000_000 + seq)


class BinanceError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def error(code: int, msg: str, status: int = 400) -> web.Response:
    return json_response({"code": code, "msg": msg}, status=status)


def _mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


LEDGER_ERRORS: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.INSUFFICIENT_FUNDS: (-2010, "Account has insufficient balance for requested action."),
    ErrorKind.DUPLICATE_CLIENT_ID: (-2010, "Duplicate order sent."),
    ErrorKind.AMOUNT_STEP: (-1013, "Filter failure: LOT_SIZE"),
    ErrorKind.MIN_AMOUNT: (-1013, "Filter failure: LOT_SIZE"),
    ErrorKind.PRICE_TICK: (-1013, "Filter failure: PRICE_FILTER"),
    ErrorKind.MIN_NOTIONAL: (-1013, "Filter failure: NOTIONAL"),
    ErrorKind.UNKNOWN_SYMBOL: (-1121, "Invalid symbol."),
    ErrorKind.NO_LIQUIDITY: (-1013, "Filter failure: MARKET_LOT_SIZE"),
    ErrorKind.POST_ONLY_WOULD_TAKE: (-2010, "Order would immediately match and take."),
    ErrorKind.TRADING_DISABLED: (-2010, "This account may not place or cancel orders."),
    ErrorKind.BAD_ARGUMENT: (-1100, "Illegal characters found in a parameter."),
    ErrorKind.UNKNOWN_ORDER: (-2013, "Order does not exist."),
    ErrorKind.ORDER_NOT_OPEN: (-2011, "Unknown order sent."),
    ErrorKind.WOULD_TRIGGER: (-2010, "Stop price would trigger immediately."),
}
# spot stop order types: (executes as, trigger direction of a sell; a buy's is the other)
STOP_TYPES: dict[str, tuple[str, str]] = {
    "STOP_LOSS": ("market", "down"),
    "STOP_LOSS_LIMIT": ("limit", "down"),
    "TAKE_PROFIT": ("market", "up"),
    "TAKE_PROFIT_LIMIT": ("limit", "up"),
}


class BinanceFrontend(Frontend):
    exchange_id = "binance"

    # -- plumbing --------------------------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        public = {
            "ping": self.ping,
            "time": self.time,
            "exchangeInfo": self.exchange_info,
            "depth": self.depth,
            "klines": self.klines,
            "uiKlines": self.klines,
            "ticker/24hr": self.ticker_24hr,
            "ticker/price": self.ticker_price,
            "ticker/bookTicker": self.book_ticker,
            "avgPrice": self.avg_price,
            "trades": self.recent_trades,
        }
        for path, handler in public.items():
            app.router.add_get(f"/api/v3/{path}", self._wrap(handler))
        private: list[tuple[str, str, Any]] = [
            ("GET", "/api/v3/account", self.account_info),
            ("POST", "/api/v3/order", self.new_order),
            ("POST", "/api/v3/order/test", self.test_order),
            ("GET", "/api/v3/order", self.query_order),
            ("DELETE", "/api/v3/order", self.cancel_order),
            ("GET", "/api/v3/openOrders", self.open_orders),
            ("DELETE", "/api/v3/openOrders", self.cancel_open_orders),
            ("GET", "/api/v3/allOrders", self.all_orders),
            ("GET", "/api/v3/myTrades", self.my_trades),
            ("GET", "/api/v3/account/commission", self.commission),
            ("GET", "/sapi/v1/capital/config/getall", self.capital_config),
            ("GET", "/sapi/v1/account/apiRestrictions", self.api_restrictions),
            ("GET", "/sapi/v1/account/status", self.account_status),
            ("GET", "/sapi/v1/asset/tradeFee", self.trade_fee),
            ("GET", "/sapi/v1/margin/allPairs", self.margin_pairs),
            ("GET", "/sapi/v1/margin/isolated/allPairs", self.margin_pairs),
        ]
        for method, path, handler in private:
            app.router.add_route(method, path, self._wrap(handler, signed=True))
        app.router.add_get("/sapi/v1/system/status", self._wrap(self.system_status))
        app.router.add_route("*", "/{tail:.*}", self._unknown)

    async def _unknown(self, request: web.Request) -> web.Response:
        raise web.HTTPNotFound()

    def not_found(self, request: web.Request) -> web.Response:
        return error(-5000, f"Path {request.path}, Method {request.method} is invalid", status=404)

    def maintenance(self, request: web.Request) -> web.Response:
        return error(-1, "System is under maintenance.", status=503)

    def is_order_creation(self, request: web.Request) -> bool:
        return request.method == "POST" and request.path == "/api/v3/order"

    def _wrap(self, handler: Any, signed: bool = False) -> Any:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            try:
                params, account = await self._authenticate(request, signed)
                result = handler(params, account) if signed else handler(params)
                return json_response(result)
            except BinanceError as exc:
                return error(exc.code, exc.msg, exc.status)
            except LedgerError as exc:
                code, msg = LEDGER_ERRORS[exc.kind]
                return error(code, msg)

        return endpoint

    async def _authenticate(
        self, request: web.Request, signed: bool
    ) -> tuple[dict[str, str], Account | None]:
        raw_query = request.raw_path.partition("?")[2]
        raw_body = await request.text() if request.body_exists else ""
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
        params.update(parse_qsl(raw_body, keep_blank_values=True))
        if not signed:
            return params, None
        api_key = request.headers.get("X-MBX-APIKEY", "")
        if not api_key:
            raise BinanceError(-2014, "API-key format invalid.", 401)
        account = self.ledger.account(api_key)
        if account is None:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        signature = params.pop("signature", None)
        if not signature:
            raise _mandatory("signature")
        payload = _strip_signature(raw_query) + _strip_signature(raw_body)
        expected = hmac.new(account.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise BinanceError(-1022, "Signature for this request is not valid.")
        timestamp = _int(params.get("timestamp"))
        if timestamp is None:
            raise _mandatory("timestamp")
        recv_window = _int(params.get("recvWindow")) or 5000
        if recv_window > MAX_RECV_WINDOW:
            raise BinanceError(-1131, "recvWindow must be less than 60000")
        now = int(time.time() * 1000)
        if timestamp > now + 1000:
            raise BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if now - timestamp > recv_window:
            raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
        return params, account

    def _symbol(self, params: dict[str, str], required: bool = True) -> str | None:
        symbol_id = params.get("symbol")
        if not symbol_id:
            if required:
                raise _mandatory("symbol")
            return None
        for symbol in self.ledger.symbols:
            if self._id(symbol) == symbol_id:
                return symbol
        raise BinanceError(-1121, "Invalid symbol.")

    @staticmethod
    def _id(symbol: str) -> str:
        return symbol.replace("/", "")

    # -- public ----------------------------------------------------------------------------------------------
    def ping(self, params: dict[str, str]) -> Any:
        return {}

    def time(self, params: dict[str, str]) -> Any:
        return {"serverTime": int(time.time() * 1000)}

    def system_status(self, params: dict[str, str]) -> Any:
        return {"status": 0, "msg": "normal"}

    def exchange_info(self, params: dict[str, str]) -> Any:
        wanted: list[str] | None = None
        if "symbol" in params:
            wanted = [params["symbol"]]
        elif "symbols" in params:
            wanted = [s.strip('"') for s in params["symbols"].strip("[]").split(",")]
        symbols = [
            self._symbol_info(s) for s in self.ledger.symbols if wanted is None or self._id(s) in wanted
        ]
        if wanted is not None and not symbols:
            raise BinanceError(-1121, "Invalid symbol.")
        return {
            "timezone": "UTC",
            "serverTime": int(time.time() * 1000),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
            ],
            "exchangeFilters": [],
            "symbols": symbols,
        }

    def _symbol_info(self, symbol: str) -> dict[str, Any]:
        spec = self.ledger.spec(symbol)
        return {
            "symbol": self._id(symbol),
            "status": "TRADING",
            "baseAsset": spec.base,
            "baseAssetPrecision": 8,
            "quoteAsset": spec.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": [
                "LIMIT",
                "LIMIT_MAKER",
                "MARKET",
                "STOP_LOSS",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT",
                "TAKE_PROFIT_LIMIT",
            ],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "amendAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": fmt(spec.tick, 8),
                    "maxPrice": "1000000.00000000",
                    "tickSize": fmt(spec.tick, 8),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": fmt(spec.min_amount, 8),
                    "maxQty": "9000000.00000000",
                    "stepSize": fmt(spec.step, 8),
                },
                {"filterType": "ICEBERG_PARTS", "limit": 10},
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": "0.00000000",
                    "maxQty": "9000000.00000000",
                    "stepSize": "0.00000000",
                },
                {
                    "filterType": "TRAILING_DELTA",
                    "minTrailingAboveDelta": 10,
                    "maxTrailingAboveDelta": 2000,
                    "minTrailingBelowDelta": 10,
                    "maxTrailingBelowDelta": 2000,
                },
                {
                    "filterType": "PERCENT_PRICE_BY_SIDE",
                    "bidMultiplierUp": "5",
                    "bidMultiplierDown": "0.2",
                    "askMultiplierUp": "5",
                    "askMultiplierDown": "0.2",
                    "avgPriceMins": 5,
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": fmt(spec.min_notional, 8),
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }

    def depth(self, params: dict[str, str]) -> Any:
        symbol = self._symbol(params)
        assert symbol is not None
        limit = min(_int(params.get("limit")) or 100, 5000)
        bids, asks = self.market.book(symbol, limit)
        return {
            "lastUpdateId": self.market.now_ms(),
            "bids": [[fmt(lv.price, 8), fmt(lv.amount, 8)] for lv in bids],
            "asks": [[fmt(lv.price, 8), fmt(lv.amount, 8)] for lv in asks],
        }

    def klines(self, params: dict[str, str]) -> Any:
        symbol = self._symbol(params)
        assert symbol is not None
        interval = params.get("interval")
        if not interval:
            raise _mandatory("interval")
        if interval not in TIMEFRAMES:
            raise BinanceError(-1120, "Invalid interval.")
        limit = min(_int(params.get("limit")) or 500, 1000)
        candles = self.market.candles(
            symbol, interval, _int(params.get("startTime")), _int(params.get("endTime")), limit
        )
        span = TIMEFRAMES[interval] * 1000
        return [
            [
                c.ts_ms,
                fmt(c.open, 8),
                fmt(c.high, 8),
                fmt(c.low, 8),
                fmt(c.close, 8),
                fmt(c.volume, 8),
                c.ts_ms + span - 1,
                fmt(c.volume * c.close, 8),
                100,
                fmt(c.volume / 2, 8),
                fmt(c.volume * c.close / 2, 8),
                "0",
            ]
            for c in candles
        ]

    def _tickers(self, params: dict[str, str]) -> tuple[list[str], bool]:
        if "symbol" in params:
            symbol = self._symbol(params)
            assert symbol is not None
            return [symbol], True
        if "symbols" in params:
            ids = [s.strip('"') for s in params["symbols"].strip("[]").split(",")]
            symbols = [s for s in self.ledger.symbols if self._id(s) in ids]
            if len(symbols) != len(ids):
                raise BinanceError(-1121, "Invalid symbol.")
            return symbols, False
        return list(self.ledger.symbols), False

    def ticker_24hr(self, params: dict[str, str]) -> Any:
        symbols, single = self._tickers(params)
        result = []
        for symbol in symbols:
            st = self.market.stats_24h(symbol)
            result.append(
                {
                    "symbol": self._id(symbol),
                    "priceChange": fmt(st.change, 8),
                    "priceChangePercent": fmt(st.change_percent, 3),
                    "weightedAvgPrice": fmt(st.vwap, 8),
                    "prevClosePrice": fmt(st.open, 8),
                    "lastPrice": fmt(st.last, 8),
                    "lastQty": "0.10000000",
                    "bidPrice": fmt(st.bid, 8),
                    "bidQty": fmt(st.bid_qty, 8),
                    "askPrice": fmt(st.ask, 8),
                    "askQty": fmt(st.ask_qty, 8),
                    "openPrice": fmt(st.open, 8),
                    "highPrice": fmt(st.high, 8),
                    "lowPrice": fmt(st.low, 8),
                    "volume": fmt(st.volume, 8),
                    "quoteVolume": fmt(st.quote_volume, 8),
                    "openTime": st.open_ms,
                    "closeTime": st.close_ms,
                    "firstId": 1,
                    "lastId": 1000,
                    "count": 1000,
                }
            )
        return result[0] if single else result

    def ticker_price(self, params: dict[str, str]) -> Any:
        symbols, single = self._tickers(params)
        result = [{"symbol": self._id(s), "price": fmt(self.market.price(s), 8)} for s in symbols]
        return result[0] if single else result

    def book_ticker(self, params: dict[str, str]) -> Any:
        symbols, single = self._tickers(params)
        result = []
        for symbol in symbols:
            bids, asks = self.market.book(symbol, 1)
            result.append(
                {
                    "symbol": self._id(symbol),
                    "bidPrice": fmt(bids[0].price, 8),
                    "bidQty": fmt(bids[0].amount, 8),
                    "askPrice": fmt(asks[0].price, 8),
                    "askQty": fmt(asks[0].amount, 8),
                }
            )
        return result[0] if single else result

    def avg_price(self, params: dict[str, str]) -> Any:
        symbol = self._symbol(params)
        assert symbol is not None
        return {"mins": 5, "price": fmt(self.market.price(symbol), 8), "closeTime": self.market.now_ms()}

    def recent_trades(self, params: dict[str, str]) -> Any:
        symbol = self._symbol(params)
        assert symbol is not None
        limit = min(_int(params.get("limit")) or 500, 1000)
        candles = self.market.candles(symbol, "1m", limit=limit)
        return [
            {
                "id": i + 1,
                "price": fmt(c.close, 8),
                "qty": fmt(c.volume / 100, 8),
                "quoteQty": fmt(c.volume / 100 * c.close, 8),
                "time": c.ts_ms + 59_000,
                "isBuyerMaker": i % 2 == 0,
                "isBestMatch": True,
            }
            for i, c in enumerate(candles)
        ]

    # -- private ---------------------------------------------------------------------------------------------
    def account_info(self, params: dict[str, str], account: Account) -> Any:
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": "0.00100000",
                "taker": "0.00100000",
                "buyer": "0.00000000",
                "seller": "0.00000000",
            },
            "canTrade": account.can_trade,
            "canWithdraw": account.can_withdraw,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self.market.now_ms(),
            "accountType": "SPOT",
            "balances": [
                {"asset": a, "free": fmt(account.free(a), 8), "locked": fmt(account.held(a), 8)}
                for a in account.assets()
            ],
            "permissions": ["SPOT"],
            "uid": account.uid,
        }

    def commission(self, params: dict[str, str], account: Account) -> Any:
        symbol = self._symbol(params)
        return {
            "symbol": params.get("symbol", ""),
            "standardCommission": {
                "maker": "0.00100000",
                "taker": "0.00100000",
                "buyer": "0.00000000",
                "seller": "0.00000000",
            },
            "taxCommission": {"maker": "0", "taker": "0", "buyer": "0", "seller": "0"},
            "discount": {
                "enabledForAccount": True,
                "enabledForSymbol": symbol is not None,
                "discountAsset": "BNB",
                "discount": "0.75000000",
            },
        }

    def trade_fee(self, params: dict[str, str], account: Account) -> Any:
        return [
            {"symbol": self._id(s), "makerCommission": "0.001", "takerCommission": "0.001"}
            for s in self.ledger.symbols
        ]

    def _create(self, params: dict[str, str], account: Account, validate_only: bool) -> Order:
        symbol = self._symbol(params)
        assert symbol is not None
        side = params.get("side", "").upper()
        if side not in ("BUY", "SELL"):
            raise _mandatory("side")
        order_type = params.get("type", "").upper()
        if order_type not in ("MARKET", "LIMIT", "LIMIT_MAKER", *STOP_TYPES):
            if not order_type:
                raise _mandatory("type")
            raise BinanceError(-1116, "Invalid orderType.")
        quantity = to_decimal(params.get("quantity"))
        quote_qty = to_decimal(params.get("quoteOrderQty"))
        price = to_decimal(params.get("price"))
        stop_price = to_decimal(params.get("stopPrice"))
        tif = params.get("timeInForce", "GTC").upper()
        if order_type in ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
            if "timeInForce" not in params:
                raise _mandatory("timeInForce")
            if tif not in ("GTC", "IOC", "FOK"):
                raise BinanceError(-1115, "Invalid timeInForce.")
        if order_type in ("LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
            if quantity is None:
                raise _mandatory("quantity")
            if price is None:
                raise _mandatory("price")
        elif order_type in STOP_TYPES:
            if quantity is None:
                raise _mandatory("quantity")
        elif quantity is None and quote_qty is None:
            raise BinanceError(
                -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
            )
        client_id = params.get("newClientOrderId") or None
        if client_id is not None and len(client_id) > 36:
            raise BinanceError(
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; legal range is "
                "'^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
            )
        client_id = client_id or f"web_{self.market.now_ms()}{len(self.ledger.orders)}"
        if order_type in STOP_TYPES:
            if stop_price is None:
                raise _mandatory("stopPrice")
            assert quantity is not None
            executes_as, sell_dir = STOP_TYPES[order_type]
            direction = sell_dir if side == "SELL" else ("up" if sell_dir == "down" else "down")
            return self.ledger.create_stop_order(
                account,
                symbol,
                side.lower(),
                executes_as,
                quantity,
                stop_price,
                direction,
                price if executes_as == "limit" else None,
                client_id,
                order_type,
                tif if executes_as == "limit" else "GTC",
                reject_immediate=True,
                validate_only=validate_only,
            )
        return self.ledger.create_order(
            account,
            symbol,
            side.lower(),
            "market" if order_type == "MARKET" else "limit",
            quantity,
            price if order_type != "MARKET" else None,
            quote_qty if quantity is None else None,
            client_id,
            None,
            tif,
            order_type == "LIMIT_MAKER",
            validate_only,
        )

    def new_order(self, params: dict[str, str], account: Account) -> Any:
        order = self._create(params, account, validate_only=False)
        resp_type = params.get("newOrderRespType", "FULL").upper()
        base = {
            "symbol": self._id(order.symbol),
            "orderId": int(order.id),
            "orderListId": -1,
            "clientOrderId": order.client_id,
            "transactTime": order.created_ms,
        }
        if resp_type == "ACK":
            return base
        result = {
            **base,
            **self._order_fields(order),
            "workingTime": _working_time(order),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }
        if resp_type == "FULL":
            result["fills"] = [
                {
                    "price": fmt(f.price, 8),
                    "qty": fmt(f.amount, 8),
                    "commission": fmt(f.fee, 8),
                    "commissionAsset": f.fee_asset,
                    "tradeId": int(f.id),
                }
                for f in order.fills
            ]
        return result

    def test_order(self, params: dict[str, str], account: Account) -> Any:
        self._create(params, account, validate_only=True)
        return {}

    def _order_fields(self, order: Order) -> dict[str, Any]:
        status = STATUS[order.status]
        if order.is_open and order.filled > 0:
            status = PARTIALLY_FILLED
        if order.status == "canceled" and order.time_in_force in ("IOC", "FOK") and order.type == "limit":
            status = "EXPIRED"
        if order.status == "canceled" and order.triggered:
            status = "EXPIRED"  # triggered, but the market could not fill it
        return {
            "price": fmt(order.price or Decimal(0), 8),
            "origQty": fmt(order.amount or Decimal(0), 8),
            "executedQty": fmt(order.filled, 8),
            "origQuoteOrderQty": fmt(order.quote_amount or Decimal(0), 8),
            "cummulativeQuoteQty": fmt(order.cost, 8),
            "status": status,
            "timeInForce": order.time_in_force,
            "type": order.stop_kind or ("LIMIT_MAKER" if order.post_only else order.type.upper()),
            "side": order.side.upper(),
            **({"stopPrice": fmt(order.trigger_price, 8)} if order.trigger_price is not None else {}),
        }

    def _order_json(self, order: Order) -> dict[str, Any]:
        return {
            "symbol": self._id(order.symbol),
            "orderId": int(order.id),
            "orderListId": -1,
            "clientOrderId": order.client_id,
            **self._order_fields(order),
            "stopPrice": fmt(order.trigger_price or Decimal(0), 8),
            "icebergQty": "0.00000000",
            "time": order.created_ms,
            "updateTime": order.updated_ms,
            "isWorking": not order.is_stop or order.triggered,
            "workingTime": _working_time(order),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def _find(self, params: dict[str, str], account: Account) -> Order:
        symbol = self._symbol(params)
        oid, cid = params.get("orderId"), params.get("origClientOrderId")
        if not oid and not cid:
            raise BinanceError(
                -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
            )
        order = self.ledger.get_order(account, oid or None, cid or None)
        if order.symbol != symbol:
            raise LedgerError(ErrorKind.UNKNOWN_ORDER)
        return order

    def query_order(self, params: dict[str, str], account: Account) -> Any:
        return self._order_json(self._find(params, account))

    def cancel_order(self, params: dict[str, str], account: Account) -> Any:
        try:
            order = self._find(params, account)
            order = self.ledger.cancel_order(account, order.id)
        except LedgerError as exc:
            if exc.kind in (ErrorKind.UNKNOWN_ORDER, ErrorKind.ORDER_NOT_OPEN):
                raise BinanceError(-2011, "Unknown order sent.") from exc
            raise
        return {
            "symbol": self._id(order.symbol),
            "origClientOrderId": order.client_id,
            "orderId": int(order.id),
            "orderListId": -1,
            "clientOrderId": params.get("newClientOrderId") or f"cancel{order.id}",
            "transactTime": order.updated_ms,
            **self._order_fields(order),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def open_orders(self, params: dict[str, str], account: Account) -> Any:
        symbol = self._symbol(params, required=False)
        return [self._order_json(o) for o in self.ledger.list_orders(account, symbol, "open")]

    def cancel_open_orders(self, params: dict[str, str], account: Account) -> Any:
        symbol = self._symbol(params)
        orders = self.ledger.cancel_all(account, symbol)
        if not orders:
            raise BinanceError(-2011, "Unknown order sent.")
        return [
            {
                "symbol": self._id(o.symbol),
                "origClientOrderId": o.client_id,
                "orderId": int(o.id),
                "orderListId": -1,
                "clientOrderId": f"cancel{o.id}",
                "transactTime": o.updated_ms,
                **self._order_fields(o),
                "selfTradePreventionMode": "EXPIRE_MAKER",
            }
            for o in orders
        ]

    def all_orders(self, params: dict[str, str], account: Account) -> Any:
        symbol = self._symbol(params)
        orders = self.ledger.list_orders(account, symbol)
        start, end = _int(params.get("startTime")), _int(params.get("endTime"))
        from_id = _int(params.get("orderId"))
        orders = [
            o
            for o in orders
            if (start is None or o.created_ms >= start)
            and (end is None or o.created_ms <= end)
            and (from_id is None or int(o.id) >= from_id)
        ]
        limit = min(_int(params.get("limit")) or 500, 1000)
        orders = orders[:limit] if (start is not None or from_id is not None) else orders[-limit:]
        return [self._order_json(o) for o in orders]

    def my_trades(self, params: dict[str, str], account: Account) -> Any:
        symbol = self._symbol(params)
        fills = self.ledger.list_fills(account, symbol)
        start, end = _int(params.get("startTime")), _int(params.get("endTime"))
        from_id, oid = _int(params.get("fromId")), params.get("orderId")
        fills = [
            f
            for f in fills
            if (start is None or f.ts_ms >= start)
            and (end is None or f.ts_ms <= end)
            and (from_id is None or int(f.id) >= from_id)
            and (oid is None or f.order_id == oid)
        ]
        limit = min(_int(params.get("limit")) or 500, 1000)
        fills = fills[:limit] if (start is not None or from_id is not None) else fills[-limit:]
        return [
            {
                "symbol": self._id(f.symbol),
                "id": int(f.id),
                "orderId": int(f.order_id),
                "orderListId": -1,
                "price": fmt(f.price, 8),
                "qty": fmt(f.amount, 8),
                "quoteQty": fmt(f.cost, 8),
                "commission": fmt(f.fee, 8),
                "commissionAsset": f.fee_asset,
                "time": f.ts_ms,
                "isBuyer": f.side == "buy",
                "isMaker": f.maker,
                "isBestMatch": True,
            }
            for f in fills
        ]

    # -- sapi ------------------------------------------------------------------------------------------------
    def capital_config(self, params: dict[str, str], account: Account) -> Any:
        coins = sorted({c for s in self.ledger.symbols for c in s.split("/")} | set(account.assets()))
        result = []
        for coin in coins:
            network = {
                "network": coin,
                "coin": coin,
                "withdrawIntegerMultiple": "0.00000001",
                "isDefault": True,
                "depositEnable": True,
                "withdrawEnable": True,
                "depositDesc": "",
                "withdrawDesc": "",
                "specialTips": "",
                "name": COIN_NAMES.get(coin, coin),
                "resetAddressStatus": False,
                "addressRegex": "^[0-9A-Za-z]{20,64}$",
                "memoRegex": "",
                "withdrawFee": "0.0001",
                "withdrawMin": "0.001",
                "withdrawMax": "9999999999.99999999",
                "minConfirm": 1,
                "unLockConfirm": 2,
                "sameAddress": False,
                "estimatedArrivalTime": 5,
                "busy": False,
                "contractAddressUrl": "",
                "contractAddress": "",
            }
            result.append(
                {
                    "coin": coin,
                    "depositAllEnable": True,
                    "withdrawAllEnable": True,
                    "name": COIN_NAMES.get(coin, coin),
                    "free": fmt(account.free(coin), 8),
                    "locked": fmt(account.held(coin), 8),
                    "freeze": "0",
                    "withdrawing": "0",
                    "ipoing": "0",
                    "ipoable": "0",
                    "storage": "0",
                    "isLegalMoney": False,
                    "trading": True,
                    "networkList": [network],
                }
            )
        return result

    def api_restrictions(self, params: dict[str, str], account: Account) -> Any:
        return {
            "ipRestrict": False,
            "createTime": account.created_ms,
            "enableReading": True,
            "enableWithdrawals": account.can_withdraw,
            "enableInternalTransfer": False,
            "enableMargin": False,
            "enableFutures": False,
            "permitsUniversalTransfer": False,
            "enableVanillaOptions": False,
            "enableFixApiTrade": False,
            "enableFixReadOnly": False,
            "enableSpotAndMarginTrading": account.can_trade,
            "enablePortfolioMarginTrading": False,
        }

    def account_status(self, params: dict[str, str], account: Account) -> Any:
        return {"data": "Normal"}

    def margin_pairs(self, params: dict[str, str], account: Account) -> Any:
        return []


def _working_time(order: Order) -> int:
    """When the order started working on the book: a stop order only once triggered (-1 before)."""
    if not order.is_stop:
        return order.created_ms
    return order.triggered_ms if order.triggered else -1


def _strip_signature(raw: str) -> str:
    parts = [p for p in raw.split("&") if p and not p.startswith("signature=")]
    return "&".join(parts)


def _int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise BinanceError(-1100, "Illegal characters found in a parameter.") from exc
