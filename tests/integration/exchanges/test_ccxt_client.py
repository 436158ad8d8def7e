"""CcxtExchangeClient and ExchangeRegistry: the real ccxt against the Binance, Kraken and KuCoin emulators."""

from __future__ import annotations

import itertools
import time
from decimal import ROUND_HALF_UP, Decimal

import pytest

from sandbox.exchanges import ExchangeEmulator
from services.exchanges.breaker import BreakerState
from services.exchanges.ccxt_client import CcxtExchangeClient
from services.exchanges.errors import (
    ExchangeAuthError,
    ExchangeTemporaryError,
    ExchangeUnavailable,
    InsufficientFundsError,
    OrderBelowMinimum,
    OrderNotPlaced,
    OrderOutcomeUnknown,
    UnknownSymbolError,
)
from services.exchanges.registry import ExchangeRegistry
from services.exchanges.types import Balance, Candle, Credentials, MarketInfo
from tests.integration.exchanges.conftest import (
    ORDER_CREATE,
    ORDER_PATH,
    SYMBOL,
    FakeClock,
    RegistryFactory,
)
from tests.sandbox_exchanges.exchange_support import PASSPHRASE, START_BALANCES, secret_for

TAKER = {"binance": Decimal("0.001"), "kraken": Decimal("0.004"), "kucoin": Decimal("0.001")}
MARKET_REQUESTS = {  # what loading the markets costs on each exchange
    "binance": {"GET /api/v3/exchangeInfo"},
    "kraken": {"GET /0/public/Assets", "GET /0/public/AssetPairs"},
    "kucoin": {"GET /api/v3/currencies", "GET /api/v2/symbols", "GET /api/v1/market/allTickers"},
}


def fee(value: Decimal, rate: Decimal) -> Decimal:
    return (value * rate).quantize(Decimal("1e-8"), ROUND_HALF_UP)


def cid(exchange_id: str, suffix: str) -> str:
    return f"cu{suffix}{exchange_id[:3]}"


# -- markets and market data -------------------------------------------------------------------------------
async def test_load_markets_spot_only(registry: ExchangeRegistry, exchange_id: str) -> None:
    markets = await registry.public(exchange_id).load_markets()
    assert {SYMBOL, "ETH/USDT", "ETH/BTC"} <= set(markets)
    assert all(isinstance(m, MarketInfo) and ":" not in m.symbol for m in markets.values())
    btc = markets[SYMBOL]
    assert (btc.base, btc.quote) == ("BTC", "USDT")
    assert btc.price_step == Decimal("0.01")
    assert isinstance(btc.amount_step, Decimal) and btc.amount_step > 0
    assert isinstance(btc.min_amount, Decimal) and btc.min_amount > 0
    assert isinstance(btc.min_cost, Decimal) and btc.min_cost > 0
    assert btc.taker_fee == TAKER[exchange_id]


async def test_ticker_book_and_candles_are_decimals(
    registry: ExchangeRegistry, emulator: ExchangeEmulator, exchange_id: str
) -> None:
    client = registry.public(exchange_id)
    emulator.market.set_price(SYMBOL, Decimal("64000"))
    ticker = await client.fetch_ticker(SYMBOL)
    assert ticker.last == Decimal("64000")
    assert ticker.bid is not None and ticker.ask is not None and ticker.bid < ticker.last < ticker.ask
    assert all(
        isinstance(v, Decimal)
        for v in (ticker.high, ticker.low, ticker.base_volume, ticker.quote_volume, ticker.change_pct)
    )
    assert ticker.timestamp_ms > 0

    emulator.reset_log()
    book = await client.fetch_order_book(SYMBOL, 50)  # KuCoin serves 20 or 100 levels: asks 100, trims
    assert len(book.bids) == len(book.asks) == 50
    assert book.bids[0][0] == ticker.bid and book.asks[0][0] == ticker.ask
    assert [b[0] for b in book.bids] == sorted((b[0] for b in book.bids), reverse=True)
    assert all(isinstance(p, Decimal) and isinstance(a, Decimal) for p, a in book.bids + book.asks)
    assert len((await client.fetch_order_book(SYMBOL, 7)).asks) == 7
    if exchange_id == "kucoin":
        assert set(emulator.request_counts()) == {
            "GET /api/v1/market/orderbook/level2_100",
            "GET /api/v1/market/orderbook/level2_20",
        }

    candles = await client.fetch_ohlcv(SYMBOL, "1h", limit=100)
    assert len(candles) == 100 and all(isinstance(c, Candle) for c in candles)
    assert all(b.timestamp_ms - a.timestamp_ms == 3_600_000 for a, b in itertools.pairwise(candles))
    assert candles[-1].close == Decimal("64000") and isinstance(candles[-1].volume, Decimal)

    tickers = await client.fetch_tickers([SYMBOL, "ETH/USDT"])
    assert set(tickers) == {SYMBOL, "ETH/USDT"} and tickers[SYMBOL].last == Decimal("64000")


async def test_unknown_symbol_suggests_the_closest(
    registry: ExchangeRegistry, emulator: ExchangeEmulator, exchange_id: str
) -> None:
    client = registry.public(exchange_id)
    await client.load_markets()
    emulator.reset_log()
    with pytest.raises(UnknownSymbolError) as info:
        await client.fetch_ticker("BTCC")
    assert info.value.suggestions[0] == SYMBOL
    assert info.value.params["symbol"] == "BTCC" and info.value.params["suggestion"] == SYMBOL
    assert info.value.message_key == "exchange.unknown_symbol"
    assert emulator.requests == []  # refused from the loaded markets, nothing sent


# -- account --------------------------------------------------------------------------------------------
async def test_balance_with_a_valid_key(private: CcxtExchangeClient) -> None:
    balances = await private.fetch_balance()
    assert balances["USDT"] == Balance("USDT", START_BALANCES["USDT"], Decimal(0), START_BALANCES["USDT"])
    assert balances["BTC"].total == START_BALANCES["BTC"] and balances["BTC"].used == 0


async def test_wrong_secret_is_an_auth_error(
    registry: ExchangeRegistry, credentials: Credentials, exchange_id: str
) -> None:
    wrong = Credentials(credentials.api_key, secret_for(exchange_id), PASSPHRASE)
    async with registry.private(exchange_id, wrong) as client:
        with pytest.raises(ExchangeAuthError) as info:
            await client.fetch_balance()
    assert info.value.message_key == "exchange.auth_failed"
    assert "signature=" not in str(info.value) and wrong.secret not in str(info.value.params)
    assert registry.breaker(exchange_id).state is BreakerState.CLOSED  # the exchange answered


async def test_private_client_reuses_the_public_markets(
    registry: ExchangeRegistry, credentials: Credentials, emulator: ExchangeEmulator, exchange_id: str
) -> None:
    await registry.public(exchange_id).load_markets()
    emulator.reset_log()
    started = time.perf_counter()
    clients = [registry.private(exchange_id, credentials) for _ in range(20)]
    per_client_ms = (time.perf_counter() - started) * 1000 / len(clients)
    try:
        balances = [await c.fetch_balance() for c in clients[:3]]
        assert all(b["USDT"].total == START_BALANCES["USDT"] for b in balances)
        assert (await clients[0].market(SYMBOL)).symbol == SYMBOL
    finally:
        started = time.perf_counter()
        for client in clients:
            await client.close()
        close_ms = (time.perf_counter() - started) * 1000 / len(clients)
    assert not MARKET_REQUESTS[exchange_id] & set(emulator.request_counts())
    print(f"\n{exchange_id}: private client {per_client_ms:.1f} ms to create, {close_ms:.2f} ms to close")
    assert per_client_ms < 100 and close_ms < 50


async def test_insufficient_funds(private: CcxtExchangeClient) -> None:
    with pytest.raises(InsufficientFundsError):
        await private.place_order(SYMBOL, "buy", "market", Decimal("20"), None, "cu-funds")


# -- orders -------------------------------------------------------------------------------------------
async def test_market_buy_is_filled_with_the_exact_cost_and_fee(
    private: CcxtExchangeClient, emulator: ExchangeEmulator, exchange_id: str
) -> None:
    _, asks = emulator.market.book(SYMBOL, 5)
    amount = asks[0].amount + Decimal("0.01")  # the whole first level and part of the second
    fills = [(asks[0].price, asks[0].amount), (asks[1].price, Decimal("0.01"))]
    cost = sum((p * q for p, q in fills), Decimal(0))
    client_id = cid(exchange_id, "mkt")

    order = await private.place_order(SYMBOL, "buy", "market", amount, None, client_id)

    assert order.status == "closed" and order.client_order_id == client_id
    assert (order.symbol, order.side, order.order_type) == (SYMBOL, "buy", "market")
    assert order.amount == amount and order.filled == amount
    assert order.cost == cost and order.price is None
    assert order.average_price is not None and asks[0].price < order.average_price < asks[1].price
    if exchange_id == "binance":  # commission in the asset received
        assert order.fee == sum((fee(q, TAKER[exchange_id]) for _, q in fills), Decimal(0))
        assert order.fee_asset == "BTC"
    else:
        assert order.fee == sum((fee(p * q, TAKER[exchange_id]) for p, q in fills), Decimal(0))
        assert order.fee_asset == "USDT"
    assert emulator.request_counts()[ORDER_CREATE[exchange_id]] == 1

    found = await private.find_order(SYMBOL, client_id)
    assert found == order


async def test_market_sell(private: CcxtExchangeClient, emulator: ExchangeEmulator, exchange_id: str) -> None:
    bids, _ = emulator.market.book(SYMBOL, 1)
    order = await private.place_order(
        SYMBOL, "sell", "market", Decimal("0.01"), None, cid(exchange_id, "sell")
    )
    assert order.status == "closed" and order.filled == Decimal("0.01")
    assert order.cost == bids[0].price * Decimal("0.01") and order.average_price == bids[0].price
    assert order.fee == fee(order.cost, TAKER[exchange_id]) and order.fee_asset == "USDT"


async def test_limit_order_is_rounded_found_and_canceled(
    private: CcxtExchangeClient, emulator: ExchangeEmulator, exchange_id: str
) -> None:
    client_id = cid(exchange_id, "lim")
    amount = Decimal("0.0123456789")
    order = await private.place_order(SYMBOL, "buy", "limit", amount, Decimal("50000.004"), client_id)
    assert order.status == "open" and order.filled == 0 and order.cost == 0
    assert order.price == Decimal("50000") and order.amount == private.amount_to_precision(SYMBOL, amount)
    assert order.amount <= amount and amount - order.amount < (await private.market(SYMBOL)).amount_step  # type: ignore[operator]

    found = await private.find_order(SYMBOL, client_id)
    assert found is not None and found.exchange_order_id == order.exchange_order_id
    assert found.status == "open" and found.client_order_id == client_id
    assert await private.find_order(SYMBOL, "cu-no-such-order") is None
    assert [o.exchange_order_id for o in await private.fetch_open_orders(SYMBOL)] == [order.exchange_order_id]
    assert (await private.fetch_order(SYMBOL, order.exchange_order_id)).status == "open"

    canceled = await private.cancel_order(SYMBOL, order.exchange_order_id)
    assert canceled is not None and canceled.status == "canceled" and canceled.filled == 0
    assert await private.fetch_open_orders(SYMBOL) == []
    again = await private.cancel_order(SYMBOL, order.exchange_order_id)  # already canceled: its state
    assert again is not None and again.status == "canceled"
    unknown = {"binance": "123", "kraken": "OAAAAA-BBBBB-CCCCCC", "kucoin": "5bd6e9286d99522a52e458de"}
    assert await private.cancel_order(SYMBOL, unknown[exchange_id]) is None


async def test_duplicate_client_id_returns_the_open_order(
    private: CcxtExchangeClient, emulator: ExchangeEmulator, exchange_id: str
) -> None:
    client_id = cid(exchange_id, "dup")
    first = await private.place_order(SYMBOL, "buy", "limit", Decimal("0.01"), Decimal("50000"), client_id)
    second = await private.place_order(SYMBOL, "buy", "limit", Decimal("0.01"), Decimal("50000"), client_id)
    assert second.exchange_order_id == first.exchange_order_id
    assert len(await private.fetch_open_orders(SYMBOL)) == 1
    assert emulator.request_counts()[ORDER_CREATE[exchange_id]] == 2  # sent, refused as a duplicate


@pytest.mark.parametrize(
    ("order_type", "amount", "price", "which"),
    [
        ("limit", Decimal("0.000001"), Decimal("60000"), "amount"),  # below the minimum amount
        ("limit", Decimal("0.00005"), Decimal("1000"), "cost"),  # 0.05 USDT: below every min notional
        ("market", Decimal("0.00005"), None, "cost_binance"),  # ~3.25 USDT: below Binance's 5 USDT
    ],
)
async def test_below_minimum_is_refused_before_sending(
    private: CcxtExchangeClient,
    emulator: ExchangeEmulator,
    exchange_id: str,
    order_type: str,
    amount: Decimal,
    price: Decimal | None,
    which: str,
) -> None:
    if which == "cost_binance" and exchange_id != "binance":
        pytest.skip("above Kraken's and KuCoin's minimum notional")
    market = await private.market(SYMBOL)
    with pytest.raises(OrderBelowMinimum) as info:
        await private.place_order(SYMBOL, "buy", order_type, amount, price, cid(exchange_id, "min"))  # type: ignore[arg-type]
    error = info.value
    if which == "amount":
        assert error.unit == "BTC" and error.minimum == max(market.min_amount or 0, market.amount_step or 0)
    else:
        assert error.unit == "USDT" and error.minimum == market.min_cost
        assert error.params["minimum_base"] > 0 and error.params["base"] == "BTC"
    assert error.message_key == "exchange.order_below_minimum"
    assert ORDER_CREATE[exchange_id] not in emulator.request_counts()


# -- faults ---------------------------------------------------------------------------------------------
async def test_outage_opens_the_breaker_and_a_probe_closes_it(
    registry: ExchangeRegistry, emulator: ExchangeEmulator, clock: FakeClock, exchange_id: str
) -> None:
    client = registry.public(exchange_id)
    breaker = registry.breaker(exchange_id)
    changes: list[tuple[str, BreakerState, BreakerState]] = []
    breaker.on_change(lambda name, old, new: changes.append((name, old, new)))
    await client.load_markets()

    emulator.outage(True)
    with pytest.raises(ExchangeTemporaryError):  # 2 attempts: 2 failures of 3
        await client.fetch_ticker(SYMBOL)
    assert breaker.state is BreakerState.CLOSED and breaker.consecutive_failures == 2
    with pytest.raises(ExchangeUnavailable):  # the 3rd failure opens it; the retry is refused at once
        await client.fetch_ticker(SYMBOL)
    assert breaker.state is BreakerState.OPEN

    sent = len(emulator.requests)
    with pytest.raises(ExchangeUnavailable) as info:
        await client.fetch_order_book(SYMBOL)
    assert len(emulator.requests) == sent  # answered without a request
    assert info.value.params == {"exchange": exchange_id, "detail": None, "retry_in": 30}

    clock.advance(30)  # the probe fails: open again
    with pytest.raises(ExchangeUnavailable):
        await client.fetch_ticker(SYMBOL)
    assert breaker.state is BreakerState.OPEN and len(emulator.requests) == sent + 1

    emulator.outage(False)
    clock.advance(30)
    assert (await client.fetch_ticker(SYMBOL)).last > 0  # the probe succeeds
    assert breaker.state is BreakerState.CLOSED
    opened, half, closed = BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED
    path = [closed, opened, half, opened, half, closed]
    assert changes == [(exchange_id, a, b) for a, b in itertools.pairwise(path)]
    stats = breaker.stats()
    assert stats.opened == 2 and stats.rejected >= 2 and stats.failures == 4


async def test_order_accepted_then_timed_out_is_found_not_resent(
    make_registry: RegistryFactory, credentials: Credentials, emulator: ExchangeEmulator, exchange_id: str
) -> None:
    registry = make_registry(timeout_ms=600)
    emulator.accept_then_timeout_next_order(delay=5)
    client_id = cid(exchange_id, "tmo")
    async with registry.private(exchange_id, credentials) as client:
        order = await client.place_order(SYMBOL, "buy", "market", Decimal("0.01"), None, client_id)
    assert order.status == "closed" and order.filled == Decimal("0.01") and order.client_order_id == client_id
    assert order.cost > 0 and order.fee > 0
    assert emulator.request_counts()[ORDER_CREATE[exchange_id]] == 1
    assert emulator.balances(credentials.api_key)["BTC"] > START_BALANCES["BTC"]


async def test_dropped_order_answer_is_found_not_resent(
    private: CcxtExchangeClient, emulator: ExchangeEmulator, exchange_id: str
) -> None:
    emulator.accept_then_timeout_next_order(drop=True)
    order = await private.place_order(SYMBOL, "buy", "market", Decimal("0.01"), None, cid(exchange_id, "drp"))
    assert order.status == "closed" and order.filled == Decimal("0.01")
    assert emulator.request_counts()[ORDER_CREATE[exchange_id]] == 1


async def test_order_refused_by_a_proxy_is_reported_not_placed(
    private: CcxtExchangeClient, emulator: ExchangeEmulator, exchange_id: str
) -> None:
    emulator.fail_next(1, status=502, path=ORDER_PATH[exchange_id])  # never reaches the exchange
    client_id = cid(exchange_id, "502")
    with pytest.raises(OrderNotPlaced) as info:
        await private.place_order(SYMBOL, "buy", "market", Decimal("0.01"), None, client_id)
    assert info.value.params["client_order_id"] == client_id
    assert info.value.message_key == "exchange.order_not_placed"
    assert emulator.request_counts()[ORDER_CREATE[exchange_id]] == 1
    assert emulator.balances("test-key")["BTC"] == START_BALANCES["BTC"]


async def test_order_outcome_unknown_when_the_lookups_fail(
    registry: ExchangeRegistry, credentials: Credentials, emulator: ExchangeEmulator, exchange_id: str
) -> None:
    sleeps: list[float] = []

    async def outage_after_the_order(seconds: float) -> None:
        sleeps.append(seconds)
        emulator.outage(True)  # every lookup by client id fails

    client = CcxtExchangeClient(
        exchange_id,
        api_url=emulator.base_url,
        credentials=credentials,
        timeout_ms=600,
        breaker=registry.breaker(exchange_id),
        markets_source=registry.public(exchange_id),
        retry_attempts=1,
        lookup_attempts=3,
        sleep=outage_after_the_order,
        rate_limit=False,
    )
    emulator.accept_then_timeout_next_order(delay=5)
    client_id = cid(exchange_id, "unk")
    try:
        with pytest.raises(OrderOutcomeUnknown) as info:
            await client.place_order(SYMBOL, "buy", "market", Decimal("0.01"), None, client_id)
        assert info.value.message_key == "exchange.order_outcome_unknown"
        assert info.value.params["client_order_id"] == client_id and len(sleeps) == 3
        assert emulator.request_counts()[ORDER_CREATE[exchange_id]] == 1  # never resent
        emulator.outage(False)
        registry.breaker(exchange_id).reset()
        found = await client.find_order(SYMBOL, client_id)  # the later check settles it
        assert found is not None and found.status == "closed"
    finally:
        await client.close()


@pytest.mark.parametrize("exchange_id", ["binance"])
async def test_binance_withdrawal_permission(
    registry: ExchangeRegistry, emulator: ExchangeEmulator, exchange_id: str
) -> None:
    emulator.add_account("withdraw-key", "s1", can_withdraw=True)
    emulator.add_account("trade-key", "s2")
    async with registry.private(exchange_id, Credentials("withdraw-key", "s1")) as client:
        assert await client.withdrawal_enabled() is True
    async with registry.private(exchange_id, Credentials("trade-key", "s2")) as client:
        assert await client.withdrawal_enabled() is False


@pytest.mark.parametrize("exchange_id", ["kraken", "kucoin"])
async def test_withdrawal_permission_unknown_elsewhere(private: CcxtExchangeClient) -> None:
    assert await private.withdrawal_enabled() is None
