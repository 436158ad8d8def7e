"""The Copy button copies the trade on the card too, end to end through the Telegram emulator: a leader's buy
is posted to their channel; a follower opens its Copy link, follows and is offered "Copy this open trade
now?" with the pair, the leader's entry, the price now and what their follow would buy; "Copy now" (pressed
twice at once) copies it once into their paper account, with the fan-out's own notification. Opening the
link again says it is copied already. When the leader sells, the late copy is sold too; the closed trade is
no longer offered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.models import CopyOrder, Order
from sandbox.telegram.client import BotMessage, ChatUser
from tests.e2e.test_accounts_live import give_plan
from tests.e2e.test_copytrading import confirmed, make_channel, paper, url_of
from tests.stack import Stack, bot_stack

GAMMA = -1001003


@pytest.fixture
async def stack(tmp_path: Path, database_url: str) -> AsyncIterator[Stack]:
    async with bot_stack(tmp_path, database_url=database_url, exchanges=True) as stack:
        yield stack


async def until(user: ChatUser, done: Callable[[list[BotMessage]], bool], limit: int = 6) -> list[BotMessage]:
    """Bot messages and edits, read until `done` says the ones seen are enough."""
    seen: list[BotMessage] = []
    while not done(seen):
        assert len(seen) < limit, [m.text for m in seen]
        seen.append(await user.next_message(timeout=10))
    return seen


def has(text: str) -> Callable[[list[BotMessage]], bool]:
    return lambda seen: any(text in m.text for m in seen)


async def test_copy_link_copies_the_open_trade_once_and_its_exit(stack: Stack) -> None:
    leader, follower = stack.user(7301), stack.user(7302)
    for user in (leader, follower):
        await user.send("/start")
        await user.next_message()
    await give_plan(stack, 7301)
    await leader.send("/leader")
    await leader.press(await leader.next_message(), text="✅ Become a leader")
    await leader.next_message()
    await make_channel(stack, GAMMA, "Gamma Trades", 7301)
    await leader.send(f"/link {GAMMA}")
    assert "Gamma Trades is linked" in (await leader.next_message()).text

    # the leader buys: the card goes to the channel (nobody follows yet)
    filled = await confirmed(leader, "/buy BTC 500")
    assert "Bought" in filled.text
    assert "Cards posted: 1" in (await leader.next_message(timeout=10)).text
    [card] = await stack.client.wait_chat_messages(GAMMA, 1, timeout=10)
    entry = stack.exchanges["binance"].market.price("BTC/USDT")

    # the follower opens the card's Copy link, follows, and is offered that very trade
    await follower.open_link(url_of(card))
    assert (await follower.next_message(timeout=10)).photo  # the leader's profile
    setup = await follower.next_message(timeout=10)
    assert "Follow Trader7301" in setup.text
    await follower.press(setup, text="✅ Follow")
    offer = await follower.next_message(timeout=10)
    assert "You follow Trader7301 now" in offer.text and "Copy this open trade now?" in offer.text
    assert "BTC/USDT" in offer.text and "Trader7301 bought" in offer.text
    assert "since the entry" in offer.text and "for 100.00 USDT" in offer.text, offer.text
    assert f"{entry:,.0f}"[:4] in offer.text  # the leader's entry price
    assert offer.button_texts[:2] == ["✅ Copy now", "Skip"]

    # pressed twice at once: one copy, one notification, the buttons gone
    presses = await asyncio.gather(
        follower.press(offer, text="✅ Copy now"), follower.press(offer, text="✅ Copy now")
    )
    seen = await until(follower, lambda s: has("Copied Trader7301: Buy")(s) and has("open BTC/USDT")(s))
    [notified] = [m for m in seen if "Copied Trader7301: Buy" in m.text]
    assert "BTC" in notified.text and "paper" in notified.text
    [result] = [m for m in seen if "open BTC/USDT" in m.text]
    assert "✅ Copied Trader7301's open BTC/USDT trade" in result.text and result.buttons == []
    answers = [await follower.callback_answer(query_id) for query_id in presses]
    [told] = [a for a in answers if a["show_alert"]]  # the press that lost is told why, the card untouched
    assert "already copied" in told["text"] or "being copied" in told["text"], told
    await follower.expect_silence(0.5)
    [card_now] = [m for m in follower.history if m.message_id == offer.message_id]
    assert card_now.text == result.text and card_now.buttons == []  # the outcome stays on the card
    held = await paper(stack, 7302)
    assert held["BTC"] > 0 and D(9900) <= held["USDT"] < D(9901), held
    async with stack.app.session_factory() as session:
        assert await session.scalar(select(func.count(Order.id)).where(Order.reason == "copy")) == 1
        assert list(await session.scalars(select(CopyOrder.status))) == ["done"]

    # the same link again: already copied, no button
    await follower.open_link(url_of(card))
    assert (await follower.next_message(timeout=10)).photo
    again = await follower.next_message(timeout=10)
    assert "already copied" in again.text and again.buttons == []

    # the leader sells: the late copy is sold too
    await confirmed(leader, "/sell BTC all")
    await leader.next_message(timeout=10)  # the copy report
    closed = await follower.next_message(timeout=10)
    assert "Copied Trader7301" in closed.text and "PnL" in closed.text, closed.text
    assert (await paper(stack, 7302)).get("BTC", D(0)) == 0
    async with stack.app.session_factory() as session:
        assert list(await session.scalars(select(CopyOrder.status))) == ["done", "done"]


async def test_a_closed_trade_is_not_offered(stack: Stack) -> None:
    leader, follower = stack.user(7311), stack.user(7312)
    for user in (leader, follower):
        await user.send("/start")
        await user.next_message()
    await give_plan(stack, 7311)
    await leader.send("/leader")
    await leader.press(await leader.next_message(), text="✅ Become a leader")
    await leader.next_message()
    await make_channel(stack, GAMMA, "Gamma Trades", 7311)
    await leader.send(f"/link {GAMMA}")
    await leader.next_message()
    await confirmed(leader, "/buy BTC 500")
    await leader.next_message(timeout=10)
    [card] = await stack.client.wait_chat_messages(GAMMA, 1, timeout=10)
    await confirmed(leader, "/sell BTC all")
    await leader.next_message(timeout=10)

    await follower.open_link(url_of(card))
    await follower.next_message(timeout=10)  # the profile
    await follower.press(await follower.next_message(timeout=10), text="✅ Follow")
    refused = await follower.next_message(timeout=10)
    assert "You follow Trader7311 now" in refused.text
    assert "Trader7311 has already closed this BTC/USDT trade" in refused.text
    assert "✅ Copy now" not in refused.button_texts
    async with stack.app.session_factory() as session:
        assert await session.scalar(select(func.count(Order.id)).where(Order.reason == "copy")) == 0
