"""An exchange outage: users get a clear answer at once (the breaker opens instead of hanging), and
trading recovers by itself when the exchange does."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bot.settings import ExchangeSettings
from tests.stack import bot_stack


async def test_outage_opens_the_breaker_and_recovers(tmp_path: Path, sqlite_url: str) -> None:
    exchange = ExchangeSettings(timeout_ms=2000, breaker_failures=2, breaker_reset_seconds=1.5)
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True, exchange=exchange) as stack:
        user = stack.user(6001)
        await user.send("/buy BTC 100")
        card = await user.next_message(timeout=10)
        assert "Buy BTC/USDT" in card.text

        binance = stack.exchanges["binance"]
        binance.outage(True)
        await asyncio.sleep(0.5)  # past the 300 ms sharing of public market data
        await user.send("/buy BTC 100")
        first = await user.next_message(timeout=15)
        assert "Binance" in first.text or "binance" in first.text
        assert "try again" in first.text.lower()

        requests_before = len(binance.requests)
        started = time.monotonic()
        await user.send("/buy ETH 100")
        fast = await user.next_message(timeout=10)
        assert time.monotonic() - started < 1.0
        assert "paused" in fast.text
        assert len(binance.requests) == requests_before  # answered without calling the exchange

        binance.outage(False)
        await asyncio.sleep(1.6)
        await user.send("/buy BTC 100")
        recovered = await user.next_message(timeout=10)
        assert "Buy BTC/USDT" in recovered.text and recovered.button_texts == ["✅ Confirm", "✖️ Cancel"]
