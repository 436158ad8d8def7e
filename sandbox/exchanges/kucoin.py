"""KuCoin spot REST emulator: ``/api/v1|v2|v3/*`` (classic and high-frequency order endpoints)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from sandbox.exchanges.http import Frontend, fmt, json_response, to_decimal
from sandbox.exchanges.ledger import Account, ErrorKind, FeeSchedule, Fill, LedgerError, Order
from sandbox.exchanges.market import TIMEFRAMES, SymbolSpec

FEES = FeeSchedule(maker=Decimal("0.001"), taker=Decimal("0.001"), mode="quote")
BASE_STEP = Decimal("0.00000001")
QUOTE_MIN = {"USDT": Decimal("0.1"), "BTC": Decimal("0.00001")}
TIMESTAMP_TOLERANCE_MS = 5000
KLINE_TYPES = {
    "1min": "1m",
    "3min": "3m",
    "5min": "5m",
    "15min": "15m",
    "30min": "30m",
    "1hour": "1h",
    "2hour": "2h",
    "4hour": "4h",
    "6hour": "6h",
    "8hour": "8h",
    "12hour": "12h",
    "1day": "1d",
    "1week": "1w",
}
CURRENCY_NAMES = {
    "BTC": "Bitcoin",
    "ETH": "Ethereum",
    "USDT": "Tether",
    "SOL": "Solana",
    "XRP": "XRP",
    "BNB": "BNB",
    "ADA": "Cardano",
    "DOGE": "Dogecoin",
    "LTC": "Litecoin",
    "DOT": "Polkadot",
    "LINK": "Chainlink",
}


def adapt_spec(spec: SymbolSpec) -> SymbolSpec:
    return replace(spec, step=BASE_STEP, min_notional=QUOTE_MIN.get(spec.quote, Decimal("0.1")))


def order_id(seq: int) -> str:
    return hashlib.sha256(f"order{seq}".encode()).hexdigest()[:8] + f"{seq:016x}"


def trade_id(seq: int) -> str:
    return hashlib.sha256(f"trade{seq}".encode()).hexdigest()[:8] + f"{seq:016x}"


class KucoinError(Exception):
    def __init__(self, code: str, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


LEDGER_ERRORS: dict[ErrorKind, tuple[str, str]] = {
    ErrorKind.INSUFFICIENT_FUNDS: ("200004", "Balance insufficient!"),
    ErrorKind.DUPLICATE_CLIENT_ID: ("400100", "validation.createOrder.clientOidDuplicated"),
    ErrorKind.AMOUNT_STEP: ("400100", "Order size increment invalid."),
    ErrorKind.MIN_AMOUNT: ("400100", "Order size below the minimum requirement."),
    ErrorKind.PRICE_TICK: ("400100", "Price increment invalid."),
    ErrorKind.MIN_NOTIONAL: ("400100", "Order funds below the minimum requirement."),
    ErrorKind.UNKNOWN_SYMBOL: ("400100", "Unsupported trading pair."),
    ErrorKind.NO_LIQUIDITY: ("400100", "Insufficient liquidity."),
    ErrorKind.POST_ONLY_WOULD_TAKE: ("400100", "Post only order would be filled immediately."),
    ErrorKind.TRADING_DISABLED: ("400007", "Access denied, require more permission."),
    ErrorKind.BAD_ARGUMENT: ("400100", "Parameter error."),
    ErrorKind.UNKNOWN_ORDER: ("400100", "order_not_exist"),
    ErrorKind.ORDER_NOT_OPEN: ("400100", "order_not_exist_or_not_allow_to_cancel"),
    ErrorKind.WOULD_TRIGGER: ("400100", "Parameter error: stopPrice is invalid."),
}


def ok(data: Any) -> web.Response:
    return json_response({"code": "200000", "data": data})


def fail(code: str, msg: str, status: int = 400) -> web.Response:
    return json_response({"code": code, "msg": msg}, status=status)


class KucoinFrontend(Frontend):
    exchange_id = "kucoin"

    # -- plumbing --------------------------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        public: list[tuple[str, Any]] = [
            ("/api/v1/timestamp", self.timestamp),
            ("/api/v1/status", self.status),
            ("/api/v3/currencies", self.currencies),
            ("/api/v2/symbols", self.symbols),
            ("/api/v1/market/allTickers", self.all_tickers),
            ("/api/v1/market/stats", self.stats),
            ("/api/v1/market/orderbook/level1", self.level1),
            ("/api/v1/market/orderbook/level2_20", self.level2_20),
            ("/api/v1/market/orderbook/level2_100", self.level2_100),
            ("/api/v1/market/candles", self.candles),
            ("/api/v1/market/histories", self.histories),
        ]
        for path, handler in public:
            app.router.add_get(path, self._wrap(handler))
        private: list[tuple[str, str, Any]] = [
            ("GET", "/api/v3/market/orderbook/level2", self.level2_full),
            ("GET", "/api/v1/accounts", self.accounts),
            ("GET", "/api/v1/hf/accounts/opened", self.hf_opened),
            ("GET", "/api/ua/v1/account/mode", self.account_mode),
            ("GET", "/api/v3/margin/symbols", self.margin_symbols),
            ("GET", "/api/v1/isolated/symbols", self.isolated_symbols),
            ("GET", "/api/v1/base-fee", self.base_fee),
            ("GET", "/api/v1/trade-fees", self.trade_fees),
            ("POST", "/api/v1/orders", self.new_order),
            ("POST", "/api/v1/orders/test", self.test_order),
            ("POST", "/api/v1/hf/orders", self.new_order_hf),
            ("POST", "/api/v1/hf/orders/sync", self.new_order_sync),
            ("POST", "/api/v1/hf/orders/test", self.test_order),
            ("GET", "/api/v1/orders", self.list_orders),
            ("DELETE", "/api/v1/orders", self.cancel_all),
            ("GET", "/api/v1/hf/orders/active", self.hf_active),
            ("GET", "/api/v1/hf/orders/done", self.hf_done),
            ("DELETE", "/api/v1/hf/orders", self.cancel_all_hf),
            ("GET", "/api/v1/orders/{orderId}", self.get_order),
            ("GET", "/api/v1/hf/orders/client-order/{clientOid}", self.get_order_by_client_hf),
            ("GET", "/api/v1/hf/orders/{orderId}", self.get_order_hf),
            ("GET", "/api/v1/order/client-order/{clientOid}", self.get_order_by_client),
            ("DELETE", "/api/v1/orders/{orderId}", self.cancel_order),
            ("DELETE", "/api/v1/order/client-order/{clientOid}", self.cancel_by_client),
            ("DELETE", "/api/v1/hf/orders/client-order/{clientOid}", self.cancel_by_client_hf),
            ("DELETE", "/api/v1/hf/orders/sync/client-order/{clientOid}", self.cancel_by_client_hf),
            ("DELETE", "/api/v1/hf/orders/sync/{orderId}", self.cancel_order_hf),
            ("DELETE", "/api/v1/hf/orders/{orderId}", self.cancel_order_hf),
            ("POST", "/api/v1/stop-order", self.new_stop_order),
            ("GET", "/api/v1/stop-order", self.list_stop_orders),
            ("GET", "/api/v1/stop-order/queryOrderByClientOid", self.get_stop_by_client),
            ("DELETE", "/api/v1/stop-order/cancelOrderByClientOid", self.cancel_stop_by_client),
            ("DELETE", "/api/v1/stop-order/cancel", self.cancel_stop_orders),
            ("GET", "/api/v1/stop-order/{orderId}", self.get_stop_order),
            ("DELETE", "/api/v1/stop-order/{orderId}", self.cancel_stop_order),
            ("GET", "/api/v1/fills", self.fills),
            ("GET", "/api/v1/limit/fills", self.recent_fills),
            ("GET", "/api/v1/hf/fills", self.hf_fills),
        ]
        for method, path, handler in private:
            app.router.add_route(method, path, self._wrap(handler, signed=True))
        app.router.add_route("*", "/{tail:.*}", self._unknown)

    async def _unknown(self, request: web.Request) -> web.Response:
        raise web.HTTPNotFound()

    def not_found(self, request: web.Request) -> web.Response:
        return fail("404000", "Not Found", status=404)

    def maintenance(self, request: web.Request) -> web.Response:
        return fail("500000", "Service unavailable, please try again later.", status=503)

    def is_order_creation(self, request: web.Request) -> bool:
        return request.method == "POST" and request.path in (
            "/api/v1/orders",
            "/api/v1/stop-order",
            "/api/v1/hf/orders",
            "/api/v1/hf/orders/sync",
        )

    def _wrap(self, handler: Any, signed: bool = False) -> Any:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            try:
                params: dict[str, Any] = dict(
                    parse_qsl(request.raw_path.partition("?")[2], keep_blank_values=True)
                )
                params.update(request.match_info)
                body = await request.text() if request.body_exists else ""
                if body:
                    try:
                        loaded = json.loads(body)
                    except ValueError as exc:
                        raise KucoinError("400100", "Parameter error.") from exc
                    if isinstance(loaded, dict):
                        params.update({k: v for k, v in loaded.items() if v is not None})
                if not signed:
                    return ok(handler(params))
                account = self._authenticate(request, body)
                return ok(handler(params, account))
            except KucoinError as exc:
                return fail(exc.code, exc.msg, exc.status)
            except LedgerError as exc:
                code, msg = LEDGER_ERRORS[exc.kind]
                return fail(code, msg)

        return endpoint

    def _authenticate(self, request: web.Request, body: str) -> Account:
        headers = request.headers
        key, sign = headers.get("KC-API-KEY"), headers.get("KC-API-SIGN")
        stamp, passphrase = headers.get("KC-API-TIMESTAMP"), headers.get("KC-API-PASSPHRASE")
        if not key or not sign or not stamp or not passphrase:
            raise KucoinError(
                "400001",
                "Please check the header of your request for KC-API-KEY, KC-API-SIGN, "
                "KC-API-TIMESTAMP, KC-API-PASSPHRASE",
                401,
            )
        account = self.ledger.account(key)
        if account is None:
            raise KucoinError("400003", "KC-API-KEY not exists", 401)
        if not stamp.isdigit() or abs(int(stamp) - int(time.time() * 1000)) > TIMESTAMP_TOLERANCE_MS:
            raise KucoinError(
                "400002",
                "KC-API-TIMESTAMP Invalid -- Time differs from server time by more than 5 seconds",
                401,
            )
        version = headers.get("KC-API-KEY-VERSION", "1")
        expected_pass = account.passphrase or ""
        if version in ("2", "3"):
            expected_pass = _b64_hmac(account.secret, expected_pass)
        if not hmac.compare_digest(expected_pass, passphrase):
            raise KucoinError("400004", "Invalid KC-API-PASSPHRASE", 401)
        prehash = stamp + request.method + request.raw_path + body
        if not hmac.compare_digest(_b64_hmac(account.secret, prehash), sign):
            raise KucoinError("400005", "Invalid KC-API-SIGN", 401)
        return account

    @staticmethod
    def _id(symbol: str) -> str:
        return symbol.replace("/", "-")

    def _symbol(self, params: dict[str, Any], required: bool = True) -> str | None:
        raw = params.get("symbol")
        if not raw:
            if required:
                raise KucoinError("400100", "Parameter error: symbol is required.")
            return None
        for symbol in self.ledger.symbols:
            if self._id(symbol) == raw:
                return symbol
        raise KucoinError("400100", "Unsupported trading pair.")

    # -- public ----------------------------------------------------------------------------------------------
    def timestamp(self, params: dict[str, Any]) -> Any:
        return int(time.time() * 1000)

    def status(self, params: dict[str, Any]) -> Any:
        return {"status": "open", "msg": ""}

    def currencies(self, params: dict[str, Any]) -> Any:
        codes = sorted({c for s in self.ledger.symbols for c in s.split("/")})
        return [
            {
                "currency": c,
                "name": c,
                "fullName": CURRENCY_NAMES.get(c, c),
                "precision": 8,
                "confirms": None,
                "contractAddress": None,
                "isMarginEnabled": False,
                "isDebitEnabled": False,
                "chains": [
                    {
                        "chainName": c,
                        "withdrawalMinSize": "0.001",
                        "depositMinSize": "0.0001",
                        "withdrawFeeRate": "0",
                        "withdrawalMinFee": "0.0001",
                        "isWithdrawEnabled": True,
                        "isDepositEnabled": True,
                        "confirms": 3,
                        "preConfirms": 1,
                        "contractAddress": "",
                        "withdrawPrecision": 8,
                        "maxWithdraw": None,
                        "maxDeposit": None,
                        "needTag": False,
                        "chainId": c.lower(),
                    }
                ],
            }
            for c in codes
        ]

    def symbols(self, params: dict[str, Any]) -> Any:
        result = []
        for symbol in self.ledger.symbols:
            spec = self.ledger.spec(symbol)
            result.append(
                {
                    "symbol": self._id(symbol),
                    "name": self._id(symbol),
                    "baseCurrency": spec.base,
                    "quoteCurrency": spec.quote,
                    "feeCurrency": spec.quote,
                    "market": "USDS" if spec.quote == "USDT" else spec.quote,
                    "baseMinSize": fmt(spec.min_amount),
                    "quoteMinSize": fmt(spec.min_notional),
                    "baseMaxSize": "10000000000",
                    "quoteMaxSize": "99999999",
                    "baseIncrement": fmt(spec.step),
                    "quoteIncrement": fmt(spec.tick / 1000),
                    "priceIncrement": fmt(spec.tick),
                    "priceLimitRate": "0.1",
                    "minFunds": fmt(spec.min_notional),
                    "isMarginEnabled": False,
                    "enableTrading": True,
                    "feeCategory": 1,
                    "makerFeeCoefficient": "1.00",
                    "takerFeeCoefficient": "1.00",
                    "st": False,
                    "callauctionIsEnabled": False,
                    "callauctionPriceFloor": None,
                    "callauctionPriceCeiling": None,
                    "callauctionFirstStageStartTime": None,
                    "callauctionSecondStageStartTime": None,
                    "callauctionThirdStageStartTime": None,
                    "tradingStartTime": None,
                }
            )
        return result

    def _ticker(self, symbol: str) -> dict[str, Any]:
        st = self.market.stats_24h(symbol)
        return {
            "symbol": self._id(symbol),
            "symbolName": self._id(symbol),
            "buy": fmt(st.bid),
            "bestBidSize": fmt(st.bid_qty),
            "sell": fmt(st.ask),
            "bestAskSize": fmt(st.ask_qty),
            "changeRate": fmt((st.change / st.open).quantize(Decimal("0.0001")) if st.open else Decimal(0)),
            "changePrice": fmt(st.change),
            "high": fmt(st.high),
            "low": fmt(st.low),
            "vol": fmt(st.volume),
            "volValue": fmt(st.quote_volume),
            "last": fmt(st.last),
            "averagePrice": fmt(st.vwap.quantize(Decimal("0.00000001"))),
            "takerFeeRate": "0.001",
            "makerFeeRate": "0.001",
            "takerCoefficient": "1",
            "makerCoefficient": "1",
        }

    def all_tickers(self, params: dict[str, Any]) -> Any:
        return {"time": self.market.now_ms(), "ticker": [self._ticker(s) for s in self.ledger.symbols]}

    def stats(self, params: dict[str, Any]) -> Any:
        symbol = self._symbol(params)
        assert symbol is not None
        ticker = self._ticker(symbol)
        for key in ("symbolName", "bestBidSize", "bestAskSize"):
            ticker.pop(key)
        return {"time": self.market.now_ms(), **ticker}

    def _book(self, symbol: str, depth: int) -> dict[str, Any]:
        bids, asks = self.market.book(symbol, depth)
        return {
            "sequence": str(self.market.now_ms()),
            "time": self.market.now_ms(),
            "bids": [[fmt(lv.price), fmt(lv.amount)] for lv in bids],
            "asks": [[fmt(lv.price), fmt(lv.amount)] for lv in asks],
        }

    def level1(self, params: dict[str, Any]) -> Any:
        symbol = self._symbol(params)
        assert symbol is not None
        bids, asks = self.market.book(symbol, 1)
        return {
            "time": self.market.now_ms(),
            "sequence": str(self.market.now_ms()),
            "price": fmt(self.market.price(symbol)),
            "size": "0.001",
            "bestBid": fmt(bids[0].price),
            "bestBidSize": fmt(bids[0].amount),
            "bestAsk": fmt(asks[0].price),
            "bestAskSize": fmt(asks[0].amount),
        }

    def level2_20(self, params: dict[str, Any]) -> Any:
        symbol = self._symbol(params)
        assert symbol is not None
        return self._book(symbol, 20)

    def level2_100(self, params: dict[str, Any]) -> Any:
        symbol = self._symbol(params)
        assert symbol is not None
        return self._book(symbol, 100)

    def level2_full(self, params: dict[str, Any], account: Account) -> Any:
        symbol = self._symbol(params)
        assert symbol is not None
        return self._book(symbol, 500)

    def candles(self, params: dict[str, Any]) -> Any:
        symbol = self._symbol(params)
        assert symbol is not None
        kline = params.get("type", "")
        if kline not in KLINE_TYPES:
            raise KucoinError("400100", "Parameter error: type is invalid.")
        timeframe = KLINE_TYPES[kline]
        start = _int(params.get("startAt"))
        end = _int(params.get("endAt"))
        since = start * 1000 if start else None
        until = end * 1000 - 1 if end else None
        span = TIMEFRAMES[timeframe] * 1000
        candles = self.market.candles(symbol, timeframe, since, until, limit=1500)
        if since is not None:
            candles = [c for c in candles if c.ts_ms >= since - span + 1]
        candles = candles[-1500:]
        return [
            [
                str(c.ts_ms // 1000),
                fmt(c.open),
                fmt(c.close),
                fmt(c.high),
                fmt(c.low),
                fmt(c.volume),
                fmt(c.volume * c.close),
            ]
            for c in reversed(candles)
        ]

    def histories(self, params: dict[str, Any]) -> Any:
        symbol = self._symbol(params)
        assert symbol is not None
        candles = self.market.candles(symbol, "1m", limit=100)
        return [
            {
                "sequence": str(i + 1),
                "price": fmt(c.close),
                "size": fmt(c.volume / 100),
                "side": "buy" if i % 2 else "sell",
                "time": (c.ts_ms + 59_000) * 1_000_000,
            }
            for i, c in enumerate(candles)
        ]

    # -- private: account ------------------------------------------------------------------------------------
    def accounts(self, params: dict[str, Any], account: Account) -> Any:
        kind = params.get("type")
        currency = params.get("currency")
        result = []
        for code in account.assets():
            if currency and code != currency:
                continue
            for account_type in ("trade", "trade_hf"):
                if kind and kind != account_type:
                    continue
                if not kind and account_type == "trade_hf":
                    continue
                result.append(
                    {
                        "id": hashlib.sha256(f"{account.api_key}{code}".encode()).hexdigest()[:24],
                        "currency": code,
                        "type": account_type,
                        "balance": fmt(account.total(code)),
                        "available": fmt(account.free(code)),
                        "holds": fmt(account.held(code)),
                    }
                )
        return result

    def hf_opened(self, params: dict[str, Any], account: Account) -> Any:
        return False

    def account_mode(self, params: dict[str, Any], account: Account) -> Any:
        return {"selfAccountMode": "CLASSIC", "subAccountModes": []}

    def margin_symbols(self, params: dict[str, Any], account: Account) -> Any:
        return {"timestamp": self.market.now_ms(), "items": []}

    def isolated_symbols(self, params: dict[str, Any], account: Account) -> Any:
        return []

    def base_fee(self, params: dict[str, Any], account: Account) -> Any:
        return {"takerFeeRate": "0.001", "makerFeeRate": "0.001"}

    def trade_fees(self, params: dict[str, Any], account: Account) -> Any:
        names = [s for s in str(params.get("symbols", "")).split(",") if s]
        return [{"symbol": s, "takerFeeRate": "0.001", "makerFeeRate": "0.001"} for s in names]

    # -- private: orders -------------------------------------------------------------------------------------
    def _order_basics(self, params: dict[str, Any]) -> tuple[str, str, str, str]:
        """The fields every order (regular or stop) needs, checked as KuCoin checks them."""
        client_oid = params.get("clientOid")
        if not client_oid:
            raise KucoinError("400100", "validation.createOrder.clientOidIsRequired")
        if len(str(client_oid)) > 40:
            raise KucoinError("400100", "validation.createOrder.clientOidInvalid")
        symbol = self._symbol(params)
        assert symbol is not None
        side, order_type = params.get("side"), params.get("type", "limit")
        if side not in ("buy", "sell"):
            raise KucoinError("400100", "Parameter error: side is invalid.")
        if order_type not in ("limit", "market"):
            raise KucoinError("400100", "Parameter error: type is invalid.")
        return str(client_oid), symbol, str(side), str(order_type)

    def _create(self, params: dict[str, Any], account: Account, validate_only: bool) -> Order:
        client_oid, symbol, side, order_type = self._order_basics(params)
        size, funds = to_decimal(_str(params.get("size"))), to_decimal(_str(params.get("funds")))
        price = to_decimal(_str(params.get("price")))
        if order_type == "limit" and (size is None or price is None):
            raise KucoinError("400100", "Parameter error: price and size are required.")
        if order_type == "market" and size is None and funds is None:
            raise KucoinError("400100", "Parameter error: size or funds is required.")
        tif = str(params.get("timeInForce") or "GTC").upper()
        post_only = str(params.get("postOnly", "false")).lower() == "true"
        return self.ledger.create_order(
            account,
            symbol,
            side,
            order_type,
            size,
            price if order_type == "limit" else None,
            funds if size is None else None,
            str(client_oid),
            None,
            tif,
            post_only,
            validate_only,
        )

    def new_order(self, params: dict[str, Any], account: Account) -> Any:
        return {"orderId": self._create(params, account, False).id}

    def new_order_hf(self, params: dict[str, Any], account: Account) -> Any:
        order = self._create(params, account, False)
        return {"orderId": order.id, "clientOid": order.client_id}

    def new_order_sync(self, params: dict[str, Any], account: Account) -> Any:
        order = self._create(params, account, False)
        return {
            "orderId": order.id,
            "clientOid": order.client_id,
            "orderTime": order.created_ms,
            "originSize": fmt(order.amount or Decimal(0)),
            "dealSize": fmt(order.filled),
            "remainSize": fmt(order.remaining if order.is_open else Decimal(0)),
            "canceledSize": fmt(order.remaining if order.status == "canceled" else Decimal(0)),
            "status": "open" if order.is_open else "done",
            "matchTime": order.updated_ms,
        }

    def test_order(self, params: dict[str, Any], account: Account) -> Any:
        order = self._create(params, account, True)
        return {"orderId": order.id, "clientOid": order.client_id}

    def _order_json(self, order: Order, hf: bool = False) -> dict[str, Any]:
        spec = self.market.spec(order.symbol)
        result: dict[str, Any] = {
            "id": order.id,
            "clientOid": order.client_id,
            "symbol": self._id(order.symbol),
            "opType": "DEAL",
            "type": order.type,
            "side": order.side,
            "price": fmt(order.price or Decimal(0)),
            "size": fmt(order.amount or Decimal(0)) if order.quote_amount is None else "0",
            "funds": fmt(order.quote_amount or Decimal(0)),
            "dealSize": fmt(order.filled),
            "dealFunds": fmt(order.cost),
            "fee": fmt(order.fee),
            "feeCurrency": order.fee_asset or spec.quote,
            "stp": "",
            "timeInForce": order.time_in_force,
            "postOnly": order.post_only,
            "hidden": False,
            "iceberg": False,
            "visibleSize": "0",
            "cancelAfter": 0,
            "channel": "API",
            "remark": None,
            "tags": "",
            "cancelExist": order.status == "canceled",
            "createdAt": order.created_ms,
            "tradeType": "TRADE",
        }
        if hf:
            result.update(
                {
                    "active": order.is_open,
                    "inOrderBook": order.is_open,
                    "tax": "0",
                    "lastUpdatedAt": order.updated_ms,
                    "cancelledSize": fmt(order.remaining if order.status == "canceled" else Decimal(0)),
                    "cancelledFunds": "0",
                    "remainSize": fmt(order.remaining if order.is_open else Decimal(0)),
                    "remainFunds": "0",
                }
            )
        else:
            result.update({"isActive": order.is_open, "stopTriggered": False, "stopPrice": "0"})
        if order.is_stop:  # a triggered stop order, now a regular one
            result.update(
                {
                    "stop": order.stop_kind,
                    "stopTriggered": True,
                    "stopPrice": fmt(order.trigger_price or Decimal(0)),
                }
            )
        return result

    def _find(self, params: dict[str, Any], account: Account, by_client: bool) -> Order:
        """A regular order (a stop order only once it has triggered: until then it lives apart)."""
        if by_client:
            order = self.ledger.get_order(account, client_id=str(params["clientOid"]))
        else:
            order = self.ledger.get_order(account, order_id=str(params["orderId"]))
        if not _on_book(order):
            raise LedgerError(ErrorKind.UNKNOWN_ORDER)
        return order

    def get_order(self, params: dict[str, Any], account: Account) -> Any:
        return self._order_json(self._find(params, account, False))

    def get_order_by_client(self, params: dict[str, Any], account: Account) -> Any:
        return self._order_json(self._find(params, account, True))

    def get_order_hf(self, params: dict[str, Any], account: Account) -> Any:
        self._symbol(params)
        return self._order_json(self._find(params, account, False), hf=True)

    def get_order_by_client_hf(self, params: dict[str, Any], account: Account) -> Any:
        self._symbol(params)
        return self._order_json(self._find(params, account, True), hf=True)

    def _cancel(self, params: dict[str, Any], account: Account, by_client: bool) -> Order:
        try:
            order = self._find(params, account, by_client)
            return self.ledger.cancel_order(account, order.id)
        except LedgerError as exc:
            if exc.kind in (ErrorKind.UNKNOWN_ORDER, ErrorKind.ORDER_NOT_OPEN):
                raise KucoinError("400100", "order_not_exist_or_not_allow_to_cancel") from exc
            raise

    def cancel_order(self, params: dict[str, Any], account: Account) -> Any:
        return {"cancelledOrderIds": [self._cancel(params, account, False).id]}

    def cancel_by_client(self, params: dict[str, Any], account: Account) -> Any:
        order = self._cancel(params, account, True)
        return {"cancelledOrderId": order.id, "clientOid": order.client_id}

    def cancel_order_hf(self, params: dict[str, Any], account: Account) -> Any:
        self._symbol(params)
        return {"orderId": self._cancel(params, account, False).id}

    def cancel_by_client_hf(self, params: dict[str, Any], account: Account) -> Any:
        self._symbol(params)
        return {"clientOid": self._cancel(params, account, True).client_id}

    def _cancel_regular(self, account: Account, symbol: str | None) -> list[Order]:
        orders = [o for o in self.ledger.list_orders(account, symbol, "open") if _on_book(o)]
        return [self.ledger.cancel_order(account, o.id) for o in orders]

    def cancel_all(self, params: dict[str, Any], account: Account) -> Any:
        symbol = self._symbol(params, required=False)
        return {"cancelledOrderIds": [o.id for o in self._cancel_regular(account, symbol)]}

    def cancel_all_hf(self, params: dict[str, Any], account: Account) -> Any:
        symbol = self._symbol(params)
        self._cancel_regular(account, symbol)
        return "success"

    # -- stop orders (``/api/v1/stop-order``): they live here until triggered, then as regular orders -----
    def new_stop_order(self, params: dict[str, Any], account: Account) -> Any:
        client_oid, symbol, side, order_type = self._order_basics(params)
        stop = str(params.get("stop") or "loss")
        if stop not in ("loss", "entry"):
            raise KucoinError("400100", "Parameter error: stop is invalid.")
        stop_price = to_decimal(_str(params.get("stopPrice")))
        if stop_price is None:
            raise KucoinError("400100", "Parameter error: stopPrice is required.")
        size, price = to_decimal(_str(params.get("size"))), to_decimal(_str(params.get("price")))
        if size is None:
            raise KucoinError("400100", "Parameter error: size is required.")
        if order_type == "limit" and price is None:
            raise KucoinError("400100", "Parameter error: price and size are required.")
        order = self.ledger.create_stop_order(
            account,
            symbol,
            side,
            order_type,
            size,
            stop_price,
            "down" if stop == "loss" else "up",  # loss: last <= stopPrice; entry: last >= stopPrice
            price if order_type == "limit" else None,
            str(client_oid),
            stop,
            str(params.get("timeInForce") or "GTC").upper(),
        )
        return {"orderId": order.id}

    def _stop_json(self, order: Order) -> dict[str, Any]:
        spec = self.market.spec(order.symbol)
        return {
            "id": order.id,
            "symbol": self._id(order.symbol),
            "userId": f"{self.ledger.accounts[order.api_key].uid:024x}",
            "status": "NEW",
            "type": order.type,
            "side": order.side,
            "price": fmt(order.price or Decimal(0)),
            "size": fmt(order.amount or Decimal(0)),
            "funds": None,
            "stp": None,
            "timeInForce": order.time_in_force,
            "cancelAfter": -1,
            "postOnly": False,
            "hidden": False,
            "iceberg": False,
            "visibleSize": None,
            "channel": "API",
            "clientOid": order.client_id,
            "remark": None,
            "tags": None,
            "orderTime": order.created_ms * 1_000_000,
            "domainId": "kucoin",
            "tradeSource": "USER",
            "tradeType": "TRADE",
            "feeCurrency": spec.quote,
            "takerFeeRate": fmt(FEES.taker),
            "makerFeeRate": fmt(FEES.maker),
            "createdAt": order.created_ms,
            "stop": order.stop_kind,
            "stopTriggerTime": None,
            "stopPrice": fmt(order.trigger_price or Decimal(0)),
        }

    def _waiting_stop(
        self, account: Account, order_id: str | None = None, client_id: str | None = None
    ) -> Order:
        """An untriggered stop order (triggered or cancelled, the stop-order endpoints no longer know it)."""
        order = self.ledger.get_order(account, order_id, client_id)
        if not order.waiting:
            raise LedgerError(ErrorKind.UNKNOWN_ORDER)
        return order

    def list_stop_orders(self, params: dict[str, Any], account: Account) -> Any:
        symbol = self._symbol(params, required=False)
        ids = {i for i in str(params.get("orderIds") or "").split(",") if i}
        side, kind = params.get("side"), params.get("type")
        orders = [
            o
            for o in reversed(self.ledger.list_orders(account, symbol, "open"))
            if o.waiting
            and (not ids or o.id in ids)
            and (not side or o.side == side)
            and (not kind or o.type == kind)
        ]
        return _page(orders, params, self._stop_json)

    def get_stop_order(self, params: dict[str, Any], account: Account) -> Any:
        return self._stop_json(self._waiting_stop(account, order_id=str(params["orderId"])))

    def get_stop_by_client(self, params: dict[str, Any], account: Account) -> Any:
        client_oid = params.get("clientOid")
        if not client_oid:
            raise KucoinError("400100", "Parameter error: clientOid is required.")
        symbol = self._symbol(params, required=False)
        try:
            order = self._waiting_stop(account, client_id=str(client_oid))
        except LedgerError:
            return []
        return [self._stop_json(order)] if symbol is None or order.symbol == symbol else []

    def _cancel_stop(self, account: Account, order_id: str | None, client_id: str | None) -> Order:
        try:
            order = self._waiting_stop(account, order_id, client_id)
            return self.ledger.cancel_order(account, order.id)
        except LedgerError as exc:
            if exc.kind in (ErrorKind.UNKNOWN_ORDER, ErrorKind.ORDER_NOT_OPEN):
                raise KucoinError("400100", "order_not_exist_or_not_allow_to_cancel") from exc
            raise

    def cancel_stop_order(self, params: dict[str, Any], account: Account) -> Any:
        return {"cancelledOrderIds": [self._cancel_stop(account, str(params["orderId"]), None).id]}

    def cancel_stop_by_client(self, params: dict[str, Any], account: Account) -> Any:
        client_oid = params.get("clientOid")
        if not client_oid:
            raise KucoinError("400100", "Parameter error: clientOid is required.")
        order = self._cancel_stop(account, None, str(client_oid))
        return {"cancelledOrderId": order.id, "clientOid": order.client_id}

    def cancel_stop_orders(self, params: dict[str, Any], account: Account) -> Any:
        symbol = self._symbol(params, required=False)
        ids = {i for i in str(params.get("orderIds") or "").split(",") if i}
        orders = [
            o
            for o in self.ledger.list_orders(account, symbol, "open")
            if o.waiting and (not ids or o.id in ids)
        ]
        return {"cancelledOrderIds": [self.ledger.cancel_order(account, o.id).id for o in orders]}

    def _select(self, params: dict[str, Any], account: Account, status: str | None) -> list[Order]:
        symbol = self._symbol(params, required=False)
        orders = [o for o in self.ledger.list_orders(account, symbol, status) if _on_book(o)]
        side, kind = params.get("side"), params.get("type")
        start, end = _int(params.get("startAt")), _int(params.get("endAt"))
        orders = [
            o
            for o in orders
            if (not side or o.side == side)
            and (not kind or o.type == kind)
            and (start is None or o.created_ms >= start)
            and (end is None or o.created_ms <= end)
        ]
        return list(reversed(orders))

    def list_orders(self, params: dict[str, Any], account: Account) -> Any:
        status = {"active": "open", "done": "closed"}.get(str(params.get("status", "")))
        return _page(self._select(params, account, status), params, self._order_json)

    def hf_active(self, params: dict[str, Any], account: Account) -> Any:
        self._symbol(params)
        return [self._order_json(o, hf=True) for o in self._select(params, account, "open")]

    def hf_done(self, params: dict[str, Any], account: Account) -> Any:
        self._symbol(params)
        orders = self._select(params, account, "closed")
        limit = min(_int(params.get("limit")) or 20, 100)
        return {"lastId": 0, "items": [self._order_json(o, hf=True) for o in orders[:limit]]}

    def _fill_json(self, fill: Fill) -> dict[str, Any]:
        order = self.ledger.orders[fill.order_id]
        return {
            "symbol": self._id(fill.symbol),
            "tradeId": fill.id,
            "orderId": fill.order_id,
            "counterOrderId": trade_id(fill.seq + 7_000_000),
            "side": fill.side,
            "liquidity": "maker" if fill.maker else "taker",
            "forceTaker": False,
            "price": fmt(fill.price),
            "size": fmt(fill.amount),
            "funds": fmt(fill.cost),
            "fee": fmt(fill.fee),
            "feeRate": fmt(FEES.maker if fill.maker else FEES.taker),
            "feeCurrency": fill.fee_asset,
            "stop": order.stop_kind if order.is_stop else "",
            "type": order.type,
            "createdAt": fill.ts_ms,
            "tradeType": "TRADE",
        }

    def _fills(self, params: dict[str, Any], account: Account) -> list[Fill]:
        symbol = self._symbol(params, required=False)
        oid = params.get("orderId")
        start, end = _int(params.get("startAt")), _int(params.get("endAt"))
        fills = [
            f
            for f in self.ledger.list_fills(account, symbol)
            if (not oid or f.order_id == oid)
            and (start is None or f.ts_ms >= start)
            and (end is None or f.ts_ms <= end)
        ]
        return list(reversed(fills))

    def fills(self, params: dict[str, Any], account: Account) -> Any:
        return _page(self._fills(params, account), params, self._fill_json)

    def recent_fills(self, params: dict[str, Any], account: Account) -> Any:
        return [self._fill_json(f) for f in self._fills(params, account)[:1000]]

    def hf_fills(self, params: dict[str, Any], account: Account) -> Any:
        self._symbol(params)
        limit = min(_int(params.get("limit")) or 100, 100)
        fills = self._fills(params, account)[:limit]
        return {"items": [{**self._fill_json(f), "id": f.seq} for f in fills], "lastId": 0}


def _on_book(order: Order) -> bool:
    """Whether the regular order endpoints know the order: not a stop order before it triggered."""
    return not order.is_stop or order.triggered


def _page(items: list[Any], params: dict[str, Any], render: Any) -> dict[str, Any]:
    page = max(_int(params.get("currentPage")) or 1, 1)
    size = min(max(_int(params.get("pageSize")) or 50, 10), 500)
    chunk = items[(page - 1) * size : page * size]
    return {
        "currentPage": page,
        "pageSize": size,
        "totalNum": len(items),
        "totalPage": (len(items) + size - 1) // size,
        "items": [render(x) for x in chunk],
    }


def _b64_hmac(secret: str, message: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()).decode()


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise KucoinError("400100", "Parameter error.") from exc
