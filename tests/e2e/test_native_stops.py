"""Native stop orders of live positions, end to end: the bot over the Telegram emulator, real ccxt against the
exchange emulators. A stop-loss set on a buy rests on the exchange as a stop order; changing it replaces the
order; the market moving through it fills it on the exchange and the watcher books it once and tells the
user; /close and /panic cancel it; a take-profit watched beside a native stop-loss cancels it first; a
position below the exchange's minimum falls back to watching, and the reply says so."""

from __future__ import annotations

from decimal import ROUND_DOWN
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import Order, Position, User
from sandbox.exchanges.ledger import Order as LedgerOrder
from sandbox.exchanges.server import ExchangeEmulator
from sandbox.telegram.client import ChatUser
from services.trading.auto import AutoTrader
from services.trading.parser import AmountUnit, OrderType, RequestKind, Side, TradeRequest
from services.users import profile_of
from tests.e2e.test_accounts_live import Key
from tests.e2e.test_trading_live import go_live
from tests.e2e.test_trading_live_orders import FAST
from tests.stack import Stack, bot_stack

SYMBOL = "BTC/USDT"


def stops(emulator: ExchangeEmulator, key: Key) -> list[LedgerOrder]:
    account = emulator.ledger.account(key.api_key)
    assert account is not None
    return [o for o in emulator.ledger.list_orders(account) if o.is_stop]


async def buy(user: ChatUser, text: str) -> str:
    await user.send(text)
    await user.press(await user.next_message(timeout=10), text="✅ Confirm")
    filled = await user.next_message(timeout=15)
    assert "Bought" in filled.text, filled.text
    return filled.text


async def position_row(stack: Stack) -> Position:
    async with stack.app.session_factory() as session:
        position = await session.scalar(select(Position))
    assert position is not None
    return position


async def native_rows(stack: Stack) -> list[Order]:
    async with stack.app.session_factory() as session:
        rows = (
            await session.scalars(select(Order).where(Order.order_type == "stop").order_by(Order.id))
        ).all()
    return list(rows)


@pytest.mark.parametrize("exchange", ["binance", "kucoin"])
async def test_native_stop_loss_placed_replaced_and_booked_once(
    tmp_path: Path, sqlite_url: str, exchange: str
) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True, trading=FAST) as stack:
        user = stack.user(7301)
        key = await go_live(stack, user, exchange)
        emulator = stack.exchanges[exchange]
        now = emulator.market.price(SYMBOL)
        stop = (now * D("0.95")).quantize(D("1"))
        reply = await buy(user, f"/buy BTC 300 sl {stop}")
        assert "native stop order" in reply, reply

        [first] = stops(emulator, key)
        position = await position_row(stack)
        assert first.waiting and first.trigger_price == stop and first.side == "sell"
        # the whole position (to the exchange's amount step), its coins reserved on the exchange
        step = emulator.ledger.spec(SYMBOL).step
        assert first.amount == (position.amount / step).to_integral_value(ROUND_DOWN) * step
        assert emulator.balances(key.api_key)["BTC"] == position.amount
        [row] = await native_rows(stack)
        assert row.status == "armed" and row.client_order_id == first.client_id and row.reason == "sl"
        assert position.protection == "native" and position.stop_order_id == row.id

        new_stop = (now * D("0.93")).quantize(D("1"))
        await user.send(f"/sl BTC {new_stop}")
        moved = await user.next_message(timeout=15)
        assert "Stop-loss for BTC/USDT set" in moved.text and "native stop order" in moved.text, moved.text
        old, replacement = stops(emulator, key)
        assert old.status == "canceled" and replacement.waiting and replacement.trigger_price == new_stop

        emulator.market.set_price(SYMBOL, now * D("0.94"))  # below the old stop, above the new one
        await user.expect_silence(1.0)
        emulator.market.set_price(SYMBOL, now * D("0.92"))  # through the stop: the exchange sells
        hit = await user.next_message(timeout=15)
        assert "Stop-loss hit" in hit.text, hit.text
        position = await position_row(stack)
        assert position.status == "closed" and position.realized_pnl < 0 and position.stop_order_id is None
        rows = await native_rows(stack)
        assert [r.status for r in rows] == ["canceled", "closed"]
        assert rows[1].filled == replacement.filled and rows[1].fee > 0
        assert emulator.balances(key.api_key).get("BTC", D(0)) < step  # what is left is dust
        await user.expect_silence(1.5)  # booked and told once


async def test_close_cancels_the_native_stop(tmp_path: Path, sqlite_url: str) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True, trading=FAST) as stack:
        user = stack.user(7302)
        key = await go_live(stack, user, "kraken")
        emulator = stack.exchanges["kraken"]
        now = emulator.market.price(SYMBOL)
        await buy(user, f"/buy BTC 300 sl {(now * D('0.9')).quantize(D('1'))}")
        [stop] = stops(emulator, key)
        assert stop.waiting
        await user.send("/close BTC")
        card = await user.next_message(timeout=10)
        await user.press(card, text="✅ Confirm")
        sold = await user.next_message(timeout=15)
        assert "Sold" in sold.text or "sold" in sold.text, sold.text
        [stop] = stops(emulator, key)
        assert stop.status == "canceled"
        assert emulator.balances(key.api_key).get("BTC", D(0)) < D("0.00001")
        position = await position_row(stack)
        assert position.status == "closed"
        [row] = await native_rows(stack)
        assert row.status == "canceled"
        emulator.market.set_price(SYMBOL, now * D("0.8"))
        await user.expect_silence(1.0)  # nothing left to protect


async def test_watched_take_profit_cancels_the_native_stop_first(tmp_path: Path, sqlite_url: str) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True, trading=FAST) as stack:
        user = stack.user(7303)
        key = await go_live(stack, user, "binance")
        emulator = stack.exchanges["binance"]
        now = emulator.market.price(SYMBOL)
        sl, tp = (now * D("0.9")).quantize(D("1")), (now * D("1.05")).quantize(D("1"))
        reply = await buy(user, f"/buy BTC 300 sl {sl} tp {tp}")
        assert "take-profit is watched" in reply, reply
        [stop] = stops(emulator, key)
        assert stop.waiting and stop.trigger_price == sl  # one native order: the stop-loss
        emulator.market.set_price(SYMBOL, now * D("1.06"))
        hit = await user.next_message(timeout=15)
        assert "Take-profit hit" in hit.text, hit.text
        [stop] = stops(emulator, key)
        assert stop.status == "canceled"
        position = await position_row(stack)
        assert position.status == "closed" and position.realized_pnl > 0
        assert emulator.balances(key.api_key).get("BTC", D(0)) < D("0.00001")
        await user.expect_silence(1.0)


async def test_panic_cancels_native_stops(tmp_path: Path, sqlite_url: str) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True, trading=FAST) as stack:
        user = stack.user(7304)
        key = await go_live(stack, user, "kucoin")
        emulator = stack.exchanges["kucoin"]
        now = emulator.market.price(SYMBOL)
        await buy(user, f"/buy BTC 300 sl {(now * D('0.9')).quantize(D('1'))}")
        assert [s.waiting for s in stops(emulator, key)] == [True]
        await user.send("/panic")
        await user.press(await user.next_message(timeout=10), text="✅ Confirm")
        done = await user.next_message(timeout=20)
        assert "1 position(s) closed" in done.text, done.text
        assert [s.status for s in stops(emulator, key)] == ["canceled"]
        assert emulator.balances(key.api_key).get("BTC", D(0)) < D("0.00001")


async def test_below_the_minimum_the_stop_is_watched(tmp_path: Path, sqlite_url: str) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True, trading=FAST) as stack:
        user = stack.user(7305)
        key = await go_live(stack, user, "binance")
        emulator = stack.exchanges["binance"]
        now = emulator.market.price(SYMBOL)
        stop = (now * D("0.6")).quantize(D("1"))  # ~7 USDT bought: ~4.2 USDT at the stop, below 5
        reply = await buy(user, f"/buy BTC 7 sl {stop}")
        assert "below the exchange's minimum" in reply, reply
        assert stops(emulator, key) == []
        position = await position_row(stack)
        assert position.protection == "watched" and position.stop_order_id is None
        await user.expect_silence(1.0)
        assert stops(emulator, key) == []  # the watcher does not try again and again


async def test_a_copied_exit_cancels_the_native_stop_and_sells_what_it_held(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Orders placed for the user (a copied exit, auto-trade) are priced and checked as a manual order is:
    the coins held by the position's native stop count as held, and the stop is cancelled before the sell."""
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True, trading=FAST) as stack:
        user = stack.user(7307)
        key = await go_live(stack, user, "binance")
        emulator = stack.exchanges["binance"]
        now = emulator.market.price(SYMBOL)
        await buy(user, f"/buy BTC 300 sl {(now * D('0.9')).quantize(D('1'))}")
        [stop] = stops(emulator, key)
        assert stop.waiting and emulator.balances(key.api_key)["BTC"] > 0
        position = await position_row(stack)
        async with stack.app.session_factory() as session:
            row = await session.scalar(select(User).where(User.telegram_id == 7307))
            assert row is not None
            trading = stack.app.services.trading(session)
            request = TradeRequest(
                kind=RequestKind.ORDER,
                side=Side.SELL,
                symbol=SYMBOL,
                base="BTC",
                quote="USDT",
                amount=position.amount,
                amount_unit=AmountUnit.BASE,
                order_type=OrderType.MARKET,
            )
            sold = await AutoTrader(trading).execute(
                profile_of(row), request, client_order_id="cx-test-exit", reason="copy"
            )
            await session.commit()  # as the copy fan-out does
        assert sold.side == "sell" and sold.amount > 0
        [stop] = stops(emulator, key)
        assert stop.status == "canceled"
        assert emulator.balances(key.api_key).get("BTC", D(0)) < D("0.00001")
        after = await position_row(stack)
        assert after.status == "closed", (after.amount, after.status, after.protection)
