"""/analyze end to end: the progress message, a chart image with a localised summary and timeframe buttons,
candles cached (no candle fetched twice within its period), and bad input answered clearly."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.stack import Stack, bot_stack

KLINES = "GET /api/v3/klines"


@pytest.fixture
async def stack(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Stack]:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True) as stack:
        yield stack


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_analyze_sends_a_chart_with_a_summary_and_timeframe_buttons(stack: Stack) -> None:
    user = stack.user(8101)
    await user.send("/analyze btc 4h")
    progress = await user.next_message(timeout=10)
    assert "Analysing" in progress.text and "BTC" in progress.text
    report = await user.next_message(timeout=30)
    assert report.photo, report.raw
    assert "BTC/USDT" in report.text and "4h" in report.text and "Binance" in report.text
    assert "Trend:" in report.text and "RSI" in report.text and "Score:" in report.text
    assert report.button_texts == ["15m", "1h", "• 4h •", "1d", "🤖 Get AI signal"]
    assert png_size(await user.download(report)) == (1280, 960)
    await user.sleep_until_idle(quiet=0.5)
    assert progress.message_id in user.deleted  # the progress message made way for the result
    assert stack.exchanges["binance"].request_counts()[KLINES] == 1

    await user.press(report, text="1d")
    await user.next_message(timeout=10)  # progress
    daily = await user.next_message(timeout=30)
    assert daily.photo and "1d" in daily.text
    assert stack.exchanges["binance"].request_counts()[KLINES] == 2


async def test_candles_are_not_fetched_twice_within_their_period(stack: Stack) -> None:
    user = stack.user(8102)
    for _ in range(3):
        await user.send("/analyze ETH 1d")
        await user.next_message(timeout=10)
        assert (await user.next_message(timeout=30)).photo
    assert stack.exchanges["binance"].request_counts()[KLINES] == 1


async def test_analyze_in_russian(stack: Stack) -> None:
    user = stack.user(8103, language_code="ru")
    await user.send("/analyze SOL")
    await user.next_message(timeout=10)
    report = await user.next_message(timeout=30)
    assert "Тренд:" in report.text and "SOL/USDT" in report.text and "1h" in report.text


async def test_bad_input_gets_a_clear_answer(stack: Stack) -> None:
    user = stack.user(8104)
    await user.send("/analyze")
    assert "/analyze BTC" in (await user.next_message()).text
    await user.send("/analyze BTC 7m")
    assert "not a timeframe" in (await user.next_message()).text
    await user.send("/analyze BTCC")
    await user.next_message(timeout=10)  # progress
    answer = await user.next_message(timeout=10)
    assert "BTC/USDT" in answer.text and not answer.photo, answer.text
    assert stack.exchanges["binance"].request_counts()[KLINES] == 0


async def test_market_menu_offers_quick_analyses(stack: Stack) -> None:
    user = stack.user(8105)
    await user.send("/start")
    menu = await user.next_message()
    await user.press(menu, text="📈 Market")
    market = await user.next_message()
    assert "/analyze" in market.text and "📊 BTC" in market.button_texts
    await user.press(market, text="📊 ETH")
    await user.next_message(timeout=10)
    report = await user.next_message(timeout=30)
    assert report.photo and "ETH/USDT" in report.text
