"""The Bot API session sends JSON bodies, and multipart forms only for uploads."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup
from aiohttp import web

from bot.telegram_session import JsonBodySession

TOKEN = "123456:" + "A" * 35


class Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = await request.read()
        self.requests.append((method, request.content_type, body))
        if method == "getChat":
            return web.json_response(
                {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}, status=400
            )
        message: dict[str, Any] = {
            "message_id": len(self.requests),
            "date": 0,
            "chat": {"id": 7, "type": "private"},
        }
        return web.json_response({"ok": True, "result": message})


@pytest.fixture
async def served() -> AsyncIterator[tuple[Bot, Recorder]]:
    recorder = Recorder()
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", recorder.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    session = JsonBodySession(api=TelegramAPIServer.from_base(f"http://127.0.0.1:{port}"))
    bot = Bot(TOKEN, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    try:
        yield bot, recorder
    finally:
        await session.close()
        await runner.cleanup()


async def test_a_message_with_a_keyboard_goes_as_one_json_document(served: tuple[Bot, Recorder]) -> None:
    bot, recorder = served
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Trade & earn", callback_data="menu:trade")]]
    )
    sent = await bot.send_message(7, "<b>Hi</b> & welcome", reply_markup=keyboard)
    assert sent.message_id == 1
    [(method, content_type, body)] = recorder.requests
    assert (method, content_type) == ("sendMessage", "application/json")
    fields = json.loads(body)
    assert fields["chat_id"] == 7 and fields["text"] == "<b>Hi</b> & welcome"
    assert fields["parse_mode"] == "HTML"  # the bot's default, resolved
    # nested objects are objects, not JSON strings inside a form field
    assert fields["reply_markup"] == {
        "inline_keyboard": [[{"text": "Trade & earn", "callback_data": "menu:trade"}]]
    }


async def test_an_upload_keeps_the_multipart_form(served: tuple[Bot, Recorder]) -> None:
    bot, recorder = served
    await bot.send_photo(7, BufferedInputFile(b"\x89PNG fake", filename="chart.png"), caption="Chart")
    [(method, content_type, body)] = recorder.requests
    assert (method, content_type) == ("sendPhoto", "multipart/form-data")
    assert b"chart.png" in body and b"\x89PNG fake" in body and b"Chart" in body


async def test_errors_are_aiograms_own(served: tuple[Bot, Recorder]) -> None:
    bot, _ = served
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.get_chat(99)
