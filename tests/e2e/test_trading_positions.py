"""Closing, stop-loss and take-profit watched on a schedule, the kill switch, and the order list: end to
end through the Telegram emulator, the real bot and scheduler, and the Binance emulator's market."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.settings import TradingSettings
from db.models import Order, PaperBalance, Position, TradingProfile
from sandbox.telegram.client import ChatUser
from tests.stack import Stack, bot_stack


@pytest.fixture
async def stack(tmp_path: Path, database_url: str) -> AsyncIterator[Stack]:
    async with bot_stack(
        tmp_path, database_url=database_url, exchanges=True,
        trading=TradingSettings(watch_interval_seconds=0.2),
    ) as stack:
        yield stack


async def buy(user: ChatUser, text: str) -> None:
    await user.send(text)
    card = await user.next_message(timeout=10)
    await user.press(card, text="✅ Confirm")
    filled = await user.next_message(timeout=10)
    assert "Bought" in filled.text, filled.text


def price(stack: Stack, symbol: str) -> D:
    return stack.exchanges["binance"].market.price(symbol)


async def test_close_one_position_with_confirmation(stack: Stack) -> None:
    user = stack.user(5001)
    await buy(user, "/buy BTC 200")
    await buy(user, "/buy ETH 100")
    await user.send("/close BTC")
    card = await user.next_message(timeout=10)
    assert "Close BTC/USDT" in card.text and "ETH" not in card.text
    await user.press(card, text="✅ Confirm")
    done = await user.next_message(timeout=10)
    assert "Closed" in done.text and "BTC/USDT: sold" in done.text
    async with stack.app.session_factory() as session:
        statuses = {p.symbol: p.status for p in (await session.scalars(select(Position))).all()}
    assert statuses == {"BTC/USDT": "closed", "ETH/USDT": "open"}
    await user.send("/orders")
    orders = await user.next_message()
    assert orders.text.count("#") == 3 and "close" in orders.text


async def test_stop_loss_fires_on_schedule_and_tells_the_user(stack: Stack) -> None:
    user = stack.user(5002)
    now = price(stack, "BTC/USDT")
    stop = (now * D("0.95")).quantize(D("1"))
    await buy(user, f"/buy BTC 150 sl {stop}")
    await user.send(f"/tp BTC {(now * D('1.2')).quantize(D('1'))}")
    assert "Take-profit for BTC/USDT set" in (await user.next_message()).text
    stack.exchanges["binance"].market.set_price("BTC/USDT", now * D("0.94"))
    hit = await user.next_message(timeout=10)
    assert "Stop-loss hit" in hit.text and "BTC/USDT" in hit.text
    async with stack.app.session_factory() as session:
        position = await session.scalar(select(Position))
        orders = (await session.scalars(select(Order).order_by(Order.id))).all()
        balances = {b.asset: b.free for b in (await session.scalars(select(PaperBalance))).all()}
    assert position is not None and position.status == "closed"
    assert [o.reason for o in orders] == ["manual", "sl"]
    assert balances["BTC"] == 0
    assert position.realized_pnl < 0 and position.realized_pnl == orders[1].realized_pnl
    await user.expect_silence(0.6)  # fired once


async def test_take_profit_fires(stack: Stack) -> None:
    user = stack.user(5003)
    now = price(stack, "ETH/USDT")
    await buy(user, f"/buy ETH 100 tp {(now * D('1.05')).quantize(D('0.01'))}")
    stack.exchanges["binance"].market.set_price("ETH/USDT", now * D("1.06"))
    hit = await user.next_message(timeout=10)
    assert "Take-profit hit" in hit.text
    async with stack.app.session_factory() as session:
        position = await session.scalar(select(Position))
    assert position is not None and position.status == "closed" and position.realized_pnl > 0


async def test_protection_on_the_wrong_side_is_refused(stack: Stack) -> None:
    user = stack.user(5004)
    await buy(user, "/buy BTC 100")
    now = price(stack, "BTC/USDT")
    await user.send(f"/sl BTC {(now * D('1.1')).quantize(D('1'))}")
    assert "must be below the price" in (await user.next_message()).text
    await user.send("/sl SOL 10")
    assert "no open position in SOL/USDT" in (await user.next_message()).text


async def test_kill_switch_closes_everything_and_pauses_buys(stack: Stack) -> None:
    user = stack.user(5005)
    await buy(user, "/buy BTC 100")
    await buy(user, "/buy SOL 100")
    await user.send("/panic")
    card = await user.next_message(timeout=10)
    assert "Kill switch" in card.text
    await user.press(card, text="✅ Confirm")
    done = await user.next_message(timeout=10)
    assert "2 position(s) closed" in done.text
    async with stack.app.session_factory() as session:
        assert {p.status for p in (await session.scalars(select(Position))).all()} == {"closed"}
        profile = await session.scalar(select(TradingProfile))
        assert profile is not None and profile.pause_reason == "panic"
    await user.send("/buy BTC 50")
    refusal = await user.next_message(timeout=10)
    assert "paused by the kill switch" in refusal.text and refusal.button_texts == []


async def test_close_without_positions(stack: Stack) -> None:
    user = stack.user(5006)
    await user.send("/close all")
    assert "no open positions" in (await user.next_message()).text


async def test_limit_buy_rests_reserves_funds_and_fills_when_crossed(stack: Stack) -> None:
    user = stack.user(5007)
    now = price(stack, "BTC/USDT")
    limit = (now * D("0.97")).quantize(D("0.01"))
    await user.send(f"/buy BTC 0.01 @ {limit}")
    card = await user.next_message(timeout=10)
    assert "limit" in card.text and "Limit price" in card.text
    await user.press(card, text="✅ Confirm")
    placed = await user.next_message(timeout=10)
    assert "Limit buy placed" in placed.text
    async with stack.app.session_factory() as session:
        order = await session.scalar(select(Order))
        usdt = await session.get(PaperBalance, (order.account_id, "USDT")) if order else None
    assert order is not None and order.status == "open" and order.limit_price == limit
    reserved = D("0.01") * limit * (1 + D("0.001"))
    assert usdt is not None and usdt.locked == reserved and usdt.free == D(10000) - reserved

    await user.expect_silence(0.6)  # above the limit: nothing happens
    stack.exchanges["binance"].market.set_price("BTC/USDT", limit * D("0.99"))
    filled = await user.next_message(timeout=10)
    assert "Limit buy filled" in filled.text
    async with stack.app.session_factory() as session:
        order = await session.scalar(select(Order))
        balances = {b.asset: (b.free, b.locked) for b in (await session.scalars(select(PaperBalance))).all()}
        position = await session.scalar(select(Position))
    assert order is not None and order.status == "closed" and order.average_price == limit
    assert order.fee == D("0.01") * limit * D("0.001")
    assert balances["USDT"] == (D(10000) - reserved, D(0))
    assert balances["BTC"] == (D("0.01"), D(0))
    assert position is not None and position.amount == D("0.01") and position.cost_basis == reserved


async def test_cancel_a_resting_order_releases_its_funds(stack: Stack) -> None:
    user = stack.user(5008)
    await buy(user, "/buy ETH 200")
    now = price(stack, "ETH/USDT")
    async with stack.app.session_factory() as session:
        eth = (await session.scalars(select(PaperBalance).where(PaperBalance.asset == "ETH"))).one().free
    await user.send(f"/sell ETH all @ {(now * D('1.5')).quantize(D('0.01'))}")
    card = await user.next_message(timeout=10)
    await user.press(card, text="✅ Confirm")
    placed = await user.next_message(timeout=10)
    assert "Limit sell placed" in placed.text
    async with stack.app.session_factory() as session:
        row = (await session.scalars(select(PaperBalance).where(PaperBalance.asset == "ETH"))).one()
        order = (await session.scalars(select(Order).where(Order.status == "open"))).one()
    assert (row.free, row.locked) == (D(0), eth)
    await user.send(f"/cancel {order.id}")
    assert f"Cancelled #{order.id}" in (await user.next_message()).text
    async with stack.app.session_factory() as session:
        row = (await session.scalars(select(PaperBalance).where(PaperBalance.asset == "ETH"))).one()
        order = await session.get(Order, order.id)
    assert (row.free, row.locked) == (eth, D(0)) and order is not None and order.status == "canceled"
    await user.send("/cancel all")
    assert "no open orders" in (await user.next_message()).text
