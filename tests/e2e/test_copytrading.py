"""Copy trading end to end: a leader links channels (the bot's missing rights are reported), their confirmed
orders are posted as cards with a Copy button, a follower follows through that button and gets scaled copies
and a notification per action, hand-written channel posts are read and copied, follows are paused and
stopped, and the leaderboard shows the leader with a chart. Three followers with different allocations each
get their own size, and one refused by a risk limit does not hold the others up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path

import pytest
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import select

from bot.settings import CopySettings
from db.models import CopyOrder, Follow, Leader, Order, PaperBalance, Position, User
from sandbox.telegram.client import BotMessage, ChatUser
from tests.e2e.test_accounts_live import give_plan
from tests.stack import Stack, bot_stack

ALPHA = -1001001
BETA = -1001002


@pytest.fixture
async def stack(tmp_path: Path, database_url: str) -> AsyncIterator[Stack]:
    async with bot_stack(tmp_path, database_url=database_url, exchanges=True) as stack:
        yield stack


async def make_channel(
    stack: Stack, chat_id: int, title: str, owner_id: int, *, rights: dict[str, bool] | None = None
) -> None:
    """The leader creates a channel and makes the bot an administrator there (with ``rights`` overriding
    Telegram's defaults), all through the emulator's control API."""
    await stack.client.create_chat("channel", title, owner_id, chat_id=chat_id)
    await stack.client.set_bot_member(chat_id, "administrator", rights=rights)


async def channel_post(stack: Stack, chat_id: int, owner_id: int, text: str) -> None:
    """The channel's owner posts (as the channel); the bot, an administrator there, gets a channel_post."""
    await stack.client.post_in(chat_id, owner_id, text)


def url_of(message: BotMessage) -> str:
    [[(_, url)]] = message.buttons
    return str(url)


async def confirmed(user: ChatUser, command: str) -> BotMessage:
    await user.send(command)
    card = await user.next_message(timeout=10)
    await user.press(card, text="✅ Confirm")
    return await user.next_message(timeout=10)


async def paper(stack: Stack, telegram_id: int) -> dict[str, D]:
    async with stack.app.session_factory() as session:
        user_id = await session.scalar(select(User.id).where(User.telegram_id == telegram_id))
        orders = list(await session.scalars(select(Order).where(Order.reason == "copy")))
        account_ids = {o.account_id for o in orders}
        rows = await session.scalars(select(PaperBalance).where(PaperBalance.account_id.in_(account_ids)))
        assert user_id is not None
        return {row.asset: row.free for row in rows}


async def test_leader_channel_follower_copies(stack: Stack) -> None:
    leader, follower = stack.user(7001), stack.user(7002)
    await leader.send("/start")
    await leader.next_message()
    await follower.send("/start")
    await follower.next_message()
    await give_plan(stack, 7001)

    # becoming a leader and linking channels
    await leader.send("/leader")
    intro = await leader.next_message()
    assert "✅ Become a leader" in intro.button_texts
    await leader.press(intro, text="✅ Become a leader")
    panel = await leader.next_message()
    assert "Trader7001" in panel.text and "None yet" in panel.text
    await make_channel(stack, ALPHA, "Alpha Signals", 7001)
    await make_channel(stack, BETA, "Beta Calls", 7001, rights={"can_post_messages": False})
    await leader.send(f"/link {ALPHA}")
    linked = await leader.next_message()
    assert "Alpha Signals is linked" in linked.text
    await leader.send(f"/link {BETA}")
    weak = await leader.next_message()
    assert "Beta Calls is linked, but the bot needs the right to post messages." in weak.text

    # the leader's first buy is posted to the channel with a Copy button
    filled = await confirmed(leader, "/buy BTC 500")
    assert "Bought" in filled.text
    report = await leader.next_message(timeout=10)
    assert "Cards posted: 1" in report.text
    [card] = await stack.client.wait_chat_messages(ALPHA, 1, timeout=10)
    assert "BTC/USDT LONG" in card.text and "Trader7001" in card.text
    url = url_of(card)
    assert url.startswith("https://t.me/cryptouniverse_bot?start=copy_")
    assert await stack.client.chat_messages(BETA, by_bot=True) == []

    # the follower presses the Copy link: profile with its chart, then the follow card
    opened = await follower.open_link(url)
    assert opened["message"]["text"] == "/start " + url.split("start=")[1]
    profile = await follower.next_message(timeout=10)
    assert profile.photo and "Trader7001" in profile.text
    setup = await follower.next_message(timeout=10)
    assert "Follow Trader7001" in setup.text and "100 USDT" in setup.text
    await follower.press(setup, text="250 USDT")
    setup = await follower.next_message()
    assert "<b>250 USDT</b>" in setup.html or "250 USDT" in setup.text
    await follower.press(setup, text="✅ Follow")
    followed = await follower.next_message()
    assert "You follow Trader7001 now" in followed.text

    # the leader buys: the follower's paper account gets 250 USDT of it
    await confirmed(leader, "/buy BTC 300")
    report = await leader.next_message(timeout=10)
    assert "1 done" in report.text
    copied = await follower.next_message(timeout=10)
    assert "Copied Trader7001" in copied.text and "BTC" in copied.text and "paper" in copied.text
    money = await paper(stack, 7002)
    assert money["BTC"] > 0 and D(9750) <= money["USDT"] < D(9751)
    await stack.client.wait_chat_messages(ALPHA, 2, timeout=10)

    # a hand-written post in the channel is read and copied; a contradictory one is refused
    price = stack.exchanges["binance"].market.price("ETH/USDT")
    low, high = (price * D("0.99")).quantize(D(1)), (price * D("1.01")).quantize(D(1))
    target, stop = (price * D("1.05")).quantize(D(1)), (price * D("0.95")).quantize(D(1))
    await channel_post(stack, ALPHA, 7001, f"ETH/USDT LONG Entry {low}-{high} TP {target} SL {stop}")
    eth = await follower.next_message(timeout=10)
    assert "Copied Trader7001" in eth.text and "ETH" in eth.text
    told = await leader.next_message(timeout=10)
    assert "post in Alpha Signals was copied: 1 done" in told.text
    await channel_post(stack, ALPHA, 7001, f"ETH/USDT LONG Entry {high} TP {low} SL {stop}")
    refused = await leader.next_message(timeout=10)
    assert "was not copied" in refused.text and "every target must be above the entry" in refused.text
    assert (await paper(stack, 7002))["ETH"] > 0

    # the leader moves the stop-loss: the follower's copied position gets the same stop
    stop_btc = (stack.exchanges["binance"].market.price("BTC/USDT") * D("0.9")).quantize(D(1))
    await leader.send(f"/sl BTC {stop_btc}")
    assert "Stop-loss for BTC/USDT set" in (await leader.next_message(timeout=10)).text
    await leader.next_message(timeout=10)  # the copy report
    moved = await follower.next_message(timeout=10)
    assert "Copied Trader7001" in moved.text and "BTC" in moved.text, moved.text
    async with stack.app.session_factory() as session:
        stops = {
            p.user_id: p.stop_loss
            for p in await session.scalars(select(Position).where(Position.symbol == "BTC/USDT"))
        }
    assert set(stops.values()) == {stop_btc}

    # the leader sells: the follower's copy is closed
    await confirmed(leader, "/sell BTC all")
    await leader.next_message(timeout=10)
    closed = await follower.next_message(timeout=10)
    assert "Copied Trader7001" in closed.text and "PnL" in closed.text
    assert (await paper(stack, 7002)).get("BTC", D(0)) == 0
    async with stack.app.session_factory() as session:
        statuses = list(await session.scalars(select(CopyOrder.status)))
    assert statuses == ["done", "done", "done", "done"]

    # /following: pause, then stop
    await follower.send("/following")
    listing = await follower.next_message()
    assert "Trader7001" in listing.text and "active" in listing.text
    await follower.press(listing, text="⏸ Trader7001")
    paused = await follower.next_message()
    assert "Paused" in paused.text and "▶️ Trader7001" in paused.button_texts
    await follower.press(paused, text="⏹ Stop")
    stopped = await follower.next_message()
    assert "You stopped following Trader7001" in stopped.text
    async with stack.app.session_factory() as session:
        assert await session.scalar(select(Follow.status)) == "stopped"

    # the leaderboard, a profile with its chart and a Follow button
    await follower.send("/leaders")
    board = await follower.next_message()
    assert "#1 <b>Trader7001</b>" in board.html or "#1 Trader7001" in board.text
    await follower.press(board, text="#1 Trader7001")
    shown = await follower.next_message(timeout=10)
    assert shown.photo and "➕ Follow" in shown.button_texts
    assert (await follower.download(shown)).startswith(b"\x89PNG")

    # the leader's earnings (paper copies pay no fee)
    await leader.send("/earnings")
    earnings = await leader.next_message()
    assert "Earnings" in earnings.text and "No copied live profit yet" in earnings.text


async def test_three_followers_with_different_allocations_and_an_isolated_refusal(stack: Stack) -> None:
    leader = stack.user(7101)
    await leader.send("/start")
    await leader.next_message()
    await give_plan(stack, 7101)
    await leader.send("/leader")
    await leader.press(await leader.next_message(), text="✅ Become a leader")
    await leader.next_message()
    async with stack.app.session_factory() as session:
        leader_user = await session.scalar(select(User).where(User.telegram_id == 7101))
        assert leader_user is not None
        leader_id = await session.scalar(select(Leader.id).where(Leader.user_id == leader_user.id))
    allocations = {7102: "100", 7103: "5%", 7104: "9000"}  # the last is over the 25% position limit
    followers = {telegram_id: stack.user(telegram_id) for telegram_id in allocations}
    for telegram_id, allocation in allocations.items():
        follower = followers[telegram_id]
        await follower.send(f"/follow {leader_id} {allocation}")
        setup = await follower.next_message(timeout=10)
        await follower.press(setup, text="✅ Follow")
        assert "You follow Trader7101 now" in (await follower.next_message(timeout=10)).text

    await confirmed(leader, "/buy BTC 200")
    report = await leader.next_message(timeout=15)
    assert "2 done, 1 failed" in report.text, report.text
    for telegram_id in (7102, 7103):
        copied = await followers[telegram_id].next_message(timeout=15)
        assert "Copied Trader7101" in copied.text, copied.text
    refused = await followers[7104].next_message(timeout=15)
    assert "Copied" not in refused.text and "Trader7101" in refused.text, refused.text

    async with stack.app.session_factory() as session:
        spent: dict[int, D] = {}
        for order in await session.scalars(select(Order).where(Order.reason == "copy")):
            owner = await session.get(User, order.user_id)
            assert owner is not None
            spent[owner.telegram_id] = order.cost + order.fee
    assert set(spent) == {7102, 7103}
    assert D(99) < spent[7102] <= D(100)  # fixed 100 USDT
    assert D(495) < spent[7103] <= D(500)  # 5% of 10,000 USDT


async def test_the_fee_and_the_fan_out_follow_the_settings(tmp_path: Path, sqlite_url: str) -> None:
    tuned = CopySettings(fee_rate=D("0.2"), leader_share=D("0.25"), fan_out_workers=2)
    async with bot_stack(tmp_path, database_url=sqlite_url, copy_trading=tuned) as stack:
        relay = stack.app.dispatcher["copy_relay"]
        assert (relay.mirror.config.fee_rate, relay.mirror.config.leader_share) == (D("0.2"), D("0.25"))
        assert stack.running.copy_queue is not None and stack.running.copy_queue.workers == 2
    with pytest.raises(PydanticValidationError):
        CopySettings(fee_rate=D("1.5"))
