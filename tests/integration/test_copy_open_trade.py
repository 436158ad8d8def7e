"""Copying a leader's open trade late (the Copy link's "Copy this open trade now?"), on both backends against
the exchange emulators: an open entry is offered with the follow's size and copied once, however often
"Copy now" is pressed (at the same time or later); a closed trade, a price beyond the slippage guard, a
paused follow, an expired button and a trade the fan-out already copied are refused without an order; and
the leader's later exit is mirrored to the late copy like to any other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_session_factory
from db.models import CopyOrder, CopyPosition, Order, PaperBalance
from services.billing.entitlements import Entitlements
from services.copytrading import FollowService, NewAction, OpenTradeCopier, client_order_id
from services.copytrading.open_trade import REFUSED
from tests.integration.copy_support import (
    CATALOGUE,
    CopyStack,
    RecordingNotifier,
    copy_stack,
    follow,
    make_leader,
)

BTC = "BTC/USDT"


@pytest.fixture
async def stack(engine: AsyncEngine) -> AsyncIterator[CopyStack]:
    async with copy_stack(create_session_factory(engine)) as built:
        yield built


def entry(leader_id: int, ref: str, **kwargs: object) -> NewAction:
    return NewAction(leader_id, "entry", BTC, "buy", "post", ref, **kwargs)  # type: ignore[arg-type]


async def move_price(stack: CopyStack, price: D) -> None:
    stack.market.set_price(BTC, price)
    await asyncio.sleep(0.35)  # tickers are shared between callers for 0.3 s


def exit_(leader_id: int, ref: str, close_pct: D = D(100)) -> NewAction:
    return NewAction(leader_id, "exit", BTC, "sell", "post", ref, close_pct=close_pct)


async def held(stack: CopyStack, account_id: int, asset: str = "BTC") -> D:
    async with stack.factory() as session:
        row = await session.get(PaperBalance, (account_id, asset))
        return row.free if row is not None else D(0)


async def count(stack: CopyStack, model: type, *where: object) -> int:
    async with stack.factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)  # type: ignore[arg-type]


async def test_open_trade_is_copied_once_and_its_exit_is_mirrored(stack: CopyStack) -> None:
    _, leader = await make_leader(stack)
    notifier = RecordingNotifier()
    relay = stack.relay(notifier)
    recorded = await relay.mirror.record_action(entry(leader.id, "post:1:1"))  # at the market's price
    x = recorded.action_id
    assert await relay.mirror.fan_out(x) == []  # nobody followed yet

    follower = await stack.user()
    account = await stack.paper_account(follower)
    follow_id = await follow(stack, follower, leader.id, allocation_value=D(100))

    offer = await relay.open_trade_offer(follower.id, x)
    assert offer is not None and offer.ok and offer.following, offer
    assert offer.follow_id == follow_id and offer.symbol == BTC and offer.mode == "paper"
    assert offer.entry is not None and offer.price is not None and offer.move_pct is not None
    assert abs(offer.move_pct) < D(1) and offer.spend == D(100)
    assert offer.amount is not None and offer.amount == (D(100) / offer.price).quantize(
        D("1e-8"), "ROUND_DOWN"
    )

    # a double press: both at once, then once more later, copy once
    first, second = await asyncio.gather(
        relay.copy_open_trade(follower.id, x, offered_at=offer.priced_at),
        relay.copy_open_trade(follower.id, x, offered_at=offer.priced_at),
    )
    copied = [late for late in (first, second) if late.result is not None]
    assert len(copied) == 1, (first, second)
    [done] = copied
    assert done.result is not None and done.result.status == "done", done.result
    assert (
        done.result.execution is not None and D(99) < done.result.execution.cost + done.result.execution.fee
    )
    other = second if done is first else first
    assert other.refused in (REFUSED + "in_progress", REFUSED + "already_copied"), other
    again = await relay.copy_open_trade(follower.id, x, offered_at=offer.priced_at)
    assert again.result is None and again.refused == REFUSED + "already_copied"

    assert await count(stack, Order, Order.client_order_id == client_order_id(x, follow_id)) == 1
    assert await count(stack, Order) == 1
    assert await count(stack, CopyOrder, CopyOrder.action_id == x, CopyOrder.status == "done") == 1
    assert notifier.to(follower.telegram_id) == ["copy.notify.entry"]  # the fan-out's own notification
    bought = await held(stack, account)
    assert bought > 0

    # the leader exits: the late copy is sold like any other
    out = await relay.mirror.record_action(exit_(leader.id, "post:1:2"))
    report = await relay.run_fan_out(out.action_id, tell_leader=False)
    assert report is not None and [r.status for r in report.results] == ["done"]
    sold = report.results[0].execution
    assert sold is not None and sold.amount == bought
    assert await held(stack, account) == 0
    assert (
        await count(stack, CopyPosition, CopyPosition.follow_id == follow_id, CopyPosition.status == "open")
        == 0
    )
    assert notifier.to(follower.telegram_id) == ["copy.notify.entry", "copy.notify.exit"]

    # and now the trade is closed: nothing more to offer
    closed = await relay.open_trade_offer(follower.id, x)
    assert closed is not None and closed.refused == REFUSED + "already_copied"


async def test_closed_slipped_paused_expired_and_copied_trades_are_refused(stack: CopyStack) -> None:
    _, leader = await make_leader(stack)
    notifier = RecordingNotifier()
    relay = stack.relay(notifier)
    mirror = relay.mirror
    follower = await stack.user()
    account = await stack.paper_account(follower)

    # a trade the leader exited is closed (a partial exit leaves it open)
    closed = (await mirror.record_action(entry(leader.id, "post:2:1"))).action_id
    follow_id = await follow(stack, follower, leader.id, allocation_value=D(100))
    half = (await mirror.record_action(exit_(leader.id, "post:2:2", close_pct=D(50)))).action_id
    partly = await relay.open_trade_offer(follower.id, closed)
    assert partly is not None
    assert partly.ok, partly.refused
    await mirror.record_action(exit_(leader.id, "post:2:3"))
    offer = await relay.open_trade_offer(follower.id, closed)
    assert offer is not None and offer.refused == REFUSED + "closed"
    late = await relay.copy_open_trade(follower.id, closed)
    assert late.result is None and late.refused == REFUSED + "closed"
    assert await relay.open_trade_offer(follower.id, half) is None  # an exit is nothing to offer

    # the price ran away from the leader's entry: beyond the 2 % guard (and within a wider one)
    price = stack.market.price(BTC)
    slipped = (await mirror.record_action(entry(leader.id, "post:2:4", price=price))).action_id
    await move_price(stack, price * D("1.05"))
    offer = await relay.open_trade_offer(follower.id, slipped)
    assert offer is not None
    assert offer.refused == REFUSED + "slippage", (offer.price, offer.move_pct)
    assert (
        offer.move_pct is not None and D("4.9") < offer.move_pct < D("5.1") and offer.params["limit"] == D(2)
    )
    late = await relay.copy_open_trade(follower.id, slipped)
    assert late.result is None and late.refused == REFUSED + "slippage"
    wide = OpenTradeCopier(stack.mirror(open_trade_slippage_pct=D(10)))
    wider = await wide.offer(follower.id, slipped)
    assert wider is not None and wider.ok, wider
    await move_price(stack, price * D("0.97"))  # cheaper than the leader paid: still a copy
    cheaper = await relay.open_trade_offer(follower.id, slipped)
    assert cheaper is not None and cheaper.ok and cheaper.move_pct is not None and cheaper.move_pct < 0

    # a button older than its validity
    assert cheaper.priced_at is not None
    stale_at = cheaper.priced_at - timedelta(seconds=mirror.config.open_trade_offer_seconds + 1)
    late = await relay.copy_open_trade(follower.id, slipped, offered_at=stale_at)
    assert late.result is None and late.refused == REFUSED + "expired"

    # a paused follow copies no entries; a stopped one neither; someone not following is told so
    async with stack.factory() as session:
        service = FollowService(session, Entitlements(session, CATALOGUE), stack.trading(session))
        await service.pause(follower.id, follow_id)
    paused = await relay.copy_open_trade(follower.id, slipped)
    assert paused.result is None and paused.refused == REFUSED + "paused"
    assert paused.offer is not None and paused.offer.following
    async with stack.factory() as session:
        service = FollowService(session, Entitlements(session, CATALOGUE), stack.trading(session))
        await service.stop(follower.id, follow_id)
    stopped = await relay.open_trade_offer(follower.id, slipped)
    assert stopped is not None and stopped.refused == REFUSED + "stopped" and not stopped.following
    stranger = await stack.user()
    nobody = await relay.open_trade_offer(stranger.id, slipped)
    assert nobody is not None and nobody.refused == REFUSED + "not_following" and not nobody.following
    assert await count(stack, Order) == 0 and await count(stack, CopyOrder) == 0
    assert await held(stack, account) == 0

    # a trade the fan-out copied to this follow is not copied again
    again = await follow(stack, follower, leader.id, allocation_value=D(50))
    fanned = (await mirror.record_action(entry(leader.id, "post:2:5"))).action_id
    [result] = await mirror.fan_out(fanned)
    assert result.status == "done" and result.follow.id == again
    offer = await relay.open_trade_offer(follower.id, fanned)
    assert offer is not None and offer.refused == REFUSED + "already_copied"
    late = await relay.copy_open_trade(follower.id, fanned)
    assert late.result is None and late.refused == REFUSED + "already_copied"
    assert await count(stack, Order) == 1
    assert notifier.sent == []  # refusals notify nobody (mirror.fan_out has no notifier here)
