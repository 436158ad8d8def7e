"""Price alerts and the market scanner end to end: commands through the Telegram emulator, the scheduler's
jobs against the exchange emulator's moving market, notifications through the paced sender."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from sqlalchemy import select

from bot.notifier import TelegramNotifier
from bot.settings import MarketSettings
from db.models import PriceAlert, ScanDelivery
from sandbox.telegram import TelegramEmulator
from scheduler.market import scan_job
from tests.stack import BOT_USERNAME, Stack, bot_stack

FAST = MarketSettings(alerts_interval_seconds=0.2)


def market_price(stack: Stack, symbol: str) -> D:
    return stack.exchanges["binance"].market.price(symbol)


async def test_an_alert_fires_once_when_the_price_crosses_it(tmp_path: Path, database_url: str) -> None:
    async with bot_stack(tmp_path, database_url=database_url, exchanges=True, market=FAST) as stack:
        user = stack.user(8201)
        now = market_price(stack, "BTC/USDT")
        level = (now * D("1.02")).quantize(D("1"))
        await user.send(f"/alert BTC > {level}")
        created = await user.next_message(timeout=10)
        assert "Alert #" in created.text and "BTC/USDT above" in created.text, created.text
        await user.expect_silence(0.8)  # below the level: nothing
        stack.exchanges["binance"].market.set_price("BTC/USDT", level * D("1.001"))
        fired = await user.next_message(timeout=10)
        assert "BTC/USDT" in fired.text and "is above" in fired.text, fired.text
        await user.expect_silence(1.0)  # once
        async with stack.app.session_factory() as session:
            alert = await session.scalar(select(PriceAlert))
        assert alert is not None and alert.status == "fired" and alert.fired_price is not None
        await user.send("/alerts")
        assert "No active alerts" in (await user.next_message()).text


async def test_below_and_move_alerts_and_deleting_with_a_button(tmp_path: Path, sqlite_url: str) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True, market=FAST) as stack:
        user = stack.user(8202)
        market = stack.exchanges["binance"].market
        eth = market.price("ETH/USDT")
        await user.send(f"/alert eth < {(eth * D('0.97')).quantize(D('0.01'))}")
        assert "ETH/USDT below" in (await user.next_message(timeout=10)).text
        await user.send("/alert SOL +5%")
        assert "SOL/USDT up +5% in 24h" in (await user.next_message(timeout=10)).text
        await user.send("/alert BTC > 1")
        assert "already there" in (await user.next_message(timeout=10)).text

        await user.send("/alerts")
        listing = await user.next_message()
        assert "Your alerts" in listing.text and len(listing.button_texts) == 2
        await user.press(listing, text=listing.button_texts[0])  # delete the ETH alert
        edited = await user.next_message()
        assert "ETH/USDT" not in edited.text and "SOL/USDT" in edited.text

        open_24h = market.stats_24h("SOL/USDT").open
        market.set_price("SOL/USDT", open_24h * D("1.06"))
        fired = await user.next_message(timeout=10)
        assert "SOL/USDT" in fired.text and "is up" in fired.text, fired.text
        market.set_price("ETH/USDT", eth * D("0.9"))
        await user.expect_silence(1.0)  # the deleted alert stays silent


async def test_an_alert_survives_a_restart(tmp_path: Path, sqlite_url: str) -> None:
    emulator = TelegramEmulator()
    await emulator.start(host="127.0.0.1", port=0)
    token = emulator.add_bot(username=BOT_USERNAME, first_name="CryptoUniverse")
    common = {
        "database_url": sqlite_url,
        "exchanges": True,
        "market": FAST,
        "emulator": emulator,
        "token": token,
    }
    try:
        async with bot_stack(tmp_path, **common) as stack:  # type: ignore[arg-type]
            user = stack.user(8203)
            level = (market_price(stack, "ETH/USDT") * D("1.03")).quantize(D("0.01"))
            await user.send(f"/alert ETH > {level}")
            assert "Alert #" in (await user.next_message(timeout=10)).text
        async with bot_stack(tmp_path, **common) as stack:  # type: ignore[arg-type]
            user = stack.user(8203)
            assert "Alert #" in (await user.next_message()).text  # the chat's history so far
            stack.exchanges["binance"].market.set_price("ETH/USDT", level * D("1.01"))
            fired = await user.next_message(timeout=10)
            assert "ETH/USDT" in fired.text and "is above" in fired.text
    finally:
        await emulator.stop()


async def test_bad_alerts_are_refused_clearly(tmp_path: Path, sqlite_url: str) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True) as stack:
        user = stack.user(8204)
        await user.send("/alert BTC")
        assert "/alert BTC &gt; 70000" in (await user.next_message()).html
        await user.send("/alert BTC +5")
        assert "needs a percentage" in (await user.next_message()).text
        await user.send("/alert BTCC > 100")
        assert "BTC/USDT" in (await user.next_message(timeout=10)).text
        async with stack.app.session_factory() as session:
            assert (await session.scalars(select(PriceAlert))).all() == []


async def test_scanner_sends_each_opportunity_once_to_matching_subscribers(
    tmp_path: Path, database_url: str
) -> None:
    settings = MarketSettings(scan_symbols="BTC/USDT,ETH/USDT,SOL/USDT,XRP/USDT,DOGE/USDT", scan_min_score=0)
    async with bot_stack(tmp_path, database_url=database_url, exchanges=True, market=settings) as stack:
        assert stack.running.scheduler is not None
        assert {"scan_1h", "scan_4h", "alerts"} <= {j.id for j in stack.running.scheduler.get_jobs()}
        user = stack.user(8205)
        other = stack.user(8206)
        await user.send("/scan")
        empty = await user.next_message()
        assert "No opportunities yet" in empty.text and "🔔 Subscribe" in empty.button_texts
        await user.send("/scan subscribe 0 1h")
        assert "Subscribed to the scanner" in (await user.next_message()).text
        await other.send("/scan subscribe 0 4h")
        await other.next_message()

        notifier = TelegramNotifier(stack.app.bot, stack.app.i18n)
        sent = await scan_job(stack.app.session_factory, stack.app.scanner, notifier, "1h")
        assert sent >= 1
        notes = [await user.next_message(timeout=10) for _ in range(sent)]
        assert all("Scanner" in n.text and "· 1h ·" in n.text for n in notes)
        await other.expect_silence(0.5)  # subscribed to 4h only
        assert await scan_job(stack.app.session_factory, stack.app.scanner, notifier, "1h") == 0
        await user.expect_silence(0.5)  # the same candle again: nothing new

        await user.send("/scan")
        top = await user.next_message()
        assert "top opportunities" in top.text and "/100" in top.text
        await user.press(top, text="🔕 Unsubscribe")
        assert "not subscribed" in (await user.next_message()).text
        async with stack.app.session_factory() as session:
            deliveries = (await session.scalars(select(ScanDelivery))).all()
        assert len(deliveries) == sent
