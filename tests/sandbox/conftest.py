from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from sandbox.telegram import TelegramEmulator
from sandbox.telegram.client import EmulatorClient


@pytest.fixture
async def emu() -> AsyncIterator[TelegramEmulator]:
    emulator = TelegramEmulator(webhook_retry_delays=(0.05, 0.1))
    await emulator.start()
    emulator.add_bot(username="cryptouniverse_bot", first_name="CryptoUniverse")
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest.fixture
async def bot(emu: TelegramEmulator) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(emu.base_url))
    instance = Bot(emu.bot().token, session=session, default=DefaultBotProperties(parse_mode="HTML"))
    try:
        yield instance
    finally:
        await instance.session.close()


@pytest.fixture
async def client(emu: TelegramEmulator) -> AsyncIterator[EmulatorClient]:
    async with EmulatorClient(emu.base_url) as instance:
        yield instance
