from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.errors import ValidationError
from services.exchanges.types import OrderBook
from services.trading.paper import NotEnoughLiquidity, limit_crossed, round_step, walk_book
from services.trading.pnl import PositionState

BOOK = OrderBook(
    symbol="BTC/USDT",
    bids=((D("59990"), D("0.5")), (D("59980"), D("1")), (D("59970"), D("2"))),
    asks=((D("60010"), D("0.5")), (D("60020"), D("1")), (D("60030"), D("2"))),
    timestamp_ms=0,
)
FEE = D("0.001")


def test_market_buy_walks_the_asks() -> None:
    fill = walk_book(BOOK, "buy", FEE, amount=D("1"))
    assert fill.cost == D("0.5") * D("60010") + D("0.5") * D("60020")
    assert fill.average_price == D("60015")
    assert fill.fee == fill.cost * FEE


def test_market_sell_walks_the_bids() -> None:
    fill = walk_book(BOOK, "sell", FEE, amount=D("0.7"))
    assert fill.cost == D("0.5") * D("59990") + D("0.2") * D("59980")


def test_quote_amount_buy_never_spends_more_than_asked() -> None:
    fill = walk_book(BOOK, "buy", FEE, quote_amount=D("100"), amount_step=D("0.00001"))
    assert fill.cost + fill.fee <= D("100")
    assert D("100") - (fill.cost + fill.fee) < D("0.00001") * D("60010") * 2


def test_beyond_the_book_is_refused() -> None:
    with pytest.raises(NotEnoughLiquidity):
        walk_book(BOOK, "buy", FEE, amount=D("10"))


def test_amount_rounded_to_nothing_is_refused() -> None:
    with pytest.raises(ValidationError):
        walk_book(BOOK, "buy", FEE, amount=D("0.000001"), amount_step=D("0.001"))


def test_round_step() -> None:
    assert round_step(D("0.123456"), D("0.001")) == D("0.123")
    assert round_step(D("5"), None) == D("5")


def test_limit_crossing() -> None:
    assert limit_crossed("buy", D("60000"), D("59990"), D("59999"))
    assert not limit_crossed("buy", D("60000"), D("59990"), D("60001"))
    assert limit_crossed("sell", D("60000"), D("60000"), D("60010"))


def test_round_trip_pnl() -> None:
    position = PositionState().after_buy(D("1"), D("60000"), D("60"))
    assert position.average_entry == D("60060")
    position, pnl = position.after_sell(D("0.5"), D("31000"), D("31"))
    assert pnl == D("31000") - D("31") - D("30030")
    assert position.amount == D("0.5") and position.cost_basis == D("30030")
    position, pnl2 = position.after_sell(D("0.5"), D("29000"), D("29"))
    assert not position.is_open and position.cost_basis == 0
    assert position.realized_pnl == pnl + pnl2 == D("31000") + D("29000") - D("60") - D("60000") - D("60")


amounts = st.decimals(min_value=D("0.0001"), max_value=D("100"), places=4)
prices = st.decimals(min_value=D("1"), max_value=D("100000"), places=2)


@given(st.lists(st.tuples(amounts, prices), min_size=1, max_size=8), prices)
def test_selling_everything_realises_exactly_proceeds_minus_costs(
    buys: list[tuple[D, D]], exit_price: D
) -> None:
    position = PositionState()
    paid = D(0)
    for amount, price in buys:
        fee = amount * price * FEE
        position = position.after_buy(amount, amount * price, fee)
        paid += amount * price + fee
    proceeds = position.amount * exit_price
    exit_fee = proceeds * FEE
    closed, _ = position.after_sell(position.amount, proceeds, exit_fee)
    assert not closed.is_open
    assert closed.realized_pnl == proceeds - exit_fee - paid
