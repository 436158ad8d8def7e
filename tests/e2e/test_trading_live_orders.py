"""Live orders beyond a market fill, end to end on the exchange emulators: limit orders resting on the
exchange and booked by the scheduled watcher when they fill, cancelling them, watched stop-loss and
take-profit with a market sell, close-all and the kill switch, and the reconciler settling an order whose
outcome was unknown (and one the exchange never received)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.settings import ExchangeSettings, TradingSettings
from db.models import ExchangeAccount, Order, Position, TradingProfile, User
from sandbox.exchanges.server import ExchangeEmulator
from sandbox.telegram.client import ChatUser
from services.trading.live import watch_live_orders
from tests.e2e.test_accounts_live import Key
from tests.e2e.test_trading_live import go_live, order_posts
from tests.stack import bot_stack

FAST = TradingSettings(
    watch_interval_seconds=0.2, live_orders_interval_seconds=0.3, live_order_settle_seconds=0.5
)


def ledger_orders(emulator: ExchangeEmulator, key: Key) -> list[object]:
    account = emulator.ledger.account(key.api_key)
    assert account is not None
    return list(emulator.ledger.list_orders(account))


async def buy_market(user: ChatUser, text: str) -> None:
    await user.send(text)
    card = await user.next_message(timeout=10)
    await user.press(card, text="✅ Confirm")
    filled = await user.next_message(timeout=15)
    assert "Bought" in filled.text, filled.text


@pytest.mark.parametrize("exchange", ["binance", "kraken", "kucoin"])
async def test_live_limit_buy_rests_on_the_exchange_and_is_booked_when_it_fills(
    tmp_path: Path, sqlite_url: str, exchange: str
) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True, trading=FAST) as stack:
        user = stack.user(7101)
        key = await go_live(stack, user, exchange)
        emulator = stack.exchanges[exchange]
        now = emulator.market.price("BTC/USDT")
        limit = (now * D("0.97")).quantize(D("1"))
        await user.send(f"/buy BTC 0.01 @ {limit}")
        card = await user.next_message(timeout=10)
        assert "limit" in card.text and "live" in card.text
        await user.press(card, text="✅ Confirm")
        placed = await user.next_message(timeout=15)
        assert "Limit buy placed" in placed.text, placed.text
        [resting] = ledger_orders(emulator, key)
        assert resting.is_open  # type: ignore[attr-defined]
        async with stack.app.session_factory() as session:
            order = await session.scalar(select(Order))
        assert order is not None and order.status == "open" and order.exchange_order_id
        assert order.client_order_id == resting.client_id  # type: ignore[attr-defined]

        await user.expect_silence(1.0)  # above the limit: the watcher only looks
        emulator.market.set_price("BTC/USDT", limit * D("0.99"))
        filled = await user.next_message(timeout=10)
        assert "Limit buy filled" in filled.text, filled.text
        async with stack.app.session_factory() as session:
            order = await session.scalar(select(Order))
            position = await session.scalar(select(Position))
        assert order is not None and order.status == "closed" and order.average_price == limit
        assert order.filled == D("0.01") and order.fee > 0
        assert position is not None and position.status == "open" and position.amount > 0
        assert position.cost_basis >= D("0.01") * limit
        assert order_posts(stack, exchange) == 1  # followed by its id, never resent
        await user.expect_silence(1.0)  # booked once


async def test_cancelling_a_live_limit_order_cancels_it_on_the_exchange(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True, trading=FAST) as stack:
        user = stack.user(7102)
        key = await go_live(stack, user, "kraken")
        emulator = stack.exchanges["kraken"]
        limit = (emulator.market.price("ETH/USDT") * D("0.9")).quantize(D("0.1"))
        await user.send(f"/buy ETH 0.5 @ {limit}")
        await user.press(await user.next_message(timeout=10), text="✅ Confirm")
        assert "Limit buy placed" in (await user.next_message(timeout=15)).text
        async with stack.app.session_factory() as session:
            order = await session.scalar(select(Order))
        assert order is not None
        await user.send(f"/cancel {order.id}")
        done = await user.next_message(timeout=15)
        assert f"#{order.id}" in done.text and "Cancelled" in done.text
        [resting] = ledger_orders(emulator, key)
        assert not resting.is_open and resting.status == "canceled"  # type: ignore[attr-defined]
        assert emulator.balances(key.api_key)["USDT"] == D(10000)
        async with stack.app.session_factory() as session:
            order = await session.scalar(select(Order))
        assert order is not None and order.status == "canceled" and order.filled == 0
        await user.send(f"/cancel {order.id}")
        assert "no open order" in (await user.next_message(timeout=10)).text


@pytest.mark.parametrize("exchange", ["binance", "kraken", "kucoin"])
async def test_live_stop_loss_rests_on_the_exchange_and_is_booked_once(
    tmp_path: Path, sqlite_url: str, exchange: str
) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True, trading=FAST) as stack:
        user = stack.user(7103)
        key = await go_live(stack, user, exchange)
        emulator = stack.exchanges[exchange]
        now = emulator.market.price("BTC/USDT")
        stop = (now * D("0.95")).quantize(D("1"))
        await buy_market(user, f"/buy BTC 300 sl {stop}")
        await user.send(f"/tp BTC {(now * D('1.2')).quantize(D('1'))}")
        assert "Take-profit for BTC/USDT set" in (await user.next_message(timeout=10)).text
        emulator.market.set_price("BTC/USDT", now * D("0.94"))
        hit = await user.next_message(timeout=15)
        assert "Stop-loss hit" in hit.text, hit.text
        async with stack.app.session_factory() as session:
            orders = (await session.scalars(select(Order).order_by(Order.id))).all()
            position = await session.scalar(select(Position))
        assert [o.reason for o in orders] == ["manual", "sl"], [(o.id, o.reason, o.status) for o in orders]
        assert orders[1].order_type == "stop"  # native: the exchange sold, the watcher booked it
        assert all(o.status == "closed" for o in orders), [(o.id, o.side, o.status, o.filled) for o in orders]
        assert position is not None and position.status == "closed" and position.realized_pnl < 0
        stop_posts = emulator.request_counts().get("POST /api/v1/stop-order", 0)
        assert order_posts(stack, exchange) + stop_posts == 2
        assert emulator.balances(key.api_key).get("BTC", D(0)) < D("0.0001")
        await user.expect_silence(1.0)  # fired once


async def test_live_take_profit(tmp_path: Path, sqlite_url: str) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True, trading=FAST) as stack:
        user = stack.user(7104)
        await go_live(stack, user, "kucoin")
        emulator = stack.exchanges["kucoin"]
        now = emulator.market.price("ETH/USDT")
        await buy_market(user, f"/buy ETH 200 tp {(now * D('1.05')).quantize(D('0.01'))}")
        emulator.market.set_price("ETH/USDT", now * D("1.06"))
        hit = await user.next_message(timeout=15)
        assert "Take-profit hit" in hit.text, hit.text
        async with stack.app.session_factory() as session:
            position = await session.scalar(select(Position))
        assert position is not None and position.status == "closed" and position.realized_pnl > 0


async def test_live_close_all_and_kill_switch(tmp_path: Path, database_url: str) -> None:
    async with bot_stack(tmp_path, database_url=database_url, exchanges=True, trading=FAST) as stack:
        user = stack.user(7105)
        key = await go_live(stack, user, "binance")
        emulator = stack.exchanges["binance"]
        await buy_market(user, "/buy BTC 200")
        await buy_market(user, "/buy ETH 200")
        await user.send("/close all")
        card = await user.next_message(timeout=10)
        assert "Close all positions" in card.text and "live" in card.text
        await user.press(card, text="✅ Confirm")
        done = await user.next_message(timeout=20)
        assert "BTC/USDT: sold" in done.text and "ETH/USDT: sold" in done.text, done.text
        async with stack.app.session_factory() as session:
            assert {p.status for p in (await session.scalars(select(Position))).all()} == {"closed"}

        await buy_market(user, "/buy SOL 150")
        limit = (emulator.market.price("BTC/USDT") * D("0.8")).quantize(D("1"))
        await user.send(f"/buy BTC 0.002 @ {limit}")
        await user.press(await user.next_message(timeout=10), text="✅ Confirm")
        assert "Limit buy placed" in (await user.next_message(timeout=15)).text
        await user.send("/panic")
        card = await user.next_message(timeout=10)
        assert "Kill switch" in card.text and "open orders (1)" in card.text and "live" in card.text
        await user.press(card, text="✅ Confirm")
        done = await user.next_message(timeout=20)
        assert "1 position(s) closed, 1 order(s) cancelled" in done.text, done.text
        assert not any(o.is_open for o in ledger_orders(emulator, key))  # type: ignore[attr-defined]
        async with stack.app.session_factory() as session:
            assert {p.status for p in (await session.scalars(select(Position))).all()} == {"closed"}
            profile = await session.scalar(select(TradingProfile))
            assert profile is not None and profile.pause_reason == "panic"
        await user.send("/buy BTC 50")
        assert "paused by the kill switch" in (await user.next_message(timeout=10)).text


async def test_an_order_with_an_unknown_outcome_is_reconciled_by_the_watcher(
    tmp_path: Path, sqlite_url: str
) -> None:
    exchange_settings = ExchangeSettings(timeout_ms=1000, breaker_reset_seconds=1)
    async with bot_stack(
        tmp_path, database_url=sqlite_url, exchanges=True, exchange=exchange_settings, trading=FAST
    ) as stack:
        user = stack.user(7106)
        await go_live(stack, user, "binance")
        emulator = stack.exchanges["binance"]
        await user.send("/buy BTC 100")
        card = await user.next_message(timeout=10)
        emulator.accept_then_timeout_next_order(delay=3)
        await user.press(card, text="✅ Confirm")
        for _ in range(100):  # the exchange has the order; now it stops answering
            if order_posts(stack, "binance"):
                break
            await asyncio.sleep(0.02)
        emulator.outage(True)
        unknown = await user.next_message(timeout=30)
        assert "could not yet confirm" in unknown.text, unknown.text
        async with stack.app.session_factory() as session:
            order = await session.scalar(select(Order))
        assert order is not None and order.status == "unknown"

        emulator.outage(False)
        settled = await user.next_message(timeout=20)
        assert "filled" in settled.text, settled.text
        async with stack.app.session_factory() as session:
            order = await session.scalar(select(Order))
            position = await session.scalar(select(Position))
        assert order is not None and order.status == "closed" and order.filled > 0
        assert position is not None and position.amount > 0
        assert order_posts(stack, "binance") == 1


async def test_an_order_the_exchange_never_received_is_marked_not_placed(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True) as stack:
        user = stack.user(7107)
        await go_live(stack, user, "kucoin")
        async with stack.app.session_factory() as session:
            db_user = await session.scalar(select(User).where(User.telegram_id == 7107))
            account = await session.scalar(select(ExchangeAccount).where(ExchangeAccount.is_paper.is_(False)))
            assert db_user is not None and account is not None
            trading = stack.app.services.trading(session)
            order = trading.new_order(
                db_user.id,
                account,
                "BTC/USDT",
                "buy",
                order_type="market",
                amount=D("0.001"),
                client_order_id="cu00000000deadbeef",
                status="sending",
            )
            session.add(order)
            await session.commit()
        # a process died between storing the order and sending it: too fresh to judge at first
        first = await watch_live_orders(stack.app.session_factory, stack.app.services.trading)
        assert first == []
        updates = await watch_live_orders(
            stack.app.session_factory,
            stack.app.services.trading,
            settle_after=timedelta(0),
            give_up_after=timedelta(0),
        )
        assert [u.kind for u in updates] == ["not_placed"]
        async with stack.app.session_factory() as session:
            stored = await session.scalar(select(Order))
        assert stored is not None and stored.status == "not_placed"
        assert order_posts(stack, "kucoin") == 0
