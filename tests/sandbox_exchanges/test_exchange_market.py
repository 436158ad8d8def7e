"""The simulated market and the order ledger, without HTTP."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.exchanges.ledger import ErrorKind, FeeSchedule, Ledger, LedgerError
from sandbox.exchanges.market import HISTORY_CANDLES, TIMEFRAMES, Market

BTC = "BTC/USDT"


def ledger(market: Market, mode: str = "received") -> Ledger:
    return Ledger(market, FeeSchedule(mode=mode), str, lambda n: f"t{n}")


def test_same_seed_same_market() -> None:
    a, b = (
        Market(seed=3, live=False, start_ms=1_700_000_000_000),
        Market(seed=3, live=False, start_ms=1_700_000_000_000),
    )
    a.step(50)
    b.step(50)
    assert a.price(BTC) == b.price(BTC)
    assert a.candles(BTC, "1h", limit=200) == b.candles(BTC, "1h", limit=200)
    assert a.book(BTC) == b.book(BTC)
    c = Market(seed=4, live=False, start_ms=1_700_000_000_000)
    c.step(50)
    assert c.price(BTC) != a.price(BTC)


def test_set_price_rounds_to_the_tick_and_moves_the_book() -> None:
    market = Market(live=False)
    market.set_price(BTC, "65000.004")
    assert market.price(BTC) == Decimal("65000.00")
    bids, asks = market.book(BTC)
    assert len(bids) == len(asks) == 50
    assert bids[0].price < Decimal("65000") < asks[0].price
    assert all(a.price < b.price for a, b in itertools.pairwise(asks))
    assert all(a.price > b.price for a, b in itertools.pairwise(bids))
    spec = market.spec(BTC)
    assert all(
        lv.price % spec.tick == 0 and lv.amount % spec.step == 0 and lv.amount > 0 for lv in bids + asks
    )


@pytest.mark.parametrize("timeframe", ["1m", "5m", "15m", "1h", "4h", "1d"])
def test_candle_history_per_timeframe(timeframe: str) -> None:
    market = Market(seed=1, live=False)
    candles = market.candles(timeframe=timeframe, symbol=BTC, limit=1000)
    assert len(candles) == 1000
    span = TIMEFRAMES[timeframe] * 1000
    assert all(b.ts_ms - a.ts_ms == span for a, b in itertools.pairwise(candles))
    assert all(c.low <= min(c.open, c.close) and c.high >= max(c.open, c.close) for c in candles)
    assert all(b.open == a.close for a, b in itertools.pairwise(candles[-50:]))
    assert candles[-1].close == market.price(BTC)
    assert len(market.candles(BTC, timeframe, limit=5000)) >= HISTORY_CANDLES


def test_candles_follow_the_live_path() -> None:
    market = Market(seed=1, live=False)
    market.set_price(BTC, 66000)
    market.advance(60)
    market.set_price(BTC, 64000)
    last = market.candles(BTC, "1m", limit=2)
    assert last[-2].high >= Decimal(66000) and last[-1].close == Decimal(64000)
    since = market.candles(BTC, "1h", since_ms=last[0].ts_ms - 7_200_000, limit=3)
    assert len(since) == 3 and since[0].ts_ms <= last[0].ts_ms - 3_600_000


def test_live_clock_walks_prices() -> None:
    market = Market(seed=5, live=True, tick_seconds=0.001)
    before = market.price(BTC)
    market.advance(1)
    assert market.price(BTC) != before
    market.freeze()
    frozen = market.price(BTC)
    market.sync()
    assert market.price(BTC) == frozen
    market.unfreeze()
    assert not market.frozen


def test_stats_24h() -> None:
    market = Market(seed=2, live=False)
    stats = market.stats_24h(BTC)
    assert stats.low <= stats.last <= stats.high
    assert stats.bid < stats.last < stats.ask and stats.volume > 0


def test_resting_limit_order_fills_on_cross_with_maker_fee() -> None:
    market = Market(live=False)
    book = ledger(market)
    account = book.add_account("k", "s", balances={"USDT": 10_000})
    order = book.create_order(account, BTC, "buy", "limit", Decimal("0.1"), Decimal("60000"))
    assert order.is_open and account.held("USDT") == Decimal("6000") and account.free("USDT") == 4000
    market.set_price(BTC, 59000)
    assert order.status == "filled" and account.held("USDT") == 0
    assert account.total("BTC") == Decimal("0.1") - Decimal("0.0001")
    assert account.total("USDT") == Decimal(4000)


def test_quote_fee_mode_adds_the_fee_to_the_cost() -> None:
    market = Market(live=False)
    book = ledger(market, mode="quote")
    account = book.add_account("k", "s", balances={"USDT": 100_000})
    order = book.create_order(account, BTC, "buy", "market", Decimal("0.01"))
    assert order.fee_asset == "USDT" and order.fee == (order.cost * Decimal("0.001")).quantize(
        Decimal("1e-8")
    )
    assert account.total("USDT") == Decimal(100_000) - order.cost - order.fee
    assert account.total("BTC") == Decimal("0.01")


@pytest.mark.parametrize(
    ("amount", "price", "kind"),
    [
        (Decimal("0.000001"), Decimal("60000"), ErrorKind.AMOUNT_STEP),
        (Decimal("0.00005"), Decimal("60000"), ErrorKind.MIN_NOTIONAL),
        (Decimal("0.001"), Decimal("60000.001"), ErrorKind.PRICE_TICK),
        (Decimal("10"), Decimal("60000"), ErrorKind.INSUFFICIENT_FUNDS),
    ],
)
def test_order_rules(amount: Decimal, price: Decimal, kind: ErrorKind) -> None:
    book = ledger(Market(live=False))
    account = book.add_account("k", "s", balances={"USDT": 1000})
    with pytest.raises(LedgerError) as info:
        book.create_order(account, BTC, "buy", "limit", amount, price)
    assert info.value.kind is kind
    assert book.orders == {}


def test_client_order_id_scopes() -> None:
    market = Market(live=False)
    for scope, reusable in (("open", True), ("all", False)):
        book = Ledger(market, FeeSchedule(), str, str, client_id_scope=scope)
        account = book.add_account("k", "s", balances={"USDT": 10_000})
        book.create_order(account, BTC, "buy", "limit", Decimal("0.01"), Decimal("50000"), client_id="a")
        with pytest.raises(LedgerError):
            book.create_order(account, BTC, "buy", "limit", Decimal("0.01"), Decimal("50000"), client_id="a")
        book.cancel_all(account)
        if reusable:
            book.create_order(account, BTC, "buy", "limit", Decimal("0.01"), Decimal("50000"), client_id="a")
        else:
            with pytest.raises(LedgerError):
                book.create_order(
                    account, BTC, "buy", "limit", Decimal("0.01"), Decimal("50000"), client_id="a"
                )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["buy", "sell"]),
            st.sampled_from(["market", "limit"]),
            st.integers(min_value=1, max_value=3000),  # amount in 0.0001 BTC
            st.integers(min_value=-3000, max_value=3000),  # limit price offset in USDT
            st.integers(min_value=-2000, max_value=2000),  # price move afterwards
            st.booleans(),  # cancel everything afterwards
        ),
        max_size=25,
    )
)
def test_balances_stay_consistent(steps: list[tuple[str, str, int, int, int, bool]]) -> None:
    market = Market(seed=9, live=False)
    for mode in ("received", "quote"):
        market.set_price(BTC, 65000)
        book = ledger(market, mode)
        account = book.add_account("k" + mode, "s", balances={"USDT": 50_000, "BTC": "0.5"})
        for side, kind, amount, offset, move, cancel in steps:
            price = market.price(BTC) + offset if kind == "limit" else None
            try:
                book.create_order(account, BTC, side, kind, Decimal(amount) / 10_000, price)
            except LedgerError as exc:
                assert exc.kind in (ErrorKind.INSUFFICIENT_FUNDS, ErrorKind.MIN_NOTIONAL)
            market.set_price(BTC, max(market.price(BTC) + move, Decimal(20000)))
            if cancel:
                book.cancel_all(account)
            for asset in ("USDT", "BTC"):
                assert account.total(asset) >= 0
                assert 0 <= account.held(asset) <= account.total(asset)
        book.cancel_all(account)
        assert account.held("USDT") == account.held("BTC") == 0
        for order in book.orders.values():
            assert order.status in ("filled", "canceled")
            assert order.filled in (0, order.amount)
