"""Copy trading on both backends against the exchange emulators: recording is idempotent, a fan-out copies
to every follower (one failing without holding up the others), exits sell what was copied, live profit
pays the fee and the leader's share once, a drawdown pauses a follow, and the leaderboard ranks leaders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import create_session_factory
from db.models import CopyOrder, CopyPosition, CreditEntry, Follow, LeaderRevenue, Order, PaperBalance
from services.billing.entitlements import Entitlements
from services.billing.errors import PlanRequired
from services.copytrading import (
    BotRights,
    ChatInfo,
    Leaderboard,
    LeaderService,
    NewAction,
    client_order_id,
    parse_copy_start,
    signal_card,
)
from services.copytrading.chart import equity_chart_png
from services.copytrading.errors import BadAllocation, CannotFollowSelf
from services.trading.paper import round_step
from tests.integration.copy_support import CATALOGUE, CopyStack, copy_stack, follow, make_leader

BTC = "BTC/USDT"


@pytest.fixture
async def stack(engine: AsyncEngine) -> AsyncIterator[CopyStack]:
    async with copy_stack(create_session_factory(engine)) as built:
        yield built


async def balances(factory: async_sessionmaker[AsyncSession], account_id: int) -> dict[str, D]:
    async with factory() as session:
        rows = await session.scalars(select(PaperBalance).where(PaperBalance.account_id == account_id))
        return {row.asset: row.free for row in rows}


def entry(leader_id: int, ref: str, symbol: str = BTC, **kwargs: object) -> NewAction:
    return NewAction(leader_id, "entry", symbol, "buy", "post", ref, **kwargs)  # type: ignore[arg-type]


def exit_(leader_id: int, ref: str, close_pct: D = D(100), symbol: str = BTC) -> NewAction:
    return NewAction(leader_id, "exit", symbol, "sell", "post", ref, close_pct=close_pct)


async def test_leader_channels_and_follow_validation(stack: CopyStack) -> None:
    free_user = await stack.user()
    async with stack.factory() as session:
        with pytest.raises(PlanRequired):
            await LeaderService(session, Entitlements(session, CATALOGUE)).become(free_user)
    user, leader = await make_leader(stack)
    async with stack.factory() as session:
        service = LeaderService(session, Entitlements(session, CATALOGUE))
        weak = await service.link_channel(
            user.id, ChatInfo(-1001, "Alpha", "channel"), BotRights("administrator", can_post_messages=False)
        )
        assert not weak.rights_ok and weak.missing == ("post_messages", "edit_messages")
        assert await service.leader_for_chat(-1001) is None
        ok = await service.link_channel(
            user.id,
            ChatInfo(-1001, "Alpha", "channel"),
            BotRights("administrator", can_post_messages=True, can_edit_messages=True),
        )
        assert ok.rights_ok and ok.missing == ()
        assert (await service.leader_for_chat(-1001)) == leader
        assert await service.publish_targets(leader.id, "trade") == [-1001]
        assert await service.publish_targets(leader.id, "signal") == []
    follower = await stack.user()
    with pytest.raises(BadAllocation):
        await follow(stack, follower, leader.id, allocation_kind="percent", allocation_value=D(150))
    with pytest.raises(CannotFollowSelf):
        await follow(stack, user, leader.id, allocation_value=D(100))
    with pytest.raises(PlanRequired):
        await follow(stack, follower, leader.id, mode="live", allocation_value=D(100))


async def test_record_action_is_idempotent_and_posts_are_read(stack: CopyStack) -> None:
    user, leader = await make_leader(stack)
    mirror = stack.mirror()
    first = await mirror.record_action(entry(leader.id, "post:1:1", price=D(60000)))
    again = await mirror.record_action(entry(leader.id, "post:1:1", price=D(61000)))
    assert first.created and not again.created and again.action_id == first.action_id

    async with stack.factory() as session:
        await LeaderService(session, Entitlements(session, CATALOGUE)).link_channel(
            user.id, ChatInfo(-2002, "Beta", "group"), BotRights("administrator")
        )
    post = await mirror.record_post(-2002, 7, "BTC/USDT LONG Entry 60000-61000 TP 62500 64000 SL 58500")
    assert post is not None and post.created and post.action_id is not None
    view = await mirror.action(post.action_id)
    assert view is not None and view.price == D(60500) and view.stop_loss == D(58500)
    assert view.targets == (D(62500), D(64000))
    repeated = await mirror.record_post(-2002, 7, "BTC/USDT LONG Entry 60000-61000 TP 62500 64000 SL 58500")
    assert repeated is not None and not repeated.created and repeated.action_id == post.action_id
    refused = await mirror.record_post(-2002, 8, "BTC/USDT LONG Entry 60000 TP 59000 SL 58000")
    assert refused is not None and refused.rejected == "copy.signal.target_below_entry"
    assert await mirror.record_post(-2002, 9, "good morning") is None
    assert await mirror.record_post(-9999, 1, "BTC/USDT LONG Entry 60000 TP 62000") is None

    card = signal_card(view, leader)
    assert card.key == "copy.card.entry" and card.params["pair"] == BTC
    assert parse_copy_start(card.start_payload) is not None
    assert parse_copy_start(card.start_payload).action_id == view.id  # type: ignore[union-attr]


async def test_fan_out_copies_to_every_follower_and_exits_sell_what_was_copied(stack: CopyStack) -> None:
    _, leader = await make_leader(stack)
    fixed, percent, poor = await stack.user(), await stack.user(), await stack.user()
    fixed_account = await stack.paper_account(fixed)
    percent_account = await stack.paper_account(percent)
    await stack.paper_account(poor, usdt=D(20))
    async with stack.factory() as session:  # the fixed follower also holds BTC of their own
        row = await session.get(PaperBalance, (fixed_account, "USDT"))
        assert row is not None
        session.add(PaperBalance(account_id=fixed_account, asset="BTC", free=D("0.001"), locked=D(0)))
        await session.commit()
    fixed_follow = await follow(stack, fixed, leader.id, allocation_value=D(100))
    percent_follow = await follow(
        stack, percent, leader.id, allocation_kind="percent", allocation_value=D(2), max_per_trade=D(150)
    )
    poor_follow = await follow(stack, poor, leader.id, allocation_value=D(100))

    mirror = stack.mirror()
    recorded = await mirror.record_action(entry(leader.id, "post:5:1"))
    results = {r.follow.id: r for r in await mirror.fan_out(recorded.action_id)}
    assert results[fixed_follow].status == "done" and results[percent_follow].status == "done"
    assert results[poor_follow].status == "failed"
    assert results[poor_follow].reason == "trade.errors.insufficient_balance"
    assert results[poor_follow].notification_key == "copy.notify.failed_balance"
    fixed_buy = results[fixed_follow].execution
    percent_buy = results[percent_follow].execution
    assert fixed_buy is not None and percent_buy is not None
    assert D(99) < fixed_buy.cost + fixed_buy.fee <= D(100)
    # 2 % of 10,000 of equity is above the 150 USDT cap
    assert D(149) < percent_buy.cost + percent_buy.fee <= D(150)

    async with stack.factory() as session:
        orders = list(await session.scalars(select(Order).order_by(Order.id)))
        assert sorted(o.client_order_id for o in orders) == sorted(
            client_order_id(recorded.action_id, f) for f in (fixed_follow, percent_follow)
        )
        assert all(o.reason == "copy" for o in orders)
        statuses = dict((await session.execute(select(CopyOrder.follow_id, CopyOrder.status))).all())
        assert statuses == {fixed_follow: "done", percent_follow: "done", poor_follow: "failed"}

    again = await mirror.fan_out(recorded.action_id)  # replayed: nothing placed twice
    assert all(r.replayed for r in again)
    async with stack.factory() as session:
        assert await session.scalar(select(func.count(Order.id))) == 2

    half = await mirror.record_action(exit_(leader.id, "post:5:2", close_pct=D(50)))
    halves = {r.follow.id: r for r in await mirror.fan_out(half.action_id)}
    assert (
        halves[poor_follow].status == "skipped" and halves[poor_follow].reason == "copy.skip.nothing_copied"
    )
    step = D("0.00001")
    sold_half = halves[fixed_follow].execution
    assert sold_half is not None and sold_half.amount == round_step(fixed_buy.amount / 2, step)

    full = await mirror.record_action(exit_(leader.id, "post:5:3"))
    fulls = {r.follow.id: r for r in await mirror.fan_out(full.action_id)}
    sold_rest = fulls[fixed_follow].execution
    assert sold_rest is not None and sold_rest.amount == fixed_buy.amount - sold_half.amount
    assert (await balances(stack.factory, fixed_account))["BTC"] == D("0.001")  # their own BTC is untouched
    assert (await balances(stack.factory, percent_account)).get("BTC", D(0)) == 0
    async with stack.factory() as session:
        open_copies = await session.scalar(
            select(func.count(CopyPosition.id)).where(CopyPosition.status == "open")
        )
        assert open_copies == 0
        assert await session.scalar(select(func.count(LeaderRevenue.id))) == 0  # paper copies pay no fee


async def test_live_profit_pays_the_fee_and_the_leader_share_once(stack: CopyStack) -> None:
    _, leader = await make_leader(stack)
    live = await stack.user(plan="pro", credits=D(100))
    paper = await stack.user()
    await stack.live_account(live, "binance", {"USDT": D(5000)})
    await stack.paper_account(paper)
    live_follow = await follow(stack, live, leader.id, mode="live", allocation_value=D(500))
    paper_follow = await follow(stack, paper, leader.id, allocation_value=D(500))
    mirror = stack.mirror()

    opened = await mirror.record_action(entry(leader.id, "order:1"))
    results = {r.follow.id: r for r in await mirror.fan_out(opened.action_id)}
    assert results[live_follow].status == "done", results[live_follow]
    assert results[paper_follow].status == "done"
    live_buy = results[live_follow].execution
    assert live_buy is not None and live_buy.mode == "live"

    stack.market.set_price(BTC, stack.market.price(BTC) * D("1.10"))
    closed = await mirror.record_action(exit_(leader.id, "order:2"))
    exits = {r.follow.id: r for r in await mirror.fan_out(closed.action_id)}
    live_exit, paper_exit = exits[live_follow], exits[paper_follow]
    assert live_exit.status == "done" and paper_exit.status == "done"
    assert live_exit.execution is not None and live_exit.execution.realized_pnl is not None
    profit = live_exit.execution.realized_pnl
    assert profit > 0
    assert paper_exit.fee is None
    assert live_exit.fee is not None
    assert live_exit.fee.fee == (profit * D("0.3")).quantize(D("0.000001"))
    assert live_exit.fee.leader_share == (live_exit.fee.fee / 2).quantize(D("0.000001"))

    await mirror.fan_out(closed.action_id)
    async with stack.factory() as session:
        [revenue] = list(await session.scalars(select(LeaderRevenue)))
        assert revenue.follower_id == live.id and revenue.fee == live_exit.fee.fee
        fee_entries = list(
            await session.scalars(
                select(CreditEntry).where(
                    CreditEntry.idempotency_key.like(f"copyfee:{revenue.copy_order_id}%")
                )
            )
        )
        assert sum((e.amount for e in fee_entries), D(0)) == -revenue.fee
        earnings = await LeaderService(session, Entitlements(session, CATALOGUE)).earnings(leader.user_id)
        assert earnings.total_share == revenue.leader_share and earnings.fees_count == 1
        assert earnings.followers == 2


async def test_a_drawdown_pauses_the_follow(stack: CopyStack) -> None:
    _, leader = await make_leader(stack)
    follower = await stack.user()
    await stack.paper_account(follower)
    follow_id = await follow(stack, follower, leader.id, allocation_value=D(2000), stop_drawdown_pct=D(1))
    mirror = stack.mirror()
    first = await mirror.record_action(entry(leader.id, "post:9:1"))
    [done] = await mirror.fan_out(first.action_id)
    assert done.status == "done"
    stack.market.set_price(BTC, stack.market.price(BTC) * D("0.90"))
    second = await mirror.record_action(entry(leader.id, "post:9:2", symbol="ETH/USDT"))
    [paused] = await mirror.fan_out(second.action_id)
    assert paused.status == "paused" and paused.reason == "copy.paused_drawdown"
    assert paused.notification_key == "copy.notify.paused_drawdown"
    assert D(1) <= paused.params["drawdown"] < D(3)
    async with stack.factory() as session:
        row = await session.get(Follow, follow_id)
        assert row is not None and row.status == "paused" and row.pause_reason == "drawdown"
        assert await session.scalar(select(func.count(Order.id))) == 1
    # exits of what was copied still go through while paused
    closing = await mirror.record_action(exit_(leader.id, "post:9:3"))
    [sold] = await mirror.fan_out(closing.action_id)
    assert sold.status == "done" and sold.execution is not None and sold.execution.side == "sell"


async def test_leaderboard_ranks_by_return(stack: CopyStack) -> None:
    now = datetime.now(UTC)
    records = {
        "Best": (D(100), D(120), D(50)),
        "Worst": (D(100), D(90), D(50)),
        "Small": (D(100), D(110), D(10)),
    }
    leaders = {}
    for name, (buy, sell, pct) in records.items():
        _, leader = await make_leader(stack, name)
        leaders[name] = leader
        mirror = stack.mirror()
        mirror.clock = lambda: now - timedelta(days=2)
        await mirror.record_action(
            entry(leader.id, f"t:{name}:1", symbol="SOL/USDT", price=buy, pct_equity=pct)
        )
        mirror.clock = lambda: now - timedelta(days=1)
        await mirror.record_action(
            NewAction(
                leader.id, "exit", "SOL/USDT", "sell", "post", f"t:{name}:2", price=sell, close_pct=D(100)
            )
        )
    follower = await stack.user()
    await stack.paper_account(follower)
    await follow(stack, follower, leaders["Small"].id, allocation_value=D(10))
    async with stack.factory() as session:
        board = Leaderboard(session)
        rows = await board.rank(7)
        assert [row.display_name for row in rows] == ["Best", "Small", "Worst"]
        assert rows[0].stats.return_pct == D("10.00") and rows[0].stats.win_rate == D("100.00")
        assert rows[2].stats.return_pct == D("-5.00") and rows[2].stats.max_drawdown_pct == D("5.00")
        assert rows[1].followers == 1 and rows[0].stats.trades == 2
        profile = await board.profile(leaders["Best"].id)
        assert profile.stats[30].return_pct == D("10.00") and len(profile.recent) == 2
    png = equity_chart_png(profile.equity, "Best")
    assert png.startswith(b"\x89PNG")
