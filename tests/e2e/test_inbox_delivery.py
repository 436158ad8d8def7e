"""No update lost or handled twice: webhook security, redelivery, crash recovery."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import aiohttp
from aiogram.filters import Command
from aiogram.types import Message
from sqlalchemy import select

from bot.settings import InboxSettings
from db import migrate
from db.engine import create_engine, create_session_factory
from db.models import InboxUpdate
from db.repositories import InboxRepository
from db.types import utcnow
from tests.stack import bot_stack

SECRET = "e2e-webhook-secret"


def update(update_id: int, user_id: int, text: str) -> dict[str, object]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id, "date": 1700000000,
            "chat": {"id": user_id, "type": "private", "first_name": "W"},
            "from": {"id": user_id, "is_bot": False, "first_name": "W", "language_code": "en"},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
        },
    }


async def test_webhook_refuses_bad_secret_and_malformed_bodies(tmp_path: Path, database_url: str) -> None:
    async with bot_stack(tmp_path, database_url=database_url, mode="webhook") as stack:
        url = stack.running.base_url + "/telegram/webhook"
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=update(1, 2001, "/help")) as r:
                assert r.status == 401
            headers = {"X-Telegram-Bot-Api-Secret-Token": "wrong"}
            async with http.post(url, json=update(1, 2001, "/help"), headers=headers) as r:
                assert r.status == 401
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
            for body in (b"{not json", b"[1,2]", b'{"update_id": "x"}', b'{"update_id": 1, "message": 5}'):
                async with http.post(url, data=body, headers=headers) as r:
                    assert r.status == 400, body
        async with stack.app.session_factory() as session:
            assert (await session.scalars(select(InboxUpdate))).all() == []
        assert stack.bot_messages(2001) == []


async def test_a_redelivered_update_has_no_second_effect(tmp_path: Path, database_url: str) -> None:
    async with bot_stack(tmp_path, database_url=database_url, mode="webhook") as stack:
        stack.emulator.add_user(2002, "W", language_code="en")
        url = stack.running.base_url + "/telegram/webhook"
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        body = json.dumps(update(555_000, 2002, "/start"))
        async with aiohttp.ClientSession() as http:
            answers = await asyncio.gather(
                *(http.post(url, data=body, headers={**headers, "Content-Type": "application/json"})
                  for _ in range(5))
            )
            statuses = [a.status for a in answers]
            for a in answers:
                a.release()
        assert statuses == [200] * 5
        await stack.running.app.inbox.idle(5)
        await asyncio.sleep(0.3)
        assert len(stack.bot_messages(2002)) == 1
        async with stack.app.session_factory() as session:
            rows = (await session.scalars(select(InboxUpdate).where(InboxUpdate.update_id == 555_000))).all()
        assert len(rows) == 1 and rows[0].status == "done"


async def test_updates_left_by_a_crash_are_processed_after_restart(tmp_path: Path, database_url: str) -> None:
    """A process stored two updates and died: one mid-handling (lease running), one never started."""
    from sandbox.telegram import TelegramEmulator

    emulator = TelegramEmulator()
    await emulator.start(host="127.0.0.1", port=0)
    token = emulator.add_bot(username="cryptouniverse_bot", first_name="CryptoUniverse")
    bot_id = int(token.split(":")[0])
    emulator.add_user(2003, "W", language_code="en")
    engine = create_engine(database_url)
    await migrate.upgrade(engine)
    factory = create_session_factory(engine)
    async with factory() as session:
        repo = InboxRepository(session)
        await repo.store_claimed(bot_id, 9001, update(9001, 2003, "/help"), now=utcnow(),
                                 lease=timedelta(seconds=1))
        stale = await repo.store_claimed(bot_id, 9002, update(9002, 2003, "/settings"), now=utcnow(),
                                         lease=timedelta(seconds=1))
        assert stale is not None
        await repo.release(stale)
        await session.commit()
    await engine.dispose()
    try:
        async with bot_stack(tmp_path, database_url=database_url, emulator=emulator, token=token) as stack:
            messages = await stack.wait_bot_messages(2003, count=2, timeout=10)
            texts = " ".join(m["text"] for m in messages)
            assert "How to use CryptoUniverse" in texts and "Settings" in texts
            async with stack.app.session_factory() as session:
                statuses = (await session.scalars(select(InboxUpdate.status))).all()
            assert sorted(statuses) == ["done", "done"]
    finally:
        await emulator.stop()


async def test_polling_and_webhook_share_the_inbox_across_a_restart(tmp_path: Path, sqlite_url: str) -> None:
    """Updates sent while the bot is down are delivered by Telegram later and handled once."""
    from sandbox.telegram import TelegramEmulator

    emulator = TelegramEmulator()
    await emulator.start(host="127.0.0.1", port=0)
    token = emulator.add_bot(username="cryptouniverse_bot", first_name="CryptoUniverse")
    try:
        async with bot_stack(tmp_path, database_url=sqlite_url, emulator=emulator, token=token) as stack:
            user = stack.user(2004)
            await user.send("/help")
            await user.next_message()
        # The bot is down: the user keeps writing.
        from sandbox.telegram.client import EmulatorClient

        offline = EmulatorClient(emulator.base_url)
        await offline.user(2004, first_name="W", language_code="en").send("/settings")
        await offline.close()
        async with bot_stack(tmp_path, database_url=sqlite_url, emulator=emulator, token=token,
                             mode="webhook") as stack:
            messages = await stack.wait_bot_messages(2004, count=2, timeout=10)
            assert "Settings" in messages[-1]["text"]
            await asyncio.sleep(0.5)
            assert len(stack.bot_messages(2004)) == 2
    finally:
        await emulator.stop()


async def test_a_handler_longer_than_the_lease_keeps_its_update(tmp_path: Path, database_url: str) -> None:
    """The lease of an update being handled is renewed: the sweeper does not hand it to a second run."""
    inbox = InboxSettings(lease_seconds=1.0, sweep_interval=0.1)
    async with bot_stack(tmp_path, database_url=database_url, mode="webhook", inbox=inbox) as stack:
        runs = 0

        async def slow(message: Message) -> None:
            nonlocal runs
            runs += 1
            await asyncio.sleep(2.5)  # two and a half leases
            await message.answer("slow done")

        stack.app.dispatcher.message.register(slow, Command("slow"))
        user = stack.user(2010)
        await user.send("/slow")
        reply = await user.next_message(timeout=10)
        assert reply.text == "slow done"
        await asyncio.sleep(1.5)  # a takeover would have run the handler again by now
        assert runs == 1
        assert [m["text"] for m in stack.bot_messages(2010)] == ["slow done"]
        async with stack.app.session_factory() as session:
            row = await session.scalar(select(InboxUpdate).order_by(InboxUpdate.id.desc()))
            assert row is not None and row.status == "done" and row.attempts == 1
