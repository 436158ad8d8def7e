"""The emulators driven by the real ccxt async clients, for each of Binance, Kraken and KuCoin."""

from __future__ import annotations

import itertools
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest

from sandbox.exchanges import ExchangeEmulator
from tests.sandbox_exchanges.exchange_support import (
    API_KEY,
    PASSPHRASE,
    START_BALANCES,
    ClientFactory,
    secret_for,
)

SYMBOL = "BTC/USDT"
TAKER = {"binance": Decimal("0.001"), "kraken": Decimal("0.004"), "kucoin": Decimal("0.001")}
MAKER = {"binance": Decimal("0.001"), "kraken": Decimal("0.0025"), "kucoin": Decimal("0.001")}
ORDER_CREATE = {
    "binance": "POST /api/v3/order",
    "kraken": "POST /0/private/AddOrder",
    "kucoin": "POST /api/v1/orders",
}


def d(value: float | str | None) -> Decimal:
    assert value is not None
    return Decimal(str(value))


def fee(value: Decimal, rate: Decimal) -> Decimal:
    return (value * rate).quantize(Decimal("1e-8"), ROUND_HALF_UP)


async def balances(client: Any) -> dict[str, Decimal]:
    total = (await client.fetch_balance())["total"]
    return {code: d(total.get(code, 0)) for code in ("BTC", "USDT")}


async def find_order(client: Any, order_id: str) -> dict[str, Any]:
    return dict(await client.fetch_order(order_id, SYMBOL))


async def find_by_client_id(exchange_id: str, client: Any, client_id: str) -> dict[str, Any]:
    if exchange_id == "kraken":  # Kraken's QueryOrders needs a txid: look the order up in the order lists
        found = await client.fetch_open_orders(SYMBOL, params={"clientOrderId": client_id})
        found += await client.fetch_closed_orders(SYMBOL, params={"clientOrderId": client_id})
        assert len(found) == 1
        return dict(found[0])
    return dict(await client.fetch_order(None, SYMBOL, {"clientOrderId": client_id}))


def client_id(exchange_id: str, suffix: str) -> str:
    return f"cu{suffix}{exchange_id[:3]}"


# -- markets and market data ---------------------------------------------------------------------------------
async def test_load_markets_without_keys_is_spot_only(make_client: ClientFactory) -> None:
    client = await make_client()
    markets = client.markets
    assert SYMBOL in markets and "ETH/USDT" in markets and "ETH/BTC" in markets
    assert all(m["spot"] and not m["contract"] for m in markets.values())
    btc = markets[SYMBOL]
    assert btc["base"] == "BTC" and btc["quote"] == "USDT" and btc["active"]
    assert btc["precision"]["price"] == 0.01
    assert btc["limits"]["amount"]["min"] > 0


async def test_load_markets_with_keys(funded: tuple[ExchangeEmulator, Any]) -> None:
    _, client = funded
    assert SYMBOL in client.markets
    assert all(m["spot"] for m in client.markets.values())
    assert "BTC" in client.currencies and "USDT" in client.currencies


async def test_ticker_order_book_and_candles(emulator: ExchangeEmulator, make_client: ClientFactory) -> None:
    client = await make_client()
    emulator.market.set_price(SYMBOL, Decimal("64000"))
    ticker = await client.fetch_ticker(SYMBOL)
    assert ticker["last"] == 64000
    assert ticker["bid"] < 64000 < ticker["ask"]
    assert ticker["high"] >= ticker["low"] > 0

    limit = 100 if emulator.exchange_id == "kucoin" else 50  # KuCoin's public book is 20 or 100 deep
    book = await client.fetch_order_book(SYMBOL, limit)
    assert len(book["bids"]) >= 50 and len(book["asks"]) >= 50
    assert book["bids"][0][0] == ticker["bid"] and book["asks"][0][0] == ticker["ask"]
    assert [b[0] for b in book["bids"]] == sorted((b[0] for b in book["bids"]), reverse=True)
    assert [a[0] for a in book["asks"]] == sorted(a[0] for a in book["asks"])

    candles = await client.fetch_ohlcv(SYMBOL, "1h", limit=100)
    assert len(candles) == 100
    stamps = [c[0] for c in candles]
    assert stamps == sorted(stamps) and all(b - a == 3_600_000 for a, b in itertools.pairwise(stamps))
    assert all(c[2] >= max(c[1], c[4]) and c[3] <= min(c[1], c[4]) and c[5] > 0 for c in candles)
    assert candles[-1][4] == 64000

    assert abs(await client.fetch_time() - emulator.market.now_ms()) < 60_000
    assert (await client.fetch_status())["status"] == "ok"


async def test_long_candle_history(emulator: ExchangeEmulator, make_client: ClientFactory) -> None:
    client = await make_client()
    # Kraken's OHLC endpoint returns at most the last 720 candles, like the real one
    expected = 720 if emulator.exchange_id == "kraken" else 1000
    for timeframe in ("1m", "5m", "15m", "1h", "4h", "1d"):
        candles = await client.fetch_ohlcv(SYMBOL, timeframe, limit=1000)
        assert len(candles) == expected, timeframe


async def test_fetch_tickers(make_client: ClientFactory) -> None:
    client = await make_client()
    tickers = await client.fetch_tickers([SYMBOL, "ETH/USDT"])
    assert {SYMBOL, "ETH/USDT"} <= set(tickers)


# -- authentication ------------------------------------------------------------------------------------------
async def test_fetch_balance_with_valid_key(funded: tuple[ExchangeEmulator, Any]) -> None:
    _, client = funded
    balance = await client.fetch_balance()
    assert d(balance["free"]["USDT"]) == START_BALANCES["USDT"]
    assert d(balance["total"]["BTC"]) == START_BALANCES["BTC"]
    assert d(balance["used"]["BTC"]) == 0


async def test_wrong_secret_is_an_authentication_error(
    emulator: ExchangeEmulator, make_client: ClientFactory
) -> None:
    emulator.add_account(API_KEY, secret_for(emulator.exchange_id), passphrase=PASSPHRASE)
    client = await make_client(API_KEY, secret_for(emulator.exchange_id), PASSPHRASE, load=False)
    with pytest.raises(ccxt.AuthenticationError):
        await client.load_markets()
        await client.fetch_balance()


async def test_unknown_key_is_an_authentication_error(
    emulator: ExchangeEmulator, make_client: ClientFactory
) -> None:
    client = await make_client("no-such-key", secret_for(emulator.exchange_id), PASSPHRASE, load=False)
    with pytest.raises(ccxt.AuthenticationError):
        await client.load_markets()
        await client.fetch_balance()


@pytest.mark.parametrize("exchange_id", ["kucoin"])
async def test_kucoin_wrong_passphrase(emulator: ExchangeEmulator, make_client: ClientFactory) -> None:
    emulator.add_account(API_KEY, "secret", passphrase="right")
    client = await make_client(API_KEY, "secret", "wrong", load=False)
    with pytest.raises(ccxt.AuthenticationError, match="400004"):
        await client.fetch_balance()


# -- orders --------------------------------------------------------------------------------------------------
async def test_market_buy_walks_the_book_and_charges_the_taker_fee(
    funded: tuple[ExchangeEmulator, Any],
) -> None:
    emulator, client = funded
    eid = emulator.exchange_id
    _, asks = emulator.market.book(SYMBOL, 5)
    amount = asks[0].amount + Decimal("0.01")  # takes the whole first level and part of the second
    fills = [(asks[0].price, asks[0].amount), (asks[1].price, Decimal("0.01"))]
    cost = sum((p * q for p, q in fills), Decimal(0))
    before = await balances(client)

    created = await client.create_order(
        SYMBOL, "market", "buy", float(amount), params={"clientOrderId": client_id(eid, "mkt")}
    )
    order = await find_order(client, created["id"])

    assert order["status"] == "closed"
    assert d(order["filled"]) == amount
    # ccxt derives a Kraken order's cost from its (rounded) average price; the exact cost is in the payload
    assert (d(order["info"]["cost"]) if eid == "kraken" else d(order["cost"])) == cost
    after = await balances(client)
    if eid == "binance":  # commission in the asset received
        fees = sum((fee(q, TAKER[eid]) for _, q in fills), Decimal(0))
        assert after["BTC"] - before["BTC"] == amount - fees
        assert before["USDT"] - after["USDT"] == cost
    else:  # commission in the quote currency, on top of the cost
        fees = sum((fee(p * q, TAKER[eid]) for p, q in fills), Decimal(0))
        assert after["BTC"] - before["BTC"] == amount
        assert before["USDT"] - after["USDT"] == cost + fees
    trades = await client.fetch_my_trades(SYMBOL)
    assert [(d(t["price"]), d(t["amount"])) for t in trades] == fills


async def test_market_sell(funded: tuple[ExchangeEmulator, Any]) -> None:
    emulator, client = funded
    bids, _ = emulator.market.book(SYMBOL, 1)
    amount = Decimal("0.01")
    before = await balances(client)
    created = await client.create_order(SYMBOL, "market", "sell", float(amount))
    order = await find_order(client, created["id"])
    assert order["status"] == "closed" and d(order["average"]) == bids[0].price
    after = await balances(client)
    proceeds = bids[0].price * amount
    assert before["BTC"] - after["BTC"] == amount
    assert after["USDT"] - before["USDT"] == proceeds - fee(proceeds, TAKER[emulator.exchange_id])


async def test_limit_order_rests_then_fills_when_the_price_crosses(
    funded: tuple[ExchangeEmulator, Any],
) -> None:
    emulator, client = funded
    eid = emulator.exchange_id
    price, amount = Decimal("60000"), Decimal("0.05")
    before = await balances(client)
    created = await client.create_order(
        SYMBOL, "limit", "buy", float(amount), float(price), params={"clientOrderId": client_id(eid, "lim")}
    )
    order = await find_order(client, created["id"])
    assert order["status"] == "open" and d(order["filled"]) == 0
    assert [o["id"] for o in await client.fetch_open_orders(SYMBOL)] == [created["id"]]
    assert d((await client.fetch_balance())["used"]["USDT"]) > 0

    emulator.market.set_price(SYMBOL, Decimal("60500"))  # not yet: the best ask is still above the limit
    assert (await find_order(client, created["id"]))["status"] == "open"
    emulator.market.set_price(SYMBOL, Decimal("59990"))
    order = await find_order(client, created["id"])
    assert order["status"] == "closed" and d(order["filled"]) == amount and d(order["average"]) == price
    assert await client.fetch_open_orders(SYMBOL) == []
    assert [o["id"] for o in await client.fetch_closed_orders(SYMBOL)] == [created["id"]]

    after = await balances(client)
    cost = price * amount
    if eid == "binance":
        assert after["BTC"] - before["BTC"] == amount - fee(amount, MAKER[eid])
        assert before["USDT"] - after["USDT"] == cost
    else:
        assert after["BTC"] - before["BTC"] == amount
        assert before["USDT"] - after["USDT"] == cost + fee(cost, MAKER[eid])
    assert d((await client.fetch_balance())["used"]["USDT"]) == 0
    trades = await client.fetch_my_trades(SYMBOL)
    assert len(trades) == 1 and trades[0]["takerOrMaker"] == "maker"


async def test_limit_sell_fills_when_the_price_rises(funded: tuple[ExchangeEmulator, Any]) -> None:
    emulator, client = funded
    created = await client.create_order(SYMBOL, "limit", "sell", 0.1, 70000)
    assert d((await client.fetch_balance())["used"]["BTC"]) == Decimal("0.1")
    emulator.market.set_price(SYMBOL, Decimal("70100"))
    assert (await find_order(client, created["id"]))["status"] == "closed"


async def test_cancel_order(funded: tuple[ExchangeEmulator, Any]) -> None:
    emulator, client = funded
    before = await balances(client)
    created = await client.create_order(SYMBOL, "limit", "buy", 0.01, 50000)
    await client.cancel_order(created["id"], SYMBOL)
    order = await find_order(client, created["id"])
    assert order["status"] == "canceled" and d(order["filled"]) == 0
    assert await balances(client) == before
    assert d((await client.fetch_balance())["used"]["USDT"]) == 0
    emulator.market.set_price(SYMBOL, Decimal("49000"))  # a canceled order never fills
    assert (await find_order(client, created["id"]))["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        await client.cancel_order(created["id"], SYMBOL)


async def test_fetch_order_by_id_and_by_client_order_id(funded: tuple[ExchangeEmulator, Any]) -> None:
    emulator, client = funded
    cid = client_id(emulator.exchange_id, "q")
    created = await client.create_order(SYMBOL, "limit", "buy", 0.01, 50000, params={"clientOrderId": cid})
    by_id = await find_order(client, created["id"])
    assert by_id["id"] == created["id"] and by_id["clientOrderId"] == cid
    assert by_id["symbol"] == SYMBOL and by_id["side"] == "buy" and by_id["type"] == "limit"
    assert by_id["price"] == 50000 and by_id["amount"] == 0.01
    by_client = await find_by_client_id(emulator.exchange_id, client, cid)
    assert by_client["id"] == created["id"]


async def test_unknown_order(funded: tuple[ExchangeEmulator, Any]) -> None:
    emulator, client = funded
    unknown = {"binance": "123", "kraken": "OAAAAA-BBBBB-CCCCCC", "kucoin": "5bd6e9286d99522a52e458de"}
    # Kraken answers QueryOrders for an unknown txid with EOrder:Invalid order (ccxt: InvalidOrder)
    expected = ccxt.InvalidOrder if emulator.exchange_id == "kraken" else ccxt.OrderNotFound
    with pytest.raises(expected):
        await client.fetch_order(unknown[emulator.exchange_id], SYMBOL)
    with pytest.raises(ccxt.OrderNotFound):
        await client.cancel_order(unknown[emulator.exchange_id], SYMBOL)


async def test_duplicate_client_order_id_is_refused(funded: tuple[ExchangeEmulator, Any]) -> None:
    emulator, client = funded
    cid = client_id(emulator.exchange_id, "dup")
    await client.create_order(SYMBOL, "limit", "buy", 0.01, 50000, params={"clientOrderId": cid})
    # what ccxt makes of each exchange's refusal: Binance -2010 "Duplicate order sent." -> InvalidOrder,
    # KuCoin 400100 clientOidDuplicated -> BadRequest, Kraken "EOrder:Duplicate order" -> ExchangeError
    expected = {"binance": ccxt.InvalidOrder, "kraken": ccxt.ExchangeError, "kucoin": ccxt.BadRequest}
    with pytest.raises(expected[emulator.exchange_id]):
        await client.create_order(SYMBOL, "limit", "buy", 0.01, 50000, params={"clientOrderId": cid})
    assert len(await client.fetch_open_orders(SYMBOL)) == 1


async def test_client_order_id_reuse_after_the_order_closed(funded: tuple[ExchangeEmulator, Any]) -> None:
    """Binance and Kraken only keep client order ids unique among open orders; KuCoin forever."""
    emulator, client = funded
    cid = client_id(emulator.exchange_id, "re")
    await client.create_order(SYMBOL, "market", "buy", 0.001, params={"clientOrderId": cid})
    if emulator.exchange_id == "kucoin":
        with pytest.raises(ccxt.BadRequest):
            await client.create_order(SYMBOL, "market", "buy", 0.001, params={"clientOrderId": cid})
    else:
        await client.create_order(SYMBOL, "market", "buy", 0.001, params={"clientOrderId": cid})
        assert len(await client.fetch_my_trades(SYMBOL)) == 2


async def test_insufficient_funds(funded: tuple[ExchangeEmulator, Any]) -> None:
    _, client = funded
    before = await balances(client)
    with pytest.raises(ccxt.InsufficientFunds):
        await client.create_order(SYMBOL, "market", "buy", 20.0)
    with pytest.raises(ccxt.InsufficientFunds):
        await client.create_order(SYMBOL, "limit", "sell", 3.0, 70000)
    assert await balances(client) == before
    assert await client.fetch_open_orders(SYMBOL) == []


async def test_order_below_the_minimum_is_refused(funded: tuple[ExchangeEmulator, Any]) -> None:
    emulator, client = funded
    eid = emulator.exchange_id
    # Binance: 0.00005 BTC is above LOT_SIZE minQty but below the 5 USDT NOTIONAL filter (-1013: BadRequest);
    # Kraken: below ordermin 0.00005 (EOrder:Order minimum not met -> InvalidOrder);
    # KuCoin: below baseMinSize 0.00001 ("Order size below the minimum requirement." -> InvalidOrder)
    amount = {"binance": 0.00005, "kraken": 0.00001, "kucoin": 0.000001}[eid]
    expected = {"binance": ccxt.BadRequest, "kraken": ccxt.InvalidOrder, "kucoin": ccxt.InvalidOrder}[eid]
    with pytest.raises(expected):
        await client.create_order(SYMBOL, "limit", "buy", amount, 60000)
    assert await client.fetch_open_orders(SYMBOL) == []


@pytest.mark.parametrize("exchange_id", ["binance"])
async def test_binance_filter_failures(funded: tuple[ExchangeEmulator, Any]) -> None:
    _, client = funded
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        await client.private_post_order(
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.001",
                "price": "60000.001",
            }
        )
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        await client.private_post_order(
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.0010001",
                "price": "60000",
            }
        )
    with pytest.raises(ccxt.BadSymbol):
        await client.private_post_order(
            {"symbol": "NOPEUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"}
        )


@pytest.mark.parametrize("exchange_id", ["binance"])
async def test_binance_timestamp_outside_recv_window(funded: tuple[ExchangeEmulator, Any]) -> None:
    _, client = funded
    client.options["timeDifference"] = 120_000  # the client's clock is two minutes behind
    with pytest.raises(ccxt.InvalidNonce):
        await client.fetch_balance()


async def test_market_buy_by_cost(funded: tuple[ExchangeEmulator, Any]) -> None:
    _, client = funded
    order = await client.create_market_buy_order_with_cost(SYMBOL, 100)
    fetched = await find_order(client, order["id"])
    assert fetched["status"] == "closed"
    assert Decimal(99) < d(fetched["cost"]) <= Decimal(100)


# -- faults --------------------------------------------------------------------------------------------------
async def test_outage(emulator: ExchangeEmulator, make_client: ClientFactory) -> None:
    client = await make_client()
    emulator.outage(True)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await client.fetch_ticker(SYMBOL)
    emulator.outage(False)
    assert (await client.fetch_ticker(SYMBOL))["last"] > 0


async def test_fail_next(emulator: ExchangeEmulator, make_client: ClientFactory) -> None:
    client = await make_client()
    emulator.fail_next(1, status=502)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await client.fetch_ticker(SYMBOL)
    emulator.fail_next(1, status=504)
    with pytest.raises(ccxt.RequestTimeout):
        await client.fetch_ticker(SYMBOL)
    client.timeout = 500
    emulator.set_timeout_delay(5)
    emulator.fail_next(1, status="timeout")
    with pytest.raises(ccxt.RequestTimeout):
        await client.fetch_ticker(SYMBOL)
    assert (await client.fetch_ticker(SYMBOL))["last"] > 0


async def test_accept_then_timeout_is_reconciled_by_client_order_id(
    funded: tuple[ExchangeEmulator, Any],
) -> None:
    emulator, client = funded
    eid = emulator.exchange_id
    cid = client_id(eid, "tmo")
    before = await balances(client)
    client.timeout = 1000
    emulator.accept_then_timeout_next_order(delay=10)
    with pytest.raises(ccxt.RequestTimeout):
        await client.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": cid})
    client.timeout = 5000
    order = await find_by_client_id(eid, client, cid)
    assert order["status"] == "closed" and d(order["filled"]) == Decimal("0.01")
    assert (await balances(client))["BTC"] > before["BTC"]
    assert emulator.request_counts()[ORDER_CREATE[eid]] == 1


async def test_dropped_order_answer(funded: tuple[ExchangeEmulator, Any]) -> None:
    emulator, client = funded
    cid = client_id(emulator.exchange_id, "drp")
    emulator.accept_then_timeout_next_order(drop=True)
    with pytest.raises(ccxt.NetworkError):
        await client.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": cid})
    order = await find_by_client_id(emulator.exchange_id, client, cid)
    assert order["status"] == "closed"


@pytest.mark.parametrize("exchange_id", ["binance"])
async def test_binance_api_restrictions(emulator: ExchangeEmulator, make_client: ClientFactory) -> None:
    emulator.add_account("withdraw-key", "s1", can_withdraw=True)
    emulator.add_account("trade-key", "s2")
    client = await make_client("withdraw-key", "s1")
    assert (await client.sapi_get_account_apirestrictions())["enableWithdrawals"] is True
    client = await make_client("trade-key", "s2")
    restrictions = await client.sapi_get_account_apirestrictions()
    assert restrictions["enableWithdrawals"] is False and restrictions["enableSpotAndMarginTrading"] is True


async def test_request_log_counts(funded: tuple[ExchangeEmulator, Any]) -> None:
    emulator, client = funded
    emulator.reset_log()
    await client.create_order(SYMBOL, "market", "buy", 0.001)
    await client.create_order(SYMBOL, "market", "buy", 0.001)
    assert emulator.request_counts()[ORDER_CREATE[emulator.exchange_id]] == 2


@pytest.mark.parametrize("exchange_id", ["kucoin"])
async def test_kucoin_high_frequency_account(emulator: ExchangeEmulator, make_client: ClientFactory) -> None:
    """With ``options['hf'] = True`` ccxt uses KuCoin's /api/v1/hf/* order endpoints; they work the same."""
    emulator.add_account(API_KEY, "secret", passphrase=PASSPHRASE, balances=dict(START_BALANCES))
    client = await make_client(API_KEY, "secret", PASSPHRASE, load=False)
    client.options["hf"] = True
    await client.load_markets()
    created = await client.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "hf-1"})
    assert (await find_by_client_id("kucoin", client, "hf-1"))["id"] == created["id"]
    resting = await client.create_order(SYMBOL, "limit", "buy", 0.01, 50000)
    assert [o["id"] for o in await client.fetch_open_orders(SYMBOL)] == [resting["id"]]
    await client.cancel_order(resting["id"], SYMBOL)
    assert len(await client.fetch_closed_orders(SYMBOL)) == 2
    assert len(await client.fetch_my_trades(SYMBOL)) == 1
    assert emulator.request_counts()["POST /api/v1/hf/orders"] == 2
