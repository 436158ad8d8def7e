"""Partial fills of resting live limit orders, end to end on the exchange emulators: the watcher books each
part once (position, average entry, fees), tells the user once, /orders shows the filled part, the rest is
booked when the order completes, and /cancel books exactly what filled."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.settings import TradingSettings
from db.models import Order, Position
from sandbox.exchanges.server import ExchangeEmulator
from sandbox.telegram.client import ChatUser
from services.trading.live import watch_live_orders
from tests.e2e.test_trading_live import go_live, order_posts
from tests.stack import Stack, bot_stack

FAST = TradingSettings(
    watch_interval_seconds=0.2, live_orders_interval_seconds=0.3, live_order_settle_seconds=0.5
)
#: the scheduled watcher out of the way: the test runs it itself
MANUAL = TradingSettings(watch_interval_seconds=0.2, live_orders_interval_seconds=3600)
MAKER = {"binance": D("0.001"), "kraken": D("0.0025"), "kucoin": D("0.001")}
FEE_QUANTUM = D("1e-8")


def fee(value: D, exchange: str) -> D:
    return (value * MAKER[exchange]).quantize(FEE_QUANTUM)


async def place_limit_buy(stack: Stack, user: ChatUser, exchange: str, amount: str) -> tuple[Order, D]:
    limit = (stack.exchanges[exchange].market.price("BTC/USDT") * D("0.9")).quantize(D("1"))
    await user.send(f"/buy BTC {amount} @ {limit}")
    await user.press(await user.next_message(timeout=10), text="✅ Confirm")
    placed = await user.next_message(timeout=15)
    assert "Limit buy placed" in placed.text, placed.text
    order = await stored_order(stack)
    assert order.status == "open" and order.booked == 0
    return order, limit


async def stored_order(stack: Stack) -> Order:
    async with stack.app.session_factory() as session:
        order = await session.scalar(select(Order))
    assert order is not None
    return order


async def stored_position(stack: Stack) -> Position:
    async with stack.app.session_factory() as session:
        position = await session.scalar(select(Position))
    assert position is not None
    return position


def expected_position(exchange: str, limit: D, parts: list[D]) -> tuple[D, D]:
    """(amount, fees in USDT) of a position bought in ``parts`` at ``limit``, fee by fee as the exchange
    charges them: Binance in BTC from what is received, Kraken and KuCoin in USDT."""
    if exchange == "binance":
        fees = [fee(p, exchange) for p in parts]
        return sum(parts, D(0)) - sum(fees, D(0)), sum((f * limit for f in fees), D(0))
    return sum(parts, D(0)), sum((fee(p * limit, exchange) for p in parts), D(0))


@pytest.mark.parametrize("exchange", ["binance", "kraken"])
async def test_a_resting_limit_buy_filled_in_parts_is_booked_part_by_part(
    tmp_path: Path, sqlite_url: str, exchange: str
) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True, trading=FAST) as stack:
        user = stack.user(7401)
        await go_live(stack, user, exchange)
        emulator: ExchangeEmulator = stack.exchanges[exchange]
        order, limit = await place_limit_buy(stack, user, exchange, "0.01")

        emulator.fill_part("0.004", client_id=order.client_order_id)
        told = await user.next_message(timeout=10)
        assert "Limit buy partly filled" in told.text, told.text
        assert f"0.004 of 0.01 BTC at {limit:,} USDT" in told.text, told.text
        order = await stored_order(stack)
        position = await stored_position(stack)
        assert order.status == "open" and order.booked == order.filled == D("0.004")
        amount, fees = expected_position(exchange, limit, [D("0.004")])
        assert position.status == "open" and position.amount == amount and position.fees == fees
        assert position.cost_basis == D("0.004") * limit + fees
        assert position.average_entry == position.cost_basis / position.amount

        await user.expect_silence(1.2)  # the watcher keeps running: nothing more is booked or told
        for _ in range(2):
            assert await watch_live_orders(stack.app.session_factory, stack.app.services.trading) == []
        assert (await stored_position(stack)).amount == amount

        await user.send("/orders")
        listing = await user.next_message(timeout=10)
        assert f"#{order.id}" in listing.text and "open, 0.004 of 0.01 filled" in listing.text, listing.text
        await user.send("/positions")
        assert "BTC/USDT" in (await user.next_message(timeout=10)).text

        emulator.market.set_price("BTC/USDT", limit * D("0.99"))  # the market crosses it: the rest fills
        filled = await user.next_message(timeout=10)
        assert "Limit buy filled" in filled.text, filled.text
        order = await stored_order(stack)
        position = await stored_position(stack)
        assert order.status == "closed" and order.booked == order.filled == order.amount == D("0.01")
        assert order.average_price == limit
        amount, fees = expected_position(exchange, limit, [D("0.004"), D("0.006")])
        assert position.amount == amount and position.fees == fees  # exactly, part by part
        assert position.cost_basis == D("0.01") * limit + fees
        exchange_fee = order.fee * limit if exchange == "binance" else order.fee
        assert exchange_fee == fees
        assert order_posts(stack, exchange) == 1
        await user.expect_silence(1.2)  # booked once


@pytest.mark.parametrize("exchange", ["binance", "kucoin"])
async def test_cancelling_a_partly_filled_order_books_exactly_what_filled(
    tmp_path: Path, sqlite_url: str, exchange: str
) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True, trading=MANUAL) as stack:
        user = stack.user(7402)
        await go_live(stack, user, exchange)
        emulator: ExchangeEmulator = stack.exchanges[exchange]
        order, limit = await place_limit_buy(stack, user, exchange, "0.01")
        emulator.fill_part("0.002", client_id=order.client_order_id)
        [update] = await watch_live_orders(stack.app.session_factory, stack.app.services.trading)
        assert update.kind == "partial" and update.partial is not None
        assert update.partial.filled == D("0.002") and update.partial.amount == D("0.01")

        emulator.fill_part("0.003", client_id=order.client_order_id)  # not seen by the watcher yet
        await user.send(f"/cancel {order.id}")
        done = await user.next_message(timeout=15)
        assert f"#{order.id}" in done.text and "Cancelled" in done.text, done.text
        order = await stored_order(stack)
        position = await stored_position(stack)
        assert order.status == "canceled" and order.booked == order.filled == D("0.005")
        amount, fees = expected_position(exchange, limit, [D("0.002"), D("0.003")])
        assert position.amount == amount and position.fees == fees
        assert position.cost_basis == D("0.005") * limit + fees
        assert await watch_live_orders(stack.app.session_factory, stack.app.services.trading) == []
        assert (await stored_position(stack)).amount == amount
        [resting] = emulator.ledger.orders.values()
        assert resting.status == "canceled" and resting.filled == D("0.005")


async def test_concurrent_watcher_runs_book_a_part_once(tmp_path: Path, postgres_url: str) -> None:
    async with bot_stack(tmp_path, database_url=postgres_url, exchanges=True, trading=MANUAL) as stack:
        user = stack.user(7403)
        await go_live(stack, user, "binance")
        emulator: ExchangeEmulator = stack.exchanges["binance"]
        order, limit = await place_limit_buy(stack, user, "binance", "0.01")
        emulator.fill_part("0.004", client_id=order.client_order_id)
        runs = await asyncio.gather(
            *(watch_live_orders(stack.app.session_factory, stack.app.services.trading) for _ in range(4))
        )
        assert sorted(len(updates) for updates in runs) == [0, 0, 0, 1]
        amount, fees = expected_position("binance", limit, [D("0.004")])
        position = await stored_position(stack)
        assert position.amount == amount and position.fees == fees
        assert (await stored_order(stack)).booked == D("0.004")
