"""The foundation end to end: the real aiogram bot over HTTP against the Telegram emulator, in polling
and webhook mode, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiogram.filters import Command
from aiogram.types import Message
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AuditLog, InboxUpdate, User
from db.repositories.audit import AuditRepository
from services.errors import ValidationError
from services.users import UserProfile
from tests.stack import Stack, bot_stack

MENU_TEXTS = {
    "en": [
        "💱 Trade",
        "🤖 Signals",
        "📈 Market",
        "💼 Portfolio",
        "👥 Copy trading",
        "💳 Credits & plans",
        "⚙️ Settings",
        "❓ Help",
    ],
}


@pytest.fixture(params=["polling", "webhook"])
async def stack(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> AsyncIterator[Stack]:
    async with bot_stack(tmp_path, database_url=database_url, mode=request.param) as stack:
        yield stack


def button_texts(message: object) -> list[str]:
    return [text for row in message.buttons for text, _ in row]  # type: ignore[attr-defined]


async def test_start_greets_and_shows_the_main_menu(stack: Stack) -> None:
    user = stack.user(1001, first_name="Alice")
    await user.send("/start")
    reply = await user.next_message()
    assert "Hi, Alice!" in reply.text
    assert "Main menu" in reply.text
    assert button_texts(reply) == MENU_TEXTS["en"]
    assert "<b>Alice</b>" in reply.html

    await user.send("/start")
    again = await user.next_message()
    assert "Welcome back, Alice!" in again.text
    async with stack.app.session_factory() as session:
        assert await session.scalar(select(func.count(User.id))) == 1


async def test_every_area_opens_and_leads_back(stack: Stack) -> None:
    user = stack.user(1002)
    await user.send("/menu")
    menu = await user.next_message()
    await user.press(menu, text="👥 Copy trading")
    edited = await user.next_message()
    assert edited.message_id == menu.message_id
    assert "Copy trading" in edited.text and "not available yet" not in edited.text
    assert "🏆 Leaders" in button_texts(edited)
    await user.press(edited, text="« Main menu")
    home = await user.next_message()
    assert button_texts(home) == MENU_TEXTS["en"]
    await user.press(home, text="❓ Help")
    help_card = await user.next_message()
    assert "/settings" in help_card.text


async def test_language_choice_is_stored_and_used(stack: Stack) -> None:
    user = stack.user(1003, language_code="en")
    await user.send("/language")
    chooser = await user.next_message()
    assert "Choose your language" in chooser.text
    await user.press(chooser, text="🇷🇺 Русский")
    changed = await user.next_message()
    assert "Язык переключён на русский" in changed.text
    assert "💱 Торговля" in button_texts(changed)
    await user.send("/help")
    assert "Как пользоваться" in (await user.next_message()).text
    async with stack.app.session_factory() as session:
        row = await session.scalar(select(User).where(User.telegram_id == 1003))
        assert row is not None and row.locale == "ru"
        audit = await session.scalar(select(AuditLog).where(AuditLog.action == "user.locale_changed"))
        assert audit is not None and audit.details == {"from": None, "to": "ru"}
    state = await stack.client.bot_state(stack.bot_id)
    assert any("1003" in scope for scope in state["commands"])


async def test_telegram_language_is_used_until_the_user_chooses(stack: Stack) -> None:
    spanish = stack.user(1004, language_code="es-419", first_name="Lucía")
    await spanish.send("/start")
    assert "¡Hola, Lucía!" in (await spanish.next_message()).text
    unknown = stack.user(1005, language_code="de")
    await unknown.send("/help")
    assert "How to use CryptoUniverse" in (await unknown.next_message()).text


async def test_settings_card(stack: Stack) -> None:
    user = stack.user(1006)
    await user.send("/settings")
    card = await user.next_message()
    assert "Plan: Free" in card.text and "Language: 🇬🇧 English" in card.text
    assert "🌐 Language" in button_texts(card)


async def test_bad_input_gets_short_answers_or_silence(stack: Stack) -> None:
    user = stack.user(1007)
    await user.send("/frobnicate now")
    assert "I don't know the command /frobnicate" in (await user.next_message()).text
    await user.send("hello there")
    assert "I didn't understand" in (await user.next_message()).text
    await user.send("x" * 4096)
    assert "too long" in (await user.next_message()).text
    await user.send("<b>not html</b> & stuff")
    assert "I didn't understand" in (await user.next_message()).text

    sticker = {
        "message": {
            "message_id": 900,
            "date": 1700000000,
            "chat": {"id": 1007, "type": "private", "first_name": "T"},
            "from": {"id": 1007, "is_bot": False, "first_name": "T"},
            "sticker": {
                "file_id": "s1",
                "file_unique_id": "u1",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            },
        }
    }
    await stack.client.raw_update(sticker, bot_id=stack.bot_id)
    assert "can't read this kind of message" in (await user.next_message()).text

    edited = {
        "edited_message": {
            "message_id": 901,
            "date": 1700000000,
            "edit_date": 1700000001,
            "chat": {"id": 1007, "type": "private", "first_name": "T"},
            "from": {"id": 1007, "is_bot": False, "first_name": "T"},
            "text": "/start",
        }
    }
    await stack.client.raw_update(edited, bot_id=stack.bot_id)
    channel = {
        "channel_post": {
            "message_id": 5,
            "date": 1700000000,
            "chat": {"id": -1001, "type": "channel", "title": "News"},
            "text": "/start",
        }
    }
    await stack.client.raw_update(channel, bot_id=stack.bot_id)
    await user.expect_silence(0.5)


async def test_groups_get_a_pointer_to_the_private_chat_and_silence_otherwise(stack: Stack) -> None:
    def group_message(text: str, message_id: int) -> dict[str, object]:
        return {
            "message": {
                "message_id": message_id,
                "date": 1700000000,
                "chat": {"id": -555, "type": "supergroup", "title": "Traders"},
                "from": {"id": 1008, "is_bot": False, "first_name": "G"},
                "text": text,
            }
        }

    stack.emulator.add_group(-555, "Traders")
    for text_, mid in (("hello all", 1), ("/weather@other_bot", 2), ("/unknowncmd", 3)):
        await stack.client.raw_update(group_message(text_, mid), bot_id=stack.bot_id)
    await stack.client.raw_update(group_message("/start@cryptouniverse_bot", 4), bot_id=stack.bot_id)
    sent = (await stack.wait_bot_messages(-555))[0]
    assert "private chat" in sent["text"]
    assert sent["reply_markup"]["inline_keyboard"][0][0]["url"].startswith("https://t.me/cryptouniverse_bot")
    await asyncio.sleep(0.5)
    assert len(stack.bot_messages(-555)) == 1


async def test_commands_are_registered_per_locale(stack: Stack) -> None:
    state = await stack.client.bot_state(stack.bot_id)
    commands = state["commands"]
    flat = {key: [c["command"] for c in value] for key, value in commands.items()}
    assert any(
        names[:2] == ["start", "menu"] and "help" in names and "buy" in names for names in flat.values()
    )
    descriptions = " ".join(c["description"] for value in commands.values() for c in value)
    assert "Главное меню" in descriptions and "Menú principal" in descriptions


async def test_healthz_and_metrics(stack: Stack) -> None:
    user = stack.user(1009)
    await user.send("/start")
    await user.next_message()
    async with aiohttp.ClientSession() as http:
        async with http.get(stack.running.base_url + "/healthz") as response:
            assert response.status == 200
            health = await response.json()
        async with http.get(stack.running.base_url + "/metrics") as response:
            metrics = await response.text()
    assert health["status"] == "ok"
    assert health["database"]["ok"] and health["bot"]["ok"]
    assert health["bot"]["username"] == "cryptouniverse_bot"
    assert health["redis"] == {"ok": True, "enabled": False}
    assert "version" in health
    assert "cu_updates_processed_total" in metrics and 'status="done"' in metrics
    assert "cu_update_latency_seconds_bucket" in metrics


async def test_a_crashing_handler_answers_politely_and_changes_nothing(stack: Stack) -> None:
    user = stack.user(1010)
    await user.send("/language")
    chooser = await user.next_message()
    async with stack.app.engine.begin() as connection:
        await connection.execute(text("DROP TABLE audit_log"))
    query_id = await user.press(chooser, text="🇪🇸 Español")
    answer = await user.callback_answer(query_id)
    assert "Something went wrong on our side" in answer["text"]
    assert "Traceback" not in answer["text"] and "audit_log" not in answer["text"]
    async with stack.app.session_factory() as session:
        row = await session.scalar(select(User).where(User.telegram_id == 1010))
        assert row is not None and row.locale is None
        failed = await session.scalar(select(InboxUpdate).where(InboxUpdate.status == "failed"))
        assert failed is not None and failed.error


async def test_a_refused_first_command_still_records_the_user_and_nothing_else(stack: Stack) -> None:
    async def refuse(message: Message, session: AsyncSession, user: UserProfile) -> None:
        await AuditRepository(session).add("test.should_vanish", user_id=user.id)
        await session.flush()
        raise ValidationError("errors.unknown_language", language="xx")

    # on the dispatcher itself: its own handlers are tried before the product's routers
    stack.app.dispatcher.message.register(refuse, Command("refuse"))
    newcomer = stack.user(1030, first_name="Nora")
    await newcomer.send("/refuse")
    answer = await newcomer.next_message()
    assert "xx" in answer.text and "Traceback" not in answer.text
    async with stack.app.session_factory() as session:
        row = await session.scalar(select(User).where(User.telegram_id == 1030))
        assert row is not None and row.first_name == "Nora"  # the sender is recorded...
        vanished = await session.scalar(select(AuditLog).where(AuditLog.action == "test.should_vanish"))
        assert vanished is None  # ...and the refused handler's own write is not
        inbox = await session.scalar(select(InboxUpdate).order_by(InboxUpdate.id.desc()))
        assert inbox is not None and inbox.status == "done" and inbox.error == "ValidationError"
    # a known user's refusal changes nothing either, and the next command works as usual
    await newcomer.send("/refuse")
    await newcomer.next_message()
    await newcomer.send("/start")
    assert "Welcome back, Nora!" in (await newcomer.next_message()).text
    async with stack.app.session_factory() as session:
        assert await session.scalar(select(func.count(User.id)).where(User.telegram_id == 1030)) == 1


async def test_throttling_drops_floods_with_one_warning(tmp_path: Path, sqlite_url: str) -> None:
    from bot.settings import ThrottleSettings

    throttle = ThrottleSettings(rate=0.01, burst=2)
    async with bot_stack(tmp_path, database_url=sqlite_url, throttle=throttle) as s:
        user = s.user(1011)
        for _ in range(6):
            await user.send("/help")
        await user.next_message(timeout=5)
        await user.sleep_until_idle(quiet=0.5)
        texts = [m.text for m in user.history]
        assert sum("How to use" in t for t in texts) == 2
        assert sum("Too many messages" in t for t in texts) == 1


@pytest.mark.redis
async def test_with_redis_configured(tmp_path: Path, sqlite_url: str, redis_url: str) -> None:
    """REDIS_URL shares throttling and conversation state; /healthz reports it."""
    from bot.settings import ThrottleSettings

    throttle = ThrottleSettings(rate=0.01, burst=1)
    async with bot_stack(tmp_path, database_url=sqlite_url, redis_url=redis_url, throttle=throttle) as s:
        user = s.user(1012)
        await user.send("/help")
        assert "How to use" in (await user.next_message()).text
        await user.send("/help")
        assert "Too many messages" in (await user.next_message()).text
        async with aiohttp.ClientSession() as http, http.get(s.running.base_url + "/healthz") as response:
            health = await response.json()
        assert health["redis"]["ok"] and health["redis"]["enabled"]
