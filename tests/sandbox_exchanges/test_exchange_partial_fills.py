"""A resting limit order filled in parts (``fill_part``), as each exchange reports it to the real ccxt
clients: Binance PARTIALLY_FILLED with ``executedQty`` / ``cummulativeQuoteQty``, Kraken ``open`` with
``vol_exec`` / ``cost`` / ``fee``, KuCoin ``isActive`` with ``dealSize`` / ``dealFunds``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from sandbox.exchanges import ExchangeEmulator
from sandbox.exchanges.ledger import LedgerError
from tests.sandbox_exchanges.test_exchange_ccxt import MAKER, SYMBOL, balances, client_id, d, fee, find_order


async def test_a_resting_limit_buy_fills_in_parts(funded: tuple[ExchangeEmulator, Any]) -> None:
    emulator, client = funded
    eid = emulator.exchange_id
    price, amount = Decimal("60000"), Decimal("0.01")
    before = await balances(client)
    created = await client.create_order(
        SYMBOL, "limit", "buy", float(amount), float(price), params={"clientOrderId": client_id(eid, "pf")}
    )
    locked = d((await client.fetch_balance())["used"]["USDT"])

    emulator.fill_part("0.004", client_id=client_id(eid, "pf"))
    order = await find_order(client, created["id"])
    assert order["status"] == "open" and d(order["filled"]) == Decimal("0.004")
    assert d(order["remaining"]) == Decimal("0.006") and d(order["average"]) == price
    assert d(order["cost"]) == Decimal("240")
    raw = order["info"]
    if eid == "binance":
        assert raw["status"] == "PARTIALLY_FILLED" and d(raw["executedQty"]) == Decimal("0.004")
        assert d(raw["cummulativeQuoteQty"]) == Decimal("240")
    elif eid == "kraken":
        assert raw["status"] == "open" and d(raw["vol_exec"]) == Decimal("0.004")
        assert d(raw["fee"]) == fee(Decimal("240"), MAKER[eid])
    else:
        assert raw["isActive"] is True and d(raw["dealSize"]) == Decimal("0.004")
        assert d(raw["dealFunds"]) == Decimal("240") and d(raw["fee"]) == fee(Decimal("240"), MAKER[eid])
    assert [o["id"] for o in await client.fetch_open_orders(SYMBOL)] == [created["id"]]
    assert d((await client.fetch_balance())["used"]["USDT"]) < locked  # the filled part's funds are spent
    trades = await client.fetch_my_trades(SYMBOL)
    assert (
        len(trades) == 1
        and trades[0]["takerOrMaker"] == "maker"
        and d(trades[0]["amount"]) == Decimal("0.004")
    )

    emulator.market.set_price(SYMBOL, Decimal("59990"))  # the market crosses it: the rest fills
    order = await find_order(client, created["id"])
    assert order["status"] == "closed" and d(order["filled"]) == amount and d(order["average"]) == price
    assert d((await client.fetch_balance())["used"]["USDT"]) == 0
    after = await balances(client)
    if eid == "binance":  # the fee is taken from what the order receives, part by part
        fees = fee(Decimal("0.004"), MAKER[eid]) + fee(Decimal("0.006"), MAKER[eid])
        assert after["BTC"] - before["BTC"] == amount - fees
        assert before["USDT"] - after["USDT"] == price * amount
    else:
        fees = fee(Decimal("240"), MAKER[eid]) + fee(Decimal("360"), MAKER[eid])
        assert after["BTC"] - before["BTC"] == amount
        assert before["USDT"] - after["USDT"] == price * amount + fees
    assert len(await client.fetch_my_trades(SYMBOL)) == 2


async def test_a_partly_filled_order_cancelled_keeps_its_fills(funded: tuple[ExchangeEmulator, Any]) -> None:
    emulator, client = funded
    before = await balances(client)
    created = await client.create_order(SYMBOL, "limit", "sell", 0.1, 70000)
    emulator.fill_part("0.03", order_id=created["id"])
    await client.cancel_order(created["id"], SYMBOL)
    order = await find_order(client, created["id"])
    assert order["status"] == "canceled" and d(order["filled"]) == Decimal("0.03")
    assert d(order["cost"]) == Decimal("2100")
    assert d((await client.fetch_balance())["used"]["BTC"]) == 0
    after = await balances(client)
    assert before["BTC"] - after["BTC"] == Decimal("0.03")
    with pytest.raises(LedgerError):
        emulator.fill_part("0.01", order_id=created["id"])  # a cancelled order fills no more


async def test_fill_part_is_checked(funded: tuple[ExchangeEmulator, Any]) -> None:
    emulator, client = funded
    created = await client.create_order(SYMBOL, "limit", "buy", 0.01, 50000)
    for bad in ("0.02", "0", "0.000000001"):
        with pytest.raises(LedgerError):
            emulator.fill_part(bad, order_id=created["id"])
    emulator.fill_part("0.01", order_id=created["id"])  # all of it: the order is filled
    assert (await find_order(client, created["id"]))["status"] == "closed"
