"""The copy fan-out queue: a leader's action is recorded in the handler's path and carried out by the
application's workers; each follower gets one order and one notification, the card is posted once and the
leader gets one report, whether the action is enqueued twice, found again after a crash by the sweep, or raced
for by two bot processes on one PostgreSQL database. And the leader's fill message does not wait for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from db import migrate
from db.engine import create_engine, create_session_factory
from db.models import CopyOrder, Leader, LeaderAction, Order, User
from db.types import utcnow
from sandbox.telegram.client import BotMessage, ChatUser
from services.billing.entitlements import Entitlements
from services.copytrading import BotRights, ChatInfo, LeaderService, NewAction, client_order_id
from services.copytrading.queue import FanOutQueue
from services.copytrading.relay import CopyRelay
from services.copytrading.views import LeaderView
from services.users import UserProfile
from tests.e2e.test_accounts_live import give_plan
from tests.integration.copy_support import (
    CATALOGUE,
    CopyStack,
    RecordingNotifier,
    RecordingPublisher,
    copy_stack,
    follow,
    make_leader,
)
from tests.stack import Stack, bot_stack

BTC = "BTC/USDT"
CHANNEL = -100_555


@pytest.fixture
async def stack(engine: AsyncEngine) -> AsyncIterator[CopyStack]:
    async with copy_stack(create_session_factory(engine)) as built:
        yield built


async def leader_with_followers(
    stack: CopyStack, followers: int
) -> tuple[UserProfile, LeaderView, list[UserProfile], list[int]]:
    """A leader posting to one channel and `followers` paper followers copying 100 USDT each."""
    user, leader = await make_leader(stack)
    async with stack.factory() as session:
        await LeaderService(session, Entitlements(session, CATALOGUE)).link_channel(
            user.id,
            ChatInfo(CHANNEL, "Alpha", "channel"),
            BotRights("administrator", can_post_messages=True, can_edit_messages=True),
        )
    users, follows = [], []
    for _ in range(followers):
        follower = await stack.user()
        await stack.paper_account(follower)
        users.append(follower)
        follows.append(await follow(stack, follower, leader.id, allocation_value=D(100)))
    return user, leader, users, follows


def trade(leader_id: int, ref: str, symbol: str = BTC) -> NewAction:
    return NewAction(leader_id, "entry", symbol, "buy", "trade", f"order:{ref}", pct_equity=D(5))


async def copy_orders(stack: CopyStack, action_id: int) -> list[str]:
    """The client order ids of the orders placed for an action (one per follower when all went well)."""
    async with stack.factory() as session:
        rows = await session.scalars(
            select(Order.client_order_id).where(Order.client_order_id.like(f"cp{action_id}f%"))
        )
        return sorted(rows)


async def action_row(stack: CopyStack, action_id: int) -> LeaderAction:
    async with stack.factory() as session:
        row = await session.get(LeaderAction, action_id)
        assert row is not None
        return row


def reports(notifier: RecordingNotifier, leader: UserProfile) -> list[dict[str, Any]]:
    return [params for chat, key, params in notifier.sent if chat == leader.telegram_id]


async def test_the_queue_carries_an_action_out_once_and_reports_to_the_leader(stack: CopyStack) -> None:
    leader_user, leader, followers, follows = await leader_with_followers(stack, 3)
    notifier, publisher = RecordingNotifier(), RecordingPublisher()
    relay = stack.relay(notifier, publisher)
    queue = FanOutQueue(relay, workers=2)
    queue.start()
    try:
        recorded = await relay.mirror.record_action(trade(leader.id, "q1"))
        assert await relay.dispatch(recorded) is None  # queued: the caller does not wait
        assert not queue.enqueue(recorded.action_id)  # already waiting
        await queue.join()
        assert await copy_orders(stack, recorded.action_id) == sorted(
            client_order_id(recorded.action_id, f) for f in follows
        )
        for follower in followers:
            assert notifier.to(follower.telegram_id) == ["copy.notify.entry"]
        [report] = reports(notifier, leader_user)
        assert notifier.to(leader_user.telegram_id) == ["copy.leader.copied"]
        assert report["done"] == 3 and report["failed"] == 0 and report["published"] == 1
        assert publisher.posts == [(CHANNEL, "copy.card.entry", f"copy_{leader.id}_{recorded.action_id}")]
        row = await action_row(stack, recorded.action_id)
        assert row.fanned_out_at is not None and row.published_at is not None
        assert row.fanout_attempts == 1 and row.fanout_lease_until is None

        # enqueued again (a redelivered update, another process): the claim says it is finished
        assert queue.enqueue(recorded.action_id)
        await queue.join()
        assert await queue.sweep(older_than=timedelta(0)) == 0
        assert len(notifier.sent) == 4 and len(publisher.posts) == 1
        assert len(await copy_orders(stack, recorded.action_id)) == 3
    finally:
        await queue.stop()


async def test_without_a_queue_the_relay_carries_out_inline_once(stack: CopyStack) -> None:
    leader_user, leader, followers, _ = await leader_with_followers(stack, 2)
    notifier, publisher = RecordingNotifier(), RecordingPublisher()
    relay = stack.relay(notifier, publisher)
    recorded = await relay.mirror.record_action(trade(leader.id, "inline"))
    report = await relay.dispatch(recorded)
    assert report is not None and report.counts == {"done": 2} and report.published == 1
    assert notifier.to(leader_user.telegram_id) == []  # the caller answers with the report
    assert await relay.dispatch(recorded) is None  # finished: nothing runs twice
    assert [key for _, key, _ in notifier.sent] == ["copy.notify.entry"] * 2
    assert len(publisher.posts) == 1 and len(await copy_orders(stack, recorded.action_id)) == 2
    assert {chat for chat, _, _ in notifier.sent} == {f.telegram_id for f in followers}


async def test_the_sweep_finishes_what_a_crash_left_exactly_once(stack: CopyStack) -> None:
    leader_user, leader, followers, follows = await leader_with_followers(stack, 3)
    notifier, publisher = RecordingNotifier(), RecordingPublisher()
    relay = stack.relay(notifier, publisher)
    queue = FanOutQueue(relay, workers=2)  # not started yet: the process that recorded these has died

    # 1. recorded, never fanned out (the process died right after the leader's update)
    lost = await relay.mirror.record_action(trade(leader.id, "lost"))
    # 2. half done: one follower copied (and told), then the process died holding the claim
    half = await relay.mirror.record_action(trade(leader.id, "half", symbol="ETH/USDT"))
    dead = await relay.claims.claim(half.action_id)
    assert dead is not None
    action = await relay.mirror.action(half.action_id)
    assert action is not None
    first = await relay.mirror._copy_one(action, leader.display_name, follows[0])
    assert first is not None and first.status == "done"
    await relay.notify(first)
    assert await relay.claims.claim(half.action_id) is None  # its lease still runs

    queue.start()
    try:
        assert await queue.sweep(stack.tenant_id, older_than=timedelta(0)) == 1  # the held one waits
        await queue.join()
        async with stack.factory() as session:  # the lease runs out
            await session.execute(
                update(LeaderAction)
                .where(LeaderAction.id == half.action_id)
                .values(fanout_lease_until=utcnow() - timedelta(seconds=1))
            )
            await session.commit()
        assert await queue.sweep(stack.tenant_id + 1, older_than=timedelta(0)) == 0  # another tenant's
        assert await queue.sweep(stack.tenant_id, older_than=timedelta(0)) == 1
        await queue.join()
        assert await queue.sweep(stack.tenant_id, older_than=timedelta(0)) == 0
    finally:
        await queue.stop()

    for recorded in (lost, half):
        assert await copy_orders(stack, recorded.action_id) == sorted(
            client_order_id(recorded.action_id, f) for f in follows
        )
        row = await action_row(stack, recorded.action_id)
        assert row.fanned_out_at is not None and row.published_at is not None
    assert (await action_row(stack, half.action_id)).fanout_attempts == 2
    # every follower told once per action, the first follower of `half` by the process that died
    for follower in followers:
        assert notifier.to(follower.telegram_id) == ["copy.notify.entry"] * 2
    assert notifier.to(leader_user.telegram_id) == ["copy.leader.copied"] * 2
    assert all(report["done"] == 3 for report in reports(notifier, leader_user))
    assert sorted(payload for _, _, payload in publisher.posts) == sorted(
        f"copy_{leader.id}_{r.action_id}" for r in (lost, half)
    )


@pytest.mark.postgres
async def test_two_processes_racing_on_the_same_actions_copy_and_post_once(postgres_url: str) -> None:
    """Two bot processes (each its own database pool, relay, workers, notifier and publisher) are handed the
    same actions at once, by their handlers and by their sweeps: one of them carries each out."""
    engines = [create_engine(postgres_url), create_engine(postgres_url)]
    await migrate.upgrade(engines[0])
    queues: list[FanOutQueue] = []
    try:
        async with copy_stack(create_session_factory(engines[0])) as stack:
            leader_user, leader, followers, follows = await leader_with_followers(stack, 5)
            notifiers = [RecordingNotifier(), RecordingNotifier()]
            publishers = [RecordingPublisher(delay=0.01), RecordingPublisher(delay=0.01)]
            relays: list[CopyRelay] = [
                stack.relay(notifiers[n], publishers[n], create_session_factory(engines[n])) for n in (0, 1)
            ]
            queues = [FanOutQueue(relay, workers=3) for relay in relays]
            actions = [
                await relays[0].mirror.record_action(trade(leader.id, f"race{n}", symbol=symbol))
                for n, symbol in enumerate(("BTC/USDT", "ETH/USDT", "SOL/USDT"))
            ]
            for queue in queues:
                queue.start()
            for recorded in actions:
                for queue in queues:
                    assert queue.enqueue(recorded.action_id)
            swept = await asyncio.gather(
                *(queue.sweep(stack.tenant_id, older_than=timedelta(0)) for queue in queues)
            )
            assert swept == [0, 0]  # all still waiting in both queues
            await asyncio.gather(*(queue.join() for queue in queues))

            sent = notifiers[0].sent + notifiers[1].sent
            posts = publishers[0].posts + publishers[1].posts
            for recorded in actions:
                assert await copy_orders(stack, recorded.action_id) == sorted(
                    client_order_id(recorded.action_id, f) for f in follows
                )
            async with stack.factory() as session:
                statuses = list(await session.scalars(select(CopyOrder.status)))
                assert statuses == ["done"] * 15
                unfinished = await session.scalar(
                    select(func.count(LeaderAction.id)).where(LeaderAction.fanned_out_at.is_(None))
                )
                assert unfinished == 0
            for follower in followers:
                assert sorted(chat for chat, _, _ in sent).count(follower.telegram_id) == 3
            assert [key for chat, key, _ in sent if chat == leader_user.telegram_id] == [
                "copy.leader.copied"
            ] * 3
            assert sorted(payload for _, _, payload in posts) == sorted(
                f"copy_{leader.id}_{r.action_id}" for r in actions
            )
            assert queues[0].completed + queues[1].completed == 3
    finally:
        for queue in queues:
            await queue.stop()
        for engine in engines:
            await engine.dispose()


# ------------------------------------------------------------------------------- the bot, end to end


async def confirmed(user: ChatUser, command: str) -> BotMessage:
    await user.send(command)
    card = await user.next_message(timeout=10)
    await user.press(card, text="✅ Confirm")
    return await user.next_message(timeout=10)


async def user_stored(stack: Stack, telegram_id: int) -> None:
    for _ in range(100):
        async with stack.app.session_factory() as session:
            if await session.scalar(select(User.id).where(User.telegram_id == telegram_id)) is not None:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"user {telegram_id} was not stored")


async def test_the_leaders_fill_does_not_wait_for_the_fan_out(tmp_path: Path, database_url: str) -> None:
    async with bot_stack(tmp_path, database_url=database_url, exchanges=True) as stack:
        leader, follower = stack.user(7301), stack.user(7302)
        await leader.send("/start")
        await leader.next_message()
        await user_stored(stack, 7301)  # the reply can come before the update's commit
        await give_plan(stack, 7301)
        await leader.send("/leader")
        await leader.press(await leader.next_message(), text="✅ Become a leader")
        await leader.next_message()
        async with stack.app.session_factory() as session:
            leader_id = await session.scalar(
                select(Leader.id).join(User, User.id == Leader.user_id).where(User.telegram_id == 7301)
            )
        assert leader_id is not None
        await follower.send("/start")
        await follower.next_message()
        await follower.send(f"/follow {leader_id} 100")
        await follower.press(await follower.next_message(timeout=10), text="✅ Follow")
        assert "You follow" in (await follower.next_message(timeout=10)).text

        queue = stack.running.copy_queue
        assert queue is not None and queue.running
        relay = queue.relay
        gate = asyncio.Event()
        fan_out = relay.mirror.fan_out

        async def held(action_id: int, *args: Any) -> Any:
            await gate.wait()
            return await fan_out(action_id, *args)

        relay.mirror.fan_out = held  # type: ignore[method-assign,assignment]
        filled = await confirmed(leader, "/buy BTC 300")
        assert "Bought" in filled.text  # answered while the copies wait
        await leader.expect_silence(0.5)
        assert queue.pending == 1
        async with stack.app.session_factory() as session:
            assert await session.scalar(select(func.count(LeaderAction.id))) == 1  # recorded already
            assert await session.scalar(select(func.count(CopyOrder.id))) == 0

        gate.set()
        report = await leader.next_message(timeout=10)
        assert "1 done" in report.text and "Cards posted: 0" in report.text, report.text
        copied = await follower.next_message(timeout=10)
        assert "Copied Trader7301" in copied.text
        async with stack.app.session_factory() as session:
            row = await session.scalar(select(LeaderAction))
            assert row is not None and row.fanned_out_at is not None
