"""Paper trading end to end: Telegram emulator -> the real bot -> real ccxt -> the Binance emulator's
public order book. Balances, positions and PnL are checked to the last digit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.models import Order, PaperBalance, Position
from sandbox.telegram.client import BotMessage, ChatUser
from tests.stack import Stack, bot_stack


@pytest.fixture
async def stack(tmp_path: Path, database_url: str) -> AsyncIterator[Stack]:
    async with bot_stack(tmp_path, database_url=database_url, exchanges=True) as stack:
        yield stack


async def card_for(user: ChatUser, text: str) -> BotMessage:
    await user.send(text)
    return await user.next_message(timeout=10)


async def orders(stack: Stack) -> list[Order]:
    async with stack.app.session_factory() as session:
        return list((await session.scalars(select(Order).order_by(Order.id))).all())


async def balances(stack: Stack) -> dict[str, D]:
    async with stack.app.session_factory() as session:
        rows = (await session.scalars(select(PaperBalance))).all()
    return {row.asset: row.free for row in rows}


async def test_buy_confirm_then_sell_everything(stack: Stack) -> None:
    user = stack.user(3001)
    card = await card_for(user, "/buy BTC 100")
    assert "Buy BTC/USDT" in card.text and "paper" in card.text
    assert card.button_texts == ["✅ Confirm", "✖️ Cancel"]
    assert await orders(stack) == []

    await user.press(card, text="✅ Confirm")
    filled = await user.next_message(timeout=10)
    assert filled.message_id == card.message_id and "Bought" in filled.text
    [order] = await orders(stack)
    assert order.status == "closed" and order.side == "buy" and order.client_order_id.startswith("cu")
    spent = order.cost + order.fee
    assert spent <= D(100) and order.fee == order.cost * D("0.001")
    money = await balances(stack)
    assert money["USDT"] == D(10000) - spent
    assert money["BTC"] == order.filled

    await user.send("/positions")
    positions = await user.next_message(timeout=10)
    assert "BTC/USDT" in positions.text and "🔄 Refresh" in positions.button_texts

    card = await card_for(user, "/sell BTC all")
    assert "Sell BTC/USDT" in card.text
    await user.press(card, text="✅ Confirm")
    sold = await user.next_message(timeout=10)
    assert "Sold" in sold.text and "Realised PnL" in sold.text
    _buy, sell = await orders(stack)
    money = await balances(stack)
    assert money["BTC"] == 0
    assert money["USDT"] == D(10000) - spent + sell.cost - sell.fee
    async with stack.app.session_factory() as session:
        position = await session.scalar(select(Position))
    assert position is not None and position.status == "closed"
    assert position.realized_pnl == sell.cost - sell.fee - spent == sell.realized_pnl

    await user.send("/pnl")
    pnl = await user.next_message(timeout=10)
    assert "Realised in total" in pnl.text


async def test_a_double_pressed_confirm_places_one_order(stack: Stack) -> None:
    user = stack.user(3002)
    card = await card_for(user, "/buy ETH 50")
    await asyncio.gather(user.press(card, text="✅ Confirm"), user.press(card, text="✅ Confirm"))
    for _ in range(20):  # the fill can take longer than a quiet spell on a busy machine
        await user.sleep_until_idle(quiet=0.5)
        if any("Bought" in m.text for m in user.history):
            break
    await user.sleep_until_idle(quiet=0.5)  # and a second fill would show by now
    assert len(await orders(stack)) == 1
    assert sum("Bought" in m.text for m in user.history) == 1


async def test_cancel_and_expiry_execute_nothing(tmp_path: Path, sqlite_url: str) -> None:
    from bot.settings import TradingSettings

    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True,
                         trading=TradingSettings(confirm_ttl_seconds=1)) as stack:
        user = stack.user(3003)
        card = await card_for(user, "/buy BTC 100")
        await user.press(card, text="✖️ Cancel")
        assert "No order was placed" in (await user.next_message()).text
        card = await card_for(user, "/buy BTC 100")
        await asyncio.sleep(1.5)
        query_id = await user.press(card, text="✅ Confirm")
        answer = await user.callback_answer(query_id)
        assert "expired" in answer["text"]
        assert await orders(stack) == []
        assert (await balances(stack))["USDT"] == D(10000)


async def test_risk_limit_refusal_says_which_limit_and_by_how_much(stack: Stack) -> None:
    user = stack.user(3004)
    refusal = await card_for(user, "/buy BTC 5000")
    assert "Position size limit" in refusal.text and "25" in refusal.text
    assert "over by" in refusal.text and "The most you can buy now is" in refusal.text
    assert refusal.button_texts == []
    assert await orders(stack) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/buy", "Which coin?"),
        ("/buy BTC", "How much?"),
        ("/buy BTC -5", "not a valid"),
        ("/buy BTC 0", "not a valid amount"),
        ("/buy BTC 1e9", "not a valid"),
        ("/buy BTCC 100", "BTC/USDT"),
        ("/buy 0.00000001 BTC", "minimum"),
        ("/sell DOGE all", "You hold no DOGE"),
        ("/buy BTC 20000", "Not enough USDT"),
    ],
)
async def test_bad_orders_get_a_clear_message_and_no_order(stack: Stack, text: str, expected: str) -> None:
    from bot.settings import TradingSettings  # noqa: F401

    user = stack.user(3005)
    reply = await card_for(user, text)
    assert expected in reply.text, reply.text
    assert reply.button_texts == []
    assert await orders(stack) == []


async def test_trading_menu_buttons(stack: Stack) -> None:
    user = stack.user(3006, language_code="ru")
    await user.send("/menu")
    menu = await user.next_message()
    await user.press(menu, text="💱 Торговля")
    trade = await user.next_message()
    assert "/buy BTC 100" in trade.text
    await user.press(trade, text="💰 Баланс")
    balance = await user.next_message()
    assert "USDT: 10,000" in balance.text and "Капитал" in balance.text


async def test_orders_in_a_group_point_to_the_private_chat(stack: Stack) -> None:
    stack.emulator.add_group(-777, "Traders")
    update = {
        "message": {
            "message_id": 1, "date": 1700000000, "chat": {"id": -777, "type": "supergroup", "title": "T"},
            "from": {"id": 3007, "is_bot": False, "first_name": "G"}, "text": "/buy BTC 100",
        }
    }
    await stack.client.raw_update(update, bot_id=stack.bot_id)
    [reply] = await stack.wait_bot_messages(-777)
    assert "private chat" in reply["text"]
    async with stack.app.session_factory() as session:
        assert await session.scalar(select(func.count(Order.id))) == 0
