"""Kraken spot REST emulator: ``/0/public/*`` and ``/0/private/*``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, replace
from decimal import Decimal
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from sandbox.exchanges.http import Frontend, fmt, json_response, to_decimal
from sandbox.exchanges.ledger import Account, ErrorKind, FeeSchedule, Fill, LedgerError, Order
from sandbox.exchanges.market import TIMEFRAMES, SymbolSpec

FEES = FeeSchedule(maker=Decimal("0.0025"), taker=Decimal("0.0040"), mode="quote")
LOT_STEP = Decimal("0.00000001")
ORDER_MIN = {
    "BTC": "0.00005",
    "ETH": "0.002",
    "SOL": "0.02",
    "XRP": "2",
    "BNB": "0.01",
    "ADA": "5",
    "DOGE": "20",
    "LTC": "0.05",
    "DOT": "0.3",
    "LINK": "0.2",
}
COST_MIN = {"USDT": Decimal("0.5"), "USD": Decimal("0.5"), "EUR": Decimal("0.5"), "BTC": Decimal("0.00002")}


@dataclass(frozen=True)
class Asset:
    id: str
    altname: str
    decimals: int
    display_decimals: int


ASSETS: dict[str, Asset] = {
    "BTC": Asset("XXBT", "XBT", 10, 5),
    "ETH": Asset("XETH", "ETH", 10, 5),
    "XRP": Asset("XXRP", "XRP", 8, 5),
    "DOGE": Asset("XXDG", "XDG", 8, 2),
    "LTC": Asset("XLTC", "LTC", 10, 5),
    "SOL": Asset("SOL", "SOL", 10, 5),
    "ADA": Asset("ADA", "ADA", 8, 6),
    "DOT": Asset("DOT", "DOT", 10, 8),
    "LINK": Asset("LINK", "LINK", 10, 5),
    "BNB": Asset("BNB", "BNB", 8, 5),
    "USDT": Asset("USDT", "USDT", 8, 4),
    "USD": Asset("ZUSD", "USD", 4, 2),
    "EUR": Asset("ZEUR", "EUR", 4, 2),
    "USDC": Asset("USDC", "USDC", 8, 4),
}


def asset(code: str) -> Asset:
    return ASSETS.get(code, Asset(code, code, 8, 5))


def pair_names(symbol: str) -> tuple[str, str, str]:
    """(key, altname, wsname) of a unified symbol, the way Kraken names its pairs."""
    base, quote = symbol.split("/")
    b, q = asset(base), asset(quote)
    altname = b.altname + q.altname
    wsname = f"{b.altname}/{q.altname}"
    classic = (
        b.id.startswith(("X", "Z")) and len(b.id) == 4 and q.id.startswith(("X", "Z")) and len(q.id) == 4
    )
    return (b.id + q.id if classic else altname), altname, wsname


def adapt_spec(spec: SymbolSpec) -> SymbolSpec:
    return replace(
        spec,
        step=LOT_STEP,
        min_amount=Decimal(ORDER_MIN.get(spec.base, "0.0001")),
        min_notional=COST_MIN.get(spec.quote, Decimal("0.5")),
    )


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _kraken_id(prefix: str, seq: int) -> str:
    digest = hashlib.sha256(f"{prefix}{seq}".encode()).digest()
    chars = "".join(_ALPHABET[b % 32] for b in digest[:16])
    return f"{prefix}{chars[:5]}-{chars[5:10]}-{chars[10:16]}"


def order_id(seq: int) -> str:
    return _kraken_id("O", seq)


def trade_id(seq: int) -> str:
    return _kraken_id("T", seq)


def make_secret() -> str:
    """A fresh Kraken-style API secret (base64 of 64 random bytes)."""
    return base64.b64encode(secrets.token_bytes(64)).decode()


def check_secret(secret: str) -> None:
    try:
        base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("Kraken API secrets are base64; use kraken.make_secret()") from exc


class KrakenError(Exception):
    def __init__(self, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.message, self.status = message, status


LEDGER_ERRORS: dict[ErrorKind, str] = {
    ErrorKind.INSUFFICIENT_FUNDS: "EOrder:Insufficient funds",
    ErrorKind.DUPLICATE_CLIENT_ID: "EOrder:Duplicate order",
    ErrorKind.AMOUNT_STEP: "EGeneral:Invalid arguments:volume",
    ErrorKind.MIN_AMOUNT: "EOrder:Order minimum not met",
    ErrorKind.PRICE_TICK: "EOrder:Tick size check failed",
    ErrorKind.MIN_NOTIONAL: "EOrder:Cost minimum not met",
    ErrorKind.UNKNOWN_SYMBOL: "EQuery:Unknown asset pair",
    ErrorKind.NO_LIQUIDITY: "EGeneral:Invalid arguments:volume",
    ErrorKind.POST_ONLY_WOULD_TAKE: "EOrder:Post only order",
    ErrorKind.TRADING_DISABLED: "EGeneral:Permission denied",
    ErrorKind.BAD_ARGUMENT: "EGeneral:Invalid arguments",
    ErrorKind.UNKNOWN_ORDER: "EOrder:Unknown order",
    ErrorKind.ORDER_NOT_OPEN: "EOrder:Unknown order",
    ErrorKind.WOULD_TRIGGER: "EOrder:Invalid price",
}
# stop order types: (executes as, trigger direction of a sell; a buy's is the other)
STOP_TYPES: dict[str, tuple[str, str]] = {
    "stop-loss": ("market", "down"),
    "stop-loss-limit": ("limit", "down"),
    "take-profit": ("market", "up"),
    "take-profit-limit": ("limit", "up"),
}


def ok(result: Any) -> web.Response:
    return json_response({"error": [], "result": result})


def fail(message: str, status: int = 200) -> web.Response:
    return json_response({"error": [message]}, status=status)


class KrakenFrontend(Frontend):
    exchange_id = "kraken"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._nonces: dict[str, int] = {}

    # -- plumbing --------------------------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        public: dict[str, Any] = {
            "Time": self.time,
            "SystemStatus": self.system_status,
            "Assets": self.assets,
            "AssetPairs": self.asset_pairs,
            "Ticker": self.ticker,
            "Depth": self.depth,
            "OHLC": self.ohlc,
            "Trades": self.trades,
        }
        for name, handler in public.items():
            app.router.add_route("*", f"/0/public/{name}", self._wrap(handler))
        private: dict[str, Any] = {
            "Balance": self.balance,
            "BalanceEx": self.balance_ex,
            "TradeBalance": self.trade_balance,
            "AddOrder": self.add_order,
            "CancelOrder": self.cancel_order,
            "CancelAll": self.cancel_all,
            "QueryOrders": self.query_orders,
            "OpenOrders": self.open_orders,
            "ClosedOrders": self.closed_orders,
            "TradesHistory": self.trades_history,
            "QueryTrades": self.query_trades,
            "TradeVolume": self.trade_volume,
        }
        for name, handler in private.items():
            app.router.add_post(f"/0/private/{name}", self._wrap(handler, signed=True))
        app.router.add_route("*", "/{tail:.*}", self._unknown)

    async def _unknown(self, request: web.Request) -> web.Response:
        raise web.HTTPNotFound()

    def not_found(self, request: web.Request) -> web.Response:
        return fail("EGeneral:Unknown method", status=404)

    def maintenance(self, request: web.Request) -> web.Response:
        return fail("EService:Unavailable", status=503)

    def is_order_creation(self, request: web.Request) -> bool:
        return request.path == "/0/private/AddOrder"

    def _wrap(self, handler: Any, signed: bool = False) -> Any:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            try:
                if not signed:
                    params = dict(parse_qsl(request.raw_path.partition("?")[2], keep_blank_values=True))
                    if request.method == "POST":
                        params.update(parse_qsl(await request.text(), keep_blank_values=True))
                    return ok(handler(params))
                params, account = await self._authenticate(request)
                return ok(handler(params, account))
            except KrakenError as exc:
                return fail(exc.message, exc.status)
            except LedgerError as exc:
                return fail(LEDGER_ERRORS[exc.kind])
            except ValueError:  # a malformed number in the request
                return fail("EGeneral:Invalid arguments")

        return endpoint

    async def _authenticate(self, request: web.Request) -> tuple[dict[str, str], Account]:
        body = await request.text()
        if request.content_type == "application/json":
            import json

            try:
                params = {k: str(v) for k, v in json.loads(body or "{}").items()}
            except ValueError as exc:
                raise KrakenError("EGeneral:Invalid arguments") from exc
        else:
            params = dict(parse_qsl(body, keep_blank_values=True))
        api_key = request.headers.get("API-Key", "")
        account = self.ledger.account(api_key) if api_key else None
        if account is None:
            raise KrakenError("EAPI:Invalid key")
        nonce_text = params.get("nonce", "")
        if not nonce_text.isdigit():
            raise KrakenError("EAPI:Invalid nonce")
        sign = request.headers.get("API-Sign", "")
        sha = hashlib.sha256((nonce_text + body).encode()).digest()
        mac = hmac.new(base64.b64decode(account.secret), request.path.encode() + sha, hashlib.sha512)
        if not hmac.compare_digest(base64.b64encode(mac.digest()).decode(), sign):
            raise KrakenError("EAPI:Invalid key")  # Kraken answers a bad API-Sign as an invalid key
        nonce = int(nonce_text)
        if nonce <= self._nonces.get(api_key, 0):
            raise KrakenError("EAPI:Invalid nonce")
        self._nonces[api_key] = nonce
        return params, account

    def _resolve_pair(self, name: str) -> str:
        for symbol in self.ledger.symbols:
            key, altname, wsname = pair_names(symbol)
            if name in (key, altname, wsname):
                return symbol
        raise KrakenError("EQuery:Unknown asset pair")

    def _pairs(self, params: dict[str, str], required: bool = True) -> list[str]:
        raw = params.get("pair", "")
        if not raw:
            if required:
                raise KrakenError("EGeneral:Invalid arguments")
            return list(self.ledger.symbols)
        return [self._resolve_pair(p) for p in raw.split(",")]

    @staticmethod
    def _places(step: Decimal) -> int:
        exponent = step.normalize().as_tuple().exponent
        return max(0, -exponent) if isinstance(exponent, int) else 0

    def _px(self, symbol: str, value: Decimal) -> str:
        return fmt(value, self._places(self.ledger.spec(symbol).tick))

    # -- public ----------------------------------------------------------------------------------------------
    def time(self, params: dict[str, str]) -> Any:
        now = time.time()
        return {"unixtime": int(now), "rfc1123": formatdate(now, usegmt=True)}

    def system_status(self, params: dict[str, str]) -> Any:
        return {"status": "online", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def assets(self, params: dict[str, str]) -> Any:
        codes = sorted({c for s in self.ledger.symbols for c in s.split("/")} | {"USD", "EUR"})
        result = {}
        for code in codes:
            a = asset(code)
            result[a.id] = {
                "aclass": "currency",
                "altname": a.altname,
                "decimals": a.decimals,
                "display_decimals": a.display_decimals,
                "collateral_value": 1.0,
                "status": "enabled",
            }
        return result

    def asset_pairs(self, params: dict[str, str]) -> Any:
        symbols = self._pairs(params, required=False)
        result = {}
        for symbol in symbols:
            spec = self.ledger.spec(symbol)
            key, altname, wsname = pair_names(symbol)
            result[key] = {
                "altname": altname,
                "wsname": wsname,
                "aclass_base": "currency",
                "base": asset(spec.base).id,
                "aclass_quote": "currency",
                "quote": asset(spec.quote).id,
                "lot": "unit",
                "cost_decimals": 5,
                "pair_decimals": self._places(spec.tick),
                "lot_decimals": 8,
                "lot_multiplier": 1,
                "leverage_buy": [],
                "leverage_sell": [],
                "fees": [[0, 0.4], [10000, 0.35], [50000, 0.24], [100000, 0.22], [250000, 0.2]],
                "fees_maker": [[0, 0.25], [10000, 0.2], [50000, 0.14], [100000, 0.12], [250000, 0.1]],
                "fee_volume_currency": "ZUSD",
                "margin_call": 80,
                "margin_stop": 40,
                "ordermin": fmt(spec.min_amount),
                "costmin": fmt(spec.min_notional),
                "tick_size": fmt(spec.tick),
                "status": "online",
            }
        return result

    def ticker(self, params: dict[str, str]) -> Any:
        result = {}
        for symbol in self._pairs(params, required=False):
            st = self.market.stats_24h(symbol)
            px = self._px
            result[pair_names(symbol)[0]] = {
                "a": [px(symbol, st.ask), fmt(st.ask_qty.to_integral_value()), fmt(st.ask_qty, 3)],
                "b": [px(symbol, st.bid), fmt(st.bid_qty.to_integral_value()), fmt(st.bid_qty, 3)],
                "c": [px(symbol, st.last), "0.00100000"],
                "v": [fmt(st.volume / 2, 8), fmt(st.volume, 8)],
                "p": [px(symbol, st.vwap), px(symbol, st.vwap)],
                "t": [500, 1000],
                "l": [px(symbol, st.low), px(symbol, st.low)],
                "h": [px(symbol, st.high), px(symbol, st.high)],
                "o": px(symbol, st.open),
            }
        return result

    def depth(self, params: dict[str, str]) -> Any:
        symbol = self._pairs(params)[0]
        count = min(int(params.get("count") or 100), 500)
        bids, asks = self.market.book(symbol, count)
        ts = self.market.now_ms() // 1000
        return {
            pair_names(symbol)[0]: {
                "asks": [[self._px(symbol, lv.price), fmt(lv.amount, 8), ts] for lv in asks],
                "bids": [[self._px(symbol, lv.price), fmt(lv.amount, 8), ts] for lv in bids],
            }
        }

    def ohlc(self, params: dict[str, str]) -> Any:
        symbol = self._pairs(params)[0]
        minutes = int(params.get("interval") or 1)
        timeframe = next((tf for tf, sec in TIMEFRAMES.items() if sec == minutes * 60), None)
        if timeframe is None:
            raise KrakenError("EGeneral:Invalid arguments")
        candles = self.market.candles(symbol, timeframe, limit=720)
        since = params.get("since")
        if since:
            candles = [c for c in candles if c.ts_ms // 1000 > int(since)]
        rows: list[list[Any]] = [
            [
                c.ts_ms // 1000,
                self._px(symbol, c.open),
                self._px(symbol, c.high),
                self._px(symbol, c.low),
                self._px(symbol, c.close),
                self._px(symbol, (c.high + c.low + c.close) / 3),
                fmt(c.volume, 8),
                100,
            ]
            for c in candles
        ]
        last = rows[-2][0] if len(rows) > 1 else (rows[-1][0] if rows else 0)
        return {pair_names(symbol)[0]: rows, "last": last}

    def trades(self, params: dict[str, str]) -> Any:
        symbol = self._pairs(params)[0]
        candles = self.market.candles(symbol, "1m", limit=100)
        rows = [
            [
                self._px(symbol, c.close),
                fmt(c.volume / 100, 8),
                (c.ts_ms + 59_000) / 1000,
                "b" if i % 2 else "s",
                "m",
                "",
                i + 1,
            ]
            for i, c in enumerate(candles)
        ]
        return {pair_names(symbol)[0]: rows, "last": str(self.market.now_ms() * 1_000_000)}

    # -- private ---------------------------------------------------------------------------------------------
    def balance(self, params: dict[str, str], account: Account) -> Any:
        return {asset(a).id: fmt(account.total(a), asset(a).decimals) for a in account.assets()}

    def balance_ex(self, params: dict[str, str], account: Account) -> Any:
        return {
            asset(a).id: {
                "balance": fmt(account.total(a), asset(a).decimals),
                "hold_trade": fmt(account.held(a), asset(a).decimals),
            }
            for a in account.assets()
        }

    def trade_balance(self, params: dict[str, str], account: Account) -> Any:
        usd = account.total("USDT") + account.total("USD")
        return {
            "eb": fmt(usd, 4),
            "tb": fmt(usd, 4),
            "m": "0.0000",
            "n": "0.0000",
            "c": "0.0000",
            "v": "0.0000",
            "e": fmt(usd, 4),
            "mf": fmt(usd, 4),
        }

    def trade_volume(self, params: dict[str, str], account: Account) -> Any:
        result: dict[str, Any] = {"currency": "ZUSD", "volume": "0.0000"}
        if params.get("pair"):
            fees = {
                pair_names(s)[0]: {
                    "fee": "0.4000",
                    "minfee": "0.1000",
                    "maxfee": "0.4000",
                    "nextfee": None,
                    "nextvolume": None,
                    "tiervolume": "0.0000",
                }
                for s in self._pairs(params)
            }
            result["fees"] = fees
            result["fees_maker"] = {
                k: {**v, "fee": "0.2500", "maxfee": "0.2500", "minfee": "0.0000"} for k, v in fees.items()
            }
        return result

    def add_order(self, params: dict[str, str], account: Account) -> Any:
        symbol = self._pairs(params)[0]
        side, order_type = params.get("type", ""), params.get("ordertype", "")
        if side not in ("buy", "sell") or order_type not in ("market", "limit", *STOP_TYPES):
            raise KrakenError(
                "EGeneral:Invalid arguments"
                if order_type in ("market", "limit", "")
                else "EOrder:Invalid order type"
            )
        volume = to_decimal(params.get("volume"))
        if volume is None:
            raise KrakenError("EGeneral:Invalid arguments:volume")
        price = to_decimal(params.get("price")) if order_type != "market" else None
        if order_type != "market" and price is None:
            raise KrakenError("EGeneral:Invalid arguments:price")
        price2 = to_decimal(params.get("price2")) if order_type.endswith("-limit") else None
        if order_type in STOP_TYPES and order_type.endswith("-limit") and price2 is None:
            raise KrakenError("EGeneral:Invalid arguments:price2")
        flags = set(filter(None, params.get("oflags", "").split(",")))
        cl_ord_id = params.get("cl_ord_id") or None
        userref_text = params.get("userref")
        if cl_ord_id is not None and userref_text:
            raise KrakenError("EGeneral:Invalid arguments:cl_ord_id")
        if cl_ord_id is not None and len(cl_ord_id) > 36:
            raise KrakenError("EGeneral:Invalid arguments:cl_ord_id")
        userref = _userref(userref_text)
        viqc = "viqc" in flags and order_type == "market"
        tif = params.get("timeinforce", "GTC").upper()
        validate = params.get("validate", "").lower() == "true"
        if order_type in STOP_TYPES:
            assert price is not None
            if params.get("trigger", "last") not in ("last", "index"):
                raise KrakenError("EGeneral:Invalid arguments:trigger")
            executes_as, sell_dir = STOP_TYPES[order_type]
            order = self.ledger.create_stop_order(
                account,
                symbol,
                side,
                executes_as,
                volume,
                price,
                sell_dir if side == "sell" else ("up" if sell_dir == "down" else "down"),
                price2,
                cl_ord_id,
                order_type,
                tif,
                validate_only=validate,
            )
            order.user_ref = userref
        else:
            order = self.ledger.create_order(
                account,
                symbol,
                side,
                order_type,
                None if viqc else volume,
                price,
                volume if viqc else None,
                cl_ord_id,
                userref,
                tif,
                "post" in flags,
                validate,
            )
        descr = {"order": self._descr(order)}
        if validate:
            return {"descr": descr}
        return {"descr": descr, "txid": [order.id]}

    def _descr(self, order: Order) -> str:
        altname = pair_names(order.symbol)[1]
        volume = fmt(order.amount if order.amount is not None else order.quote_amount, 8)
        if order.trigger_price is not None:  # "sell 0.1 XBTUSDT @ stop loss 60000.0 -> limit 59000.0"
            kind = order.stop_kind.removesuffix("-limit").replace("-", " ")
            text = f"{order.side} {volume} {altname} @ {kind} {self._px(order.symbol, order.trigger_price)}"
            if order.type == "limit" and order.price is not None:
                text += f" -> limit {self._px(order.symbol, order.price)}"
            return text
        text = f"{order.side} {volume} {altname} @ {order.type}"
        if order.type == "limit" and order.price is not None:
            text += f" {self._px(order.symbol, order.price)}"
        return text

    def _order_json(self, order: Order, with_trades: bool) -> dict[str, Any]:
        status = {"open": "open", "filled": "closed", "canceled": "canceled"}[order.status]
        price_text = self._px(order.symbol, order.price) if order.price is not None else "0"
        price2_text = "0"
        if order.trigger_price is not None:  # a stop order: price is the trigger, price2 the limit
            price2_text = price_text
            price_text = self._px(order.symbol, order.trigger_price)
        result: dict[str, Any] = {
            "refid": None,
            "userref": order.user_ref if order.user_ref is not None else 0,
            "status": status,
            "opentm": order.created_ms / 1000,
            "starttm": 0,
            "expiretm": 0,
            "descr": {
                "pair": pair_names(order.symbol)[1],
                "type": order.side,
                "ordertype": order.stop_kind or order.type,
                "price": price_text,
                "price2": price2_text,
                "leverage": "none",
                "order": self._descr(order),
                "close": "",
            },
            "vol": fmt(order.amount or Decimal(0), 8),
            "vol_exec": fmt(order.filled, 8),
            "cost": fmt(order.cost, 8),
            "fee": fmt(order.fee, 8),
            "price": self._px(order.symbol, order.average) if order.average is not None else "0.00000",
            "stopprice": self._px(order.symbol, order.trigger_price)
            if order.triggered and order.trigger_price is not None
            else "0.00000",
            "limitprice": price2_text if order.triggered and order.type == "limit" else "0.00000",
            "misc": "",
            "oflags": "fciq" + (",post" if order.post_only else ""),
        }
        if order.client_id is not None:
            result["cl_ord_id"] = order.client_id
        if not order.is_open:
            result["closetm"] = order.updated_ms / 1000
            result["reason"] = "User requested" if order.status == "canceled" else None
        if with_trades and order.fills:
            result["trades"] = [f.id for f in order.fills]
        return result

    def _filter(self, orders: list[Order], params: dict[str, str]) -> list[Order]:
        userref = _userref(params.get("userref"))
        cl_ord_id = params.get("cl_ord_id") or None
        start, end = _seconds(params.get("start")), _seconds(params.get("end"))
        return [
            o
            for o in orders
            if (userref is None or o.user_ref == userref)
            and (cl_ord_id is None or o.client_id == cl_ord_id)
            and (start is None or o.created_ms / 1000 > start)
            and (end is None or o.created_ms / 1000 <= end)
        ]

    def query_orders(self, params: dict[str, str], account: Account) -> Any:
        txids = [t for t in params.get("txid", "").split(",") if t]
        if not txids:
            raise KrakenError("EGeneral:Invalid arguments")
        with_trades = params.get("trades", "").lower() == "true"
        result = {}
        for txid in txids:
            order = self.ledger.orders.get(txid)
            if order is None or order.api_key != account.api_key:
                raise KrakenError("EOrder:Invalid order")
            result[txid] = order
        kept = {o.id for o in self._filter(list(result.values()), params)}
        return {k: self._order_json(o, with_trades) for k, o in result.items() if o.id in kept}

    def open_orders(self, params: dict[str, str], account: Account) -> Any:
        orders = self._filter(self.ledger.list_orders(account, status="open"), params)
        with_trades = params.get("trades", "").lower() == "true"
        return {"open": {o.id: self._order_json(o, with_trades) for o in reversed(orders)}}

    def closed_orders(self, params: dict[str, str], account: Account) -> Any:
        orders = list(reversed(self._filter(self.ledger.list_orders(account, status="closed"), params)))
        offset = int(params.get("ofs") or 0)
        with_trades = params.get("trades", "").lower() == "true"
        page = orders[offset : offset + 50]
        return {"closed": {o.id: self._order_json(o, with_trades) for o in page}, "count": len(orders)}

    def cancel_order(self, params: dict[str, str], account: Account) -> Any:
        txid, cl_ord_id = params.get("txid") or None, params.get("cl_ord_id") or None
        if txid is None and cl_ord_id is None:
            raise KrakenError("EGeneral:Invalid arguments")
        try:
            if txid is not None and not txid.startswith("O") and txid.lstrip("-").isdigit():
                orders = [
                    o for o in self.ledger.list_orders(account, status="open") if o.user_ref == int(txid)
                ]
                if not orders:
                    raise LedgerError(ErrorKind.UNKNOWN_ORDER)
                for order in orders:
                    self.ledger.cancel_order(account, order.id)
                return {"count": len(orders)}
            if cl_ord_id is not None:
                matches = [
                    o for o in self.ledger.list_orders(account, status="open") if o.client_id == cl_ord_id
                ]
                if not matches:
                    raise LedgerError(ErrorKind.UNKNOWN_ORDER)
                self.ledger.cancel_order(account, matches[-1].id)
            else:
                self.ledger.cancel_order(account, txid)
        except LedgerError as exc:
            if exc.kind in (ErrorKind.UNKNOWN_ORDER, ErrorKind.ORDER_NOT_OPEN):
                raise KrakenError("EOrder:Unknown order") from exc
            raise
        return {"count": 1}

    def cancel_all(self, params: dict[str, str], account: Account) -> Any:
        return {"count": len(self.ledger.cancel_all(account))}

    def _trade_json(self, fill: Fill) -> dict[str, Any]:
        order = self.ledger.orders[fill.order_id]
        return {
            "ordertxid": fill.order_id,
            "postxid": _kraken_id("T", fill.seq + 900_000),
            "pair": pair_names(fill.symbol)[0],
            "time": fill.ts_ms / 1000,
            "type": fill.side,
            "ordertype": order.type,
            "price": self._px(fill.symbol, fill.price),
            "cost": fmt(fill.cost, 8),
            "fee": fmt(fill.fee, 8),
            "vol": fmt(fill.amount, 8),
            "margin": "0.00000",
            "leverage": "0",
            "misc": "",
            "trade_id": fill.seq,
            "maker": fill.maker,
        }

    def trades_history(self, params: dict[str, str], account: Account) -> Any:
        fills = list(reversed(self.ledger.list_fills(account)))
        start, end = _seconds(params.get("start")), _seconds(params.get("end"))
        fills = [
            f
            for f in fills
            if (start is None or f.ts_ms / 1000 > start) and (end is None or f.ts_ms / 1000 <= end)
        ]
        offset = int(params.get("ofs") or 0)
        return {
            "trades": {f.id: self._trade_json(f) for f in fills[offset : offset + 50]},
            "count": len(fills),
        }

    def query_trades(self, params: dict[str, str], account: Account) -> Any:
        wanted = set(filter(None, params.get("txid", "").split(",")))
        fills = {f.id: f for f in self.ledger.list_fills(account)}
        if not wanted or not wanted <= set(fills):
            raise KrakenError("EGeneral:Invalid arguments")
        return {t: self._trade_json(fills[t]) for t in wanted}


def _userref(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise KrakenError("EGeneral:Invalid arguments:userref") from exc


def _seconds(value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise KrakenError("EGeneral:Invalid arguments") from exc
