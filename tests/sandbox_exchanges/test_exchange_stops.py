"""Native stop orders (stop-loss, take-profit) on the emulators, driven by the real ccxt clients: each
exchange's own request shape, the base asset reserved while the order waits, the trigger, the fill with its
fee, cancellation, and the lookups (KuCoin keeps untriggered stop orders on their own endpoints)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import ccxt.async_support as ccxt
import pytest

from sandbox.exchanges import ExchangeEmulator
from tests.sandbox_exchanges.test_exchange_ccxt import SYMBOL, TAKER, d, fee

STOP_CREATE = {
    "binance": "POST /api/v3/order",
    "kraken": "POST /0/private/AddOrder",
    "kucoin": "POST /api/v1/stop-order",
}


async def free_and_used(client: Any, code: str) -> tuple[Decimal, Decimal]:
    balance = await client.fetch_balance()
    return d(balance["free"].get(code, 0)), d(balance["used"].get(code, 0))


async def lookup(exchange_id: str, client: Any, order: dict[str, Any], cid: str) -> dict[str, Any]:
    """The stop order as the product looks it up: KuCoin's stop-order endpoint while it waits, then the
    regular order endpoints once it has triggered."""
    if exchange_id == "kucoin":  # by client id the stop-order endpoint answers [] once the order triggered
        waiting = await client.fetch_order(None, SYMBOL, {"clientOrderId": cid, "trigger": True})
        if waiting.get("id"):
            return dict(waiting)
        return dict(await client.fetch_order(None, SYMBOL, {"clientOrderId": cid}))
    return dict(await client.fetch_order(order["id"], SYMBOL))


def request_of(emulator: ExchangeEmulator) -> dict[str, Any]:
    """The parameters of the last stop order sent (query string, form or JSON body)."""
    created = [r for r in emulator.requests if r.endpoint == STOP_CREATE[emulator.exchange_id]]
    assert created, "no stop order was sent"
    record = created[-1]
    if record.body.startswith("{"):
        return {k: str(v) for k, v in json.loads(record.body).items()}
    return dict(parse_qsl(record.query)) | dict(parse_qsl(record.body))


async def test_stop_loss_market_waits_reserved_then_fills(funded: tuple[ExchangeEmulator, Any]) -> None:
    emulator, client = funded
    exchange_id = emulator.exchange_id
    market = emulator.market
    market.set_price(SYMBOL, "65000")
    amount = Decimal("0.01")
    cid = f"cusl{exchange_id[:3]}1"
    order = await client.create_order(
        SYMBOL, "market", "sell", float(amount), None, {"stopLossPrice": 60000, "clientOrderId": cid}
    )
    sent = request_of(emulator)
    if exchange_id == "binance":
        assert sent["type"] == "STOP_LOSS" and d(sent["stopPrice"]) == 60000 and "price" not in sent
    elif exchange_id == "kraken":
        assert sent["ordertype"] == "stop-loss" and d(sent["price"]) == 60000
    else:
        assert sent["stop"] == "loss" and d(sent["stopPrice"]) == 60000 and sent["type"] == "market"

    waiting = await lookup(exchange_id, client, order, cid)
    assert waiting["status"] == "open" and d(waiting.get("filled") or 0) == 0
    assert waiting["clientOrderId"] == cid
    trigger = waiting.get("stopLossPrice") or waiting.get("triggerPrice")
    assert d(trigger) == 60000
    free_btc, used_btc = await free_and_used(client, "BTC")
    assert used_btc == amount and free_btc == Decimal(2) - amount  # the base asset is reserved

    market.set_price(SYMBOL, "60500")  # not crossed yet
    assert (await lookup(exchange_id, client, order, cid))["status"] == "open"

    market.set_price(SYMBOL, "59990")  # through the stop: it becomes a market sell
    done = await lookup(exchange_id, client, order, cid)
    assert done["status"] == "closed" and d(done["filled"]) == amount
    bid = market.best_bid(SYMBOL)
    assert d(done["average"]) == bid
    free_btc, used_btc = await free_and_used(client, "BTC")
    assert used_btc == 0 and free_btc == Decimal(2) - amount
    usdt = d((await client.fetch_balance())["total"]["USDT"])
    assert usdt == Decimal(1_000_000) + bid * amount - fee(bid * amount, TAKER[exchange_id])
    assert [o for o in await client.fetch_open_orders(SYMBOL) if o["clientOrderId"] == cid] == []


async def test_take_profit_and_stop_limit(funded: tuple[ExchangeEmulator, Any]) -> None:
    emulator, client = funded
    exchange_id = emulator.exchange_id
    market = emulator.market
    market.set_price(SYMBOL, "65000")
    tp_cid, sl_cid = f"cutp{exchange_id[:3]}", f"cusll{exchange_id[:3]}"
    tp = await client.create_order(
        SYMBOL, "market", "sell", 0.02, None, {"takeProfitPrice": 70000, "clientOrderId": tp_cid}
    )
    sl = await client.create_order(
        SYMBOL, "limit", "sell", 0.03, 59000, {"stopLossPrice": 60000, "clientOrderId": sl_cid}
    )
    sent = request_of(emulator)
    if exchange_id == "binance":
        assert sent["type"] == "STOP_LOSS_LIMIT" and d(sent["price"]) == 59000
    elif exchange_id == "kraken":
        assert sent["ordertype"] == "stop-loss-limit" and d(sent["price2"]) == 59000
    else:
        assert sent["type"] == "limit" and d(sent["price"]) == 59000 and sent["stop"] == "loss"
    _, used = await free_and_used(client, "BTC")
    assert used == Decimal("0.05")

    market.set_price(SYMBOL, "70100")
    assert (await lookup(exchange_id, client, tp, tp_cid))["status"] == "closed"
    assert (await lookup(exchange_id, client, sl, sl_cid))["status"] == "open"

    market.set_price(SYMBOL, "59500")  # triggers the stop-limit; its limit 59000 is below the bid: it takes
    filled = await lookup(exchange_id, client, sl, sl_cid)
    assert filled["status"] == "closed" and d(filled["filled"]) == Decimal("0.03")
    assert d(filled["average"]) >= 59000
    _, used = await free_and_used(client, "BTC")
    assert used == 0


async def test_cancel_stop_releases_the_reservation(funded: tuple[ExchangeEmulator, Any]) -> None:
    emulator, client = funded
    exchange_id = emulator.exchange_id
    emulator.market.set_price(SYMBOL, "65000")
    cid = f"cucx{exchange_id[:3]}"
    order = await client.create_order(
        SYMBOL, "market", "sell", 0.01, None, {"stopLossPrice": 60000, "clientOrderId": cid}
    )
    params = {"trigger": True} if exchange_id == "kucoin" else {}
    listed = await client.fetch_open_orders(SYMBOL, None, None, dict(params))
    assert [o["id"] for o in listed] == [order["id"]]
    await client.cancel_order(order["id"], SYMBOL, params)
    _, used = await free_and_used(client, "BTC")
    assert used == 0
    emulator.market.set_price(SYMBOL, "59000")
    free_btc, used = await free_and_used(client, "BTC")
    assert free_btc == Decimal(2) and used == 0  # nothing was sold
    with pytest.raises(ccxt.OrderNotFound):
        await client.cancel_order(order["id"], SYMBOL, params)


async def test_stop_already_crossed(funded: tuple[ExchangeEmulator, Any]) -> None:
    """Binance refuses a stop whose trigger is already crossed; Kraken and KuCoin trigger it at once."""
    emulator, client = funded
    exchange_id = emulator.exchange_id
    emulator.market.set_price(SYMBOL, "65000")
    cid = f"cuim{exchange_id[:3]}"
    params = {"stopLossPrice": 66000, "clientOrderId": cid}
    if exchange_id == "binance":
        with pytest.raises(ccxt.OrderImmediatelyFillable):
            await client.create_order(SYMBOL, "market", "sell", 0.01, None, params)
        return
    order = await client.create_order(SYMBOL, "market", "sell", 0.01, None, params)
    done = await lookup(exchange_id, client, order, cid)
    assert done["status"] == "closed" and d(done["filled"]) == Decimal("0.01")


async def test_stop_insufficient_base(funded: tuple[ExchangeEmulator, Any]) -> None:
    emulator, client = funded
    emulator.market.set_price(SYMBOL, "65000")
    with pytest.raises(ccxt.InsufficientFunds):
        await client.create_order(
            SYMBOL, "market", "sell", 3, None, {"stopLossPrice": 60000, "clientOrderId": "cunofunds"}
        )
