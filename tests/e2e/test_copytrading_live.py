"""Live copy trading end to end, through Telegram only: the leader's channel is created and the bot made its
administrator through the emulator's control API, the leader's live buy on the exchange emulator is posted
to it once, three followers press its Copy link (a t.me deep link) and follow with their own live accounts
and allocations, and each gets a live order of their own size on the exchange; the leader's exit is
mirrored and the 30 % fee on each follower's profit, and the leader's half of it, are in the ledgers to
the cent. A channel where the bot may not post is reported by /link and picked up once the right is
granted (a my_chat_member update)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import ROUND_DOWN, ROUND_HALF_UP
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import CopyOrder, CreditEntry, LeaderRevenue, Order, User
from handlers.format import money
from sandbox.exchanges import ExchangeEmulator
from sandbox.telegram.client import BotMessage, ChatUser
from tests.e2e.test_accounts_live import Key, connect, give_plan, new_key
from tests.e2e.test_trading_live import go_live
from tests.stack import Stack, bot_stack

BTC = "BTC/USDT"
CREDIT = D("0.000001")
STEP = D("0.00001")  # the emulated Binance's BTC/USDT lot step  # services.credits.ledger.CREDIT_QUANTUM


@pytest.fixture
async def stack(tmp_path: Path, database_url: str) -> AsyncIterator[Stack]:
    async with bot_stack(tmp_path, database_url=database_url, exchanges=True) as stack:
        yield stack


async def confirmed(user: ChatUser, command: str) -> BotMessage:
    for _ in range(2):
        await user.send(command)
        # an earlier trade's copy report may still arrive first (it is sent when the fan-out is done)
        card = await user.wait_for(lambda m: "✅ Confirm" in m.button_texts, timeout=10)
        await user.press(card, text="✅ Confirm")
        done = await user.wait_for(
            lambda m: "Bought" in m.text or "Sold" in m.text or "Nothing was executed" in m.text, timeout=15
        )
        if "Nothing was executed" not in done.text:
            return done
        # the card showed a price from before the market moved: send the order again, as the bot asks
    raise AssertionError(f"{command} was not executed: {done.text}")


async def plan_for(stack: Stack, telegram_id: int) -> None:
    """give_plan, once the user's row is there: the bot's first answer can arrive before the update's
    transaction (which creates the user) has committed."""
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        try:
            await give_plan(stack, telegram_id)
            return
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def become_leader(stack: Stack, leader: ChatUser) -> None:
    await leader.send("/leader")
    await leader.press(await leader.next_message(), text="✅ Become a leader")
    await leader.next_message()


async def live_follower(stack: Stack, user: ChatUser) -> Key:
    """A user with a live Binance account holding 10,000 USDT, connected through /connect."""
    await user.send("/start")
    await user.next_message()
    key = new_key("binance")
    stack.exchanges["binance"].add_account(key.api_key, key.secret, balances={"USDT": 10000})
    outcome, _ = await connect(user, key)
    assert "Binance connected" in outcome.text, outcome.text
    await plan_for(stack, user.user_id)
    return key


async def follow_from_card(user: ChatUser, url: str, size: str) -> None:
    """Press the card's Copy link, pick a size and the live account, then ✅ Follow."""
    opened = await user.open_link(url)
    assert opened["type"] == "bot" and opened["message"]["text"] == "/start " + url.split("start=")[1]
    profile = await user.next_message(timeout=10)
    assert profile.photo, profile.text
    setup = await user.next_message(timeout=10)
    assert "Follow Trader7201" in setup.text
    await user.press(setup, text=size)
    setup = await user.next_message()
    await user.press(setup, text="⚡ live")
    setup = await user.next_message()
    assert "Account: ⚡ live" in setup.text, setup.text
    await user.press(setup, text="✅ Follow")
    done = await user.next_message()
    assert "You follow Trader7201 now" in done.text and "live" in done.text, done.text


def orders_of(exchange: ExchangeEmulator, key: Key) -> list[tuple[str, D, D]]:
    """(side, filled amount, cost) of every order of one API key on the exchange emulator."""
    account = exchange.ledger.account(key.api_key)
    assert account is not None
    return [(o.side, o.filled, o.cost) for o in exchange.ledger.list_orders(account)]


async def test_a_live_trade_posted_to_a_channel_is_copied_to_three_live_followers(stack: Stack) -> None:
    binance = stack.exchanges["binance"]
    leader = stack.user(7201)
    await go_live(stack, leader, "binance")  # a live Binance account with 10,000 USDT, switched to
    await become_leader(stack, leader)

    # the leader's channel, with the bot as its administrator: all through the control API
    channel = await stack.client.create_channel("Live Alpha", 7201, signatures=True)
    promoted = await stack.client.set_bot_member(channel)
    assert promoted["member"]["can_post_messages"] is True
    await leader.send(f"/link {channel}")
    assert "Live Alpha is linked (channel)" in (await leader.next_message()).text

    # the leader's first live buy: filled on the exchange and posted to the channel once
    filled = await confirmed(leader, "/buy BTC 300")
    assert "Bought" in filled.text, filled.text
    [card] = await stack.client.wait_chat_messages(channel, 1, timeout=10)
    assert "BTC/USDT LONG" in card.text and "Trader7201" in card.text
    assert "from" not in card.raw and card["sender_chat"]["id"] == channel  # the channel's own post
    assert card["author_signature"] == "CryptoUniverse"
    [[(_, url)]] = card.buttons
    assert url is not None and url.startswith("https://t.me/cryptouniverse_bot?start=copy_")

    # three followers press the card's Copy link, each with their own live account and size
    sizes = {7202: "50 USDT", 7203: "250 USDT", 7204: "5%"}
    followers = {telegram_id: stack.user(telegram_id) for telegram_id in sizes}
    keys = {}
    for telegram_id, size in sizes.items():
        keys[telegram_id] = await live_follower(stack, followers[telegram_id])
        await follow_from_card(followers[telegram_id], url, size)

    # the leader buys again: one card, and one live order on each follower's own account
    await confirmed(leader, "/buy BTC 400")
    copied = {}
    for telegram_id, follower in followers.items():
        copied[telegram_id] = await follower.wait_for(lambda m: "Copied Trader7201" in m.text, timeout=20)
        assert "BTC" in copied[telegram_id].text and "live" in copied[telegram_id].text
    await leader.wait_for(lambda m: "Copied to followers: 3 done" in m.text, timeout=20)
    cards = await stack.client.wait_chat_messages(channel, 2, timeout=10)
    assert len(cards) == 2
    spent = {}
    for telegram_id, key in keys.items():
        [(side, amount, cost)] = orders_of(binance, key)
        assert side == "buy" and amount > 0
        spent[telegram_id] = cost
        balances = binance.balances(key.api_key)
        assert balances["BTC"] > 0 and balances["USDT"] < D(10000)
    assert D(49) < spent[7202] <= D(50)
    assert D(249) < spent[7203] <= D(250)
    assert D(495) < spent[7204] <= D(500)  # 5 % of 10,000 USDT

    # the market rises 10 %; the leader sells everything: each copy is sold on the follower's account
    binance.market.set_price(BTC, binance.market.price(BTC) * D("1.10"))
    await confirmed(leader, "/sell BTC all")
    for follower in followers.values():
        closed = await follower.wait_for(
            lambda m: "Copied Trader7201" in m.text and "PnL" in m.text, timeout=20
        )
        assert "live" in closed.text
    await leader.wait_for(lambda m: "Copied to followers: 3 done" in m.text, timeout=20)
    for key in keys.values():
        [(_, bought, _), (side, sold, _)] = orders_of(binance, key)
        # Binance took its buy fee in BTC: what is held, down to the lot step, is sold; dust stays
        assert side == "sell" and bought - STEP <= sold < bought
        assert binance.balances(key.api_key)["BTC"] < STEP
        assert binance.balances(key.api_key)["USDT"] > D(10000)  # a profit, after the exchange's fees

    # the fee: 30 % of each follower's realised profit, half of it the leader's, exact to the credit unit
    async with stack.app.session_factory() as session:
        revenues = list(await session.scalars(select(LeaderRevenue).order_by(LeaderRevenue.id)))
        assert len(revenues) == 3
        for revenue in revenues:
            copy = await session.get(CopyOrder, revenue.copy_order_id)
            order = await session.get(Order, revenue.order_id)
            assert copy is not None and order is not None and order.reason == "copy"
            assert order.side == "sell" and order.exchange == "binance" and order.exchange_order_id
            assert revenue.profit == copy.realized_pnl == order.realized_pnl and revenue.profit > 0
            assert revenue.fee == (revenue.profit * D("0.30")).quantize(CREDIT, rounding=ROUND_HALF_UP)
            assert revenue.leader_share == (revenue.fee * D("0.50")).quantize(CREDIT, rounding=ROUND_DOWN)
            entries = list(
                await session.scalars(
                    select(CreditEntry).where(CreditEntry.idempotency_key.like(f"copyfee:{copy.id}%"))
                )
            )
            assert sum((e.amount for e in entries), D(0)) == -revenue.fee
            assert all(e.user_id == revenue.follower_id for e in entries)
        payers = {(await session.get(User, r.follower_id) or User()).telegram_id for r in revenues}
        total_share = sum((r.leader_share for r in revenues), D(0))
        total_fees = sum((r.fee for r in revenues), D(0))
    assert payers == set(sizes)
    await leader.send("/earnings")
    earnings = await leader.next_message()
    assert "3 fees from 3 followers" in earnings.text, earnings.text
    assert f"Your share: {money(total_share)} credits" in earnings.text, earnings.text
    assert f"Fees on copied profit: {money(total_fees)}" in earnings.text, earnings.text
    assert total_fees > total_share > 0


async def test_link_says_what_is_missing_and_a_granted_right_is_picked_up(stack: Stack) -> None:
    leader = stack.user(7301)
    await leader.send("/start")
    await leader.next_message()
    await plan_for(stack, 7301)
    await become_leader(stack, leader)

    # the bot is an administrator of the channel, but may not post there
    channel = await stack.client.create_channel("Quiet Calls", 7301)
    await stack.client.set_bot_member(channel, rights={"can_post_messages": False})
    await leader.send(f"/link {channel}")
    weak = await leader.next_message()
    assert "Quiet Calls is linked, but the bot needs the right to post messages." in weak.text, weak.text
    assert "edit" not in weak.text
    await confirmed(leader, "/buy BTC 100")
    await leader.sleep_until_idle(quiet=0.5)
    assert await stack.client.chat_messages(channel, by_bot=True) == []  # nothing posted there

    # the owner grants the right: Telegram tells the bot (my_chat_member) and the bot tells the leader
    answer = await stack.client.set_bot_member(channel, rights={"can_post_messages": True})
    assert list(answer["updates"]) == [str(stack.bot_id)]  # the my_chat_member, to the bot only
    told = await leader.wait_for(lambda m: "Quiet Calls" in m.text, timeout=10)
    assert "The bot has every right it needs in Quiet Calls now" in told.text, told.text
    await confirmed(leader, "/buy BTC 100")
    [card] = await stack.client.wait_chat_messages(channel, 1, timeout=10)
    assert "BTC/USDT LONG" in card.text and "Trader7301" in card.text

    # the bot is removed from the channel: the leader is told what it needs again
    await stack.client.set_bot_member(channel, "left")
    lost = await leader.wait_for(lambda m: "lost rights in Quiet Calls" in m.text, timeout=10)
    assert "to be an administrator" in lost.text and "the right to post messages" in lost.text
