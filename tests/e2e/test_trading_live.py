"""Live trading end to end on each exchange: a connected key, an explicit switch to live, /buy and /sell
confirmed from Telegram, real ccxt orders on the exchange emulators, and reconciliation of an order whose
answer timed out after the exchange accepted it."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.settings import ExchangeSettings
from db.models import Order, Position
from sandbox.telegram.client import ChatUser
from tests.e2e.test_accounts_live import BUTTON, Key, connect, give_plan, new_key
from tests.stack import Stack, bot_stack

ORDER_PATHS = {"binance": "POST /api/v3/order", "kraken": "POST /0/private/AddOrder",
               "kucoin": "POST /api/v1/orders"}


async def go_live(stack: Stack, user: ChatUser, exchange: str) -> Key:
    key = new_key(exchange)
    stack.exchanges[exchange].add_account(
        key.api_key, key.secret, passphrase=key.passphrase, balances={"USDT": 10000}
    )
    outcome, _ = await connect(user, key)
    assert "connected" in outcome.text
    await give_plan(stack, user.user_id)
    await user.send("/accounts")
    listing = await user.next_message()
    await user.press(listing, text=f"Use ⚡ {BUTTON[exchange]} …AB12")
    card = await user.next_message()
    await user.press(card, text="✅ Confirm")
    assert "Live trading is on" in (await user.next_message()).text
    return key


def order_posts(stack: Stack, exchange: str) -> int:
    return stack.exchanges[exchange].request_counts().get(ORDER_PATHS[exchange], 0)


@pytest.mark.parametrize("exchange", ["binance", "kraken", "kucoin"])
async def test_live_buy_and_sell(tmp_path: Path, sqlite_url: str, exchange: str) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True) as stack:
        user = stack.user(7001)
        await go_live(stack, user, exchange)
        await user.send("/buy BTC 100")
        card = await user.next_message(timeout=10)
        assert "live" in card.text and BUTTON[exchange] in card.text
        await user.press(card, text="✅ Confirm")
        filled = await user.next_message(timeout=15)
        assert "Bought" in filled.text, filled.text
        async with stack.app.session_factory() as session:
            [order] = (await session.scalars(select(Order))).all()
        assert order.status == "closed" and order.exchange == exchange and order.exchange_order_id
        assert order.client_order_id.startswith("cu") and order.filled > 0
        assert order_posts(stack, exchange) == 1

        await user.send("/sell BTC 50")
        card = await user.next_message(timeout=10)
        await user.press(card, text="✅ Confirm")
        sold = await user.next_message(timeout=15)
        assert "Sold" in sold.text, sold.text
        assert order_posts(stack, exchange) == 2

        await user.send("/close BTC")
        card = await user.next_message(timeout=10)
        assert "Sell BTC/USDT" in card.text and "live" in card.text
        await user.press(card, text="✅ Confirm")
        closed = await user.next_message(timeout=15)
        assert "Sold" in closed.text, closed.text
        assert order_posts(stack, exchange) == 3
        async with stack.app.session_factory() as session:
            position = await session.scalar(select(Position))
        assert position is not None and position.status == "closed" and position.amount == 0


async def test_a_timeout_after_the_exchange_accepted_is_reconciled_not_resent(
    tmp_path: Path, sqlite_url: str
) -> None:
    settings = ExchangeSettings(timeout_ms=1500)
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True, exchange=settings) as stack:
        user = stack.user(7002)
        await go_live(stack, user, "binance")
        await user.send("/buy BTC 100")
        card = await user.next_message(timeout=10)
        stack.exchanges["binance"].accept_then_timeout_next_order(delay=5)
        await user.press(card, text="✅ Confirm")
        filled = await user.next_message(timeout=20)
        assert "Bought" in filled.text, filled.text
        assert order_posts(stack, "binance") == 1
        async with stack.app.session_factory() as session:
            [order] = (await session.scalars(select(Order))).all()
        assert order.status == "closed" and order.filled > D(0)


async def test_a_double_pressed_live_confirm_sends_one_order(tmp_path: Path, database_url: str) -> None:
    import asyncio

    async with bot_stack(tmp_path, database_url=database_url, exchanges=True) as stack:
        user = stack.user(7003)
        await go_live(stack, user, "binance")
        await user.send("/buy BTC 100")
        card = await user.next_message(timeout=10)
        await asyncio.gather(user.press(card, text="✅ Confirm"), user.press(card, text="✅ Confirm"))
        await user.sleep_until_idle(quiet=1.0)
        assert order_posts(stack, "binance") == 1
        assert sum("Bought" in m.text for m in user.history) == 1
