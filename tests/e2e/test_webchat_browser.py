"""The emulator's browser web chat, driven by a real Chromium through Playwright.

Everything runs in the test's event loop: the Telegram emulator (aiohttp), a small aiogram 3 bot polling it,
and Playwright's async API driving Chromium on the page the emulator serves at ``/``.

Needs Chromium at /usr/bin/chromium (Debian's ``chromium`` package): the tests skip without it, except under
CI=true, where a missing browser is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import struct
import wave
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiogram.utils.text_decorations import html_decoration

pytestmark = [pytest.mark.browser]

SCREENSHOT = "/tmp/webchat.png"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UI_TIMEOUT_MS = 10_000
POLL_TIMEOUT_S = 2


# ----------------------------------------------------------------------------- test data


def make_png(width: int = 48, height: int = 32, rgb: tuple[int, int, int] = (220, 40, 40)) -> bytes:
    """A small solid-colour RGB PNG, built by hand."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    row = b"\x00" + bytes(rgb) * width  # filter type 0 + pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def make_wav(seconds: float = 2.0, rate: int = 8000) -> bytes:
    """A silent mono WAV file that browsers can decode (for the duration)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return buf.getvalue()


def pick_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text="Alpha", callback_data="pick:alpha"),
                InlineKeyboardButton(text="Beta", callback_data="pick:beta"),
            ],
            [InlineKeyboardButton(text="Docs", url="https://example.com/docs")],
        ]
    )


def build_router() -> Router:
    """The test bot: /start with buttons, a callback that edits + toasts, /photo, /alert, /doc, voice."""
    router = Router()

    @router.message(CommandStart(deep_link=True))
    async def start_with_payload(message: Message, command: CommandObject) -> None:
        await message.answer(f"Started with <code>{html_decoration.quote(command.args or '')}</code>")

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer("<b>Welcome</b> to the <i>test</i> bot", reply_markup=pick_keyboard())

    @router.callback_query(F.data.startswith("pick:"))
    async def pick(callback: CallbackQuery) -> None:
        choice = (callback.data or "").split(":", 1)[1].capitalize()
        assert isinstance(callback.message, Message)
        await callback.message.edit_text(f"You picked <b>{choice}</b>")
        await callback.answer(f"Picked {choice}")

    @router.callback_query(F.data == "alert")
    async def alert(callback: CallbackQuery) -> None:
        await callback.answer("This is an alert", show_alert=True)

    @router.message(Command("photo"))
    async def photo(message: Message, bot: Bot) -> None:
        await bot.send_chat_action(message.chat.id, "upload_photo")
        await message.answer_photo(BufferedInputFile(make_png(), "red.png"), caption="A <b>red</b> square")

    @router.message(Command("alert"))
    async def alert_button(message: Message) -> None:
        kb = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Warn me", callback_data="alert")]]
        )
        await message.answer("Press for an <u>alert</u>", reply_markup=kb)

    @router.message(Command("doc"))
    async def doc(message: Message) -> None:
        await message.answer_document(
            BufferedInputFile(b"a,b\n1,2\n" * 64, "report.csv"), caption="Your report"
        )

    @router.message(Command("slow"))
    async def slow(message: Message, bot: Bot) -> None:
        await bot.send_chat_action(message.chat.id, "typing")
        await asyncio.sleep(1.5)
        await message.answer("Sorry for the wait")

    @router.message(Command("temp"))
    async def temp(message: Message) -> None:
        note = await message.answer("This message self-destructs")
        await asyncio.sleep(0.8)
        await note.delete()

    @router.message(F.voice)
    async def voice(message: Message) -> None:
        assert message.voice is not None
        await message.answer(f"Got a voice message of {message.voice.duration} s")

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"You said: {html_decoration.quote(message.text or '')}")

    return router


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def chromium_path() -> str:
    path = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else shutil.which("chromium")
    path = path or shutil.which("chromium-browser")
    if path is None:
        reason = "Chromium is not installed (/usr/bin/chromium): `apt-get install -y chromium` to run these"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture
async def emulator(chromium_path: str) -> AsyncIterator[Any]:
    # chromium_path first: without a browser, skip before starting anything
    from sandbox.telegram import TelegramEmulator

    emu = TelegramEmulator()
    await emu.start(host="127.0.0.1", port=0)
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
async def test_bot(emulator: Any) -> AsyncIterator[Bot]:
    token = emulator.add_bot(username="webchat_test_bot", first_name="Webchat Test Bot")
    session = AiohttpSession(api=TelegramAPIServer.from_base(emulator.base_url))
    bot = Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    await bot.set_my_commands(
        [
            BotCommand(command="start", description="Start the bot"),
            BotCommand(command="photo", description="Send a photo"),
            BotCommand(command="doc", description="Send a document"),
            BotCommand(command="alert", description="A button with an alert"),
        ]
    )
    dp = Dispatcher()
    dp.include_router(build_router())
    task = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, close_bot_session=False, polling_timeout=1)
    )
    try:
        yield bot
    finally:
        with contextlib.suppress(RuntimeError):  # "polling is not started" if it never got going
            await dp.stop_polling()
        try:
            await asyncio.wait_for(task, timeout=5)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
        await bot.session.close()


@pytest.fixture
async def page(chromium_path: str, emulator: Any, test_bot: Bot) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 920, "height": 760}, locale="en-US")
        pg = await context.new_page()
        pg.set_default_timeout(UI_TIMEOUT_MS)
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        # Short long-polls: stopping the emulator waits for open requests to finish.
        await pg.goto(emulator.base_url + f"/?poll_timeout={POLL_TIMEOUT_S}")
        try:
            yield pg
        finally:
            await browser.close()
        assert not errors, f"JavaScript errors on the page: {errors}"


# ----------------------------------------------------------------------------- helpers


async def send(pg: Any, text: str) -> None:
    box = pg.get_by_test_id("message-input")
    await box.fill(text)
    await box.press("Enter")


def bot_messages(pg: Any) -> Any:
    return pg.locator('[data-testid="message"][data-from="bot"]')


# ----------------------------------------------------------------------------- tests


async def test_start_renders_html_and_button_edits_message_with_toast(page: Any) -> None:
    from playwright.async_api import expect

    pg = page
    await expect(pg.get_by_test_id("bot-name")).to_have_text("Webchat Test Bot")
    await send(pg, "/start")

    user_msg = pg.locator('[data-testid="message"][data-from="user"]')
    await expect(user_msg).to_have_count(1)
    await expect(user_msg.get_by_test_id("message-text")).to_have_text("/start")

    reply = bot_messages(pg).first
    await expect(reply.locator('[data-testid="message-text"] b')).to_have_text("Welcome")
    await expect(reply.locator('[data-testid="message-text"] i')).to_have_text("test")
    buttons = reply.get_by_test_id("inline-button")
    await expect(buttons).to_have_count(3)
    await expect(reply.get_by_test_id("inline-keyboard-row")).to_have_count(2)
    docs = reply.locator('[data-testid="inline-button"][data-url]')
    await expect(docs).to_have_attribute("target", "_blank")
    await expect(docs).to_have_attribute("href", "https://example.com/docs")
    message_id = await reply.get_attribute("data-message-id")

    await reply.get_by_role("button", name="Beta").click()

    edited = pg.locator(f'[data-testid="message"][data-message-id="{message_id}"]')
    await expect(edited.get_by_test_id("message-text")).to_contain_text("You picked Beta")
    await expect(edited.locator('[data-testid="message-text"] b')).to_have_text("Beta")
    await expect(edited.get_by_test_id("message-edited")).to_be_visible()
    await expect(edited.get_by_test_id("inline-button")).to_have_count(0)  # edit_text without markup drops it
    await expect(pg.get_by_test_id("toast")).to_have_text("Picked Beta")
    await expect(bot_messages(pg)).to_have_count(1)  # edited in place, not appended


async def test_photo_loads_and_page_looks_right(page: Any) -> None:
    from playwright.async_api import expect

    pg = page
    await send(pg, "/start")
    await expect(bot_messages(pg)).to_have_count(1)
    await send(pg, "/photo")

    img = pg.get_by_test_id("message-photo")
    await expect(img).to_have_count(1)
    await pg.wait_for_function(
        "() => { const i = document.querySelector('[data-testid=message-photo]');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    assert await img.evaluate("i => i.naturalWidth") == 48
    photo_msg = bot_messages(pg).last
    await expect(photo_msg.locator('[data-testid="message-text"] b')).to_have_text("red")

    # The newest message is scrolled into view.
    await expect(photo_msg).to_be_in_viewport()
    await pg.screenshot(path=SCREENSHOT)


async def test_user_text_is_never_html_and_commands_documents_alerts(page: Any) -> None:
    from playwright.async_api import expect

    pg = page
    # The "/" hint lists the commands the bot set.
    box = pg.get_by_test_id("message-input")
    await box.fill("/")
    hint = pg.get_by_test_id("command-hint-item")
    await expect(hint).to_have_count(4)
    await box.fill("/ph")
    await expect(hint).to_have_count(1)
    await expect(hint).to_have_attribute("data-command", "photo")

    # What the user types is shown as text, never parsed as HTML.
    await send(pg, "<b>not bold</b> & <img src=x onerror=alert(1)>")
    mine = pg.locator('[data-testid="message"][data-from="user"]').last
    await expect(mine.get_by_test_id("message-text")).to_contain_text("<b>not bold</b> & <img")
    assert await mine.locator("b, img").count() == 0
    echo = bot_messages(pg).last
    await expect(echo.get_by_test_id("message-text")).to_contain_text("You said: <b>not bold</b>")
    assert await echo.locator("b, img").count() == 0

    # Documents: a download link with name and size.
    await send(pg, "/doc")
    doc = pg.get_by_test_id("message-document")
    await expect(doc.get_by_test_id("document-name")).to_have_text("report.csv")
    await expect(doc.get_by_test_id("document-size")).to_have_text("512 B")
    await expect(doc).to_have_attribute("download", "report.csv")

    # show_alert answers open a dialog.
    await send(pg, "/alert")
    await bot_messages(pg).last.get_by_role("button", name="Warn me").click()
    dialog = pg.get_by_test_id("alert-dialog")
    await expect(dialog).to_be_visible()
    await expect(pg.get_by_test_id("alert-text")).to_have_text("This is an alert")
    await pg.get_by_test_id("alert-ok").click()
    await expect(dialog).to_be_hidden()


async def test_voice_upload_and_reload_without_duplicates(page: Any) -> None:
    from playwright.async_api import expect

    pg = page
    await send(pg, "/start")
    await expect(bot_messages(pg)).to_have_count(1)

    # Attach an audio file: it goes up as a voice message with the duration the browser decoded.
    await pg.get_by_test_id("file-input").set_input_files(
        {"name": "note.wav", "mimeType": "audio/wav", "buffer": make_wav(2.0)}
    )
    voice = pg.locator('[data-testid="message"][data-from="user"] [data-testid="message-voice"]')
    await expect(voice).to_have_count(1)
    await expect(bot_messages(pg).last.get_by_test_id("message-text")).to_have_text(
        "Got a voice message of 2 s"
    )

    counts = (
        await pg.get_by_test_id("message").count(),
        await bot_messages(pg).count(),
    )
    assert counts == (4, 2)

    # A reload replays the history once: same messages, no duplicates, no stale toasts.
    await pg.reload()
    await expect(pg.get_by_test_id("message")).to_have_count(counts[0])
    await expect(bot_messages(pg)).to_have_count(counts[1])
    await expect(pg.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")
    await expect(pg.get_by_test_id("toast")).to_have_count(0)

    # Another user has an empty chat; switching back shows the first one again.
    await pg.get_by_test_id("user-id-input").fill("1002")
    await pg.get_by_test_id("user-id-input").press("Enter")
    await expect(pg.get_by_test_id("message")).to_have_count(0)
    await send(pg, "hello")
    await expect(bot_messages(pg)).to_have_count(1)
    await expect(bot_messages(pg).get_by_test_id("message-text")).to_have_text("You said: hello")
    await pg.get_by_test_id("user-id-input").fill("1001")
    await pg.get_by_test_id("user-id-input").press("Enter")
    await expect(pg.get_by_test_id("message")).to_have_count(counts[0])


async def test_chat_action_delete_and_mic_button(page: Any) -> None:
    from playwright.async_api import expect

    pg = page
    # Headless Chromium has MediaRecorder and getUserMedia: the mic button is offered.
    await expect(pg.get_by_test_id("mic-button")).to_be_visible()

    await send(pg, "/slow")
    action = pg.get_by_test_id("chat-action")
    await expect(action).to_have_text("typing…")
    await expect(action).to_be_visible()
    await expect(bot_messages(pg).get_by_test_id("message-text")).to_have_text("Sorry for the wait")
    await expect(action).to_be_hidden()

    await send(pg, "/temp")
    doomed = bot_messages(pg).filter(has_text="self-destructs")
    await expect(doomed).to_have_count(1)
    await expect(doomed).to_have_count(0)
    await expect(bot_messages(pg)).to_have_count(1)

    # Without MediaRecorder the mic button is hidden.
    await pg.add_init_script("delete window.MediaRecorder;")
    await pg.reload()
    await expect(bot_messages(pg)).to_have_count(1)
    await expect(pg.get_by_test_id("mic-button")).to_be_hidden()


async def test_channel_posts_deep_link_button_and_posting_as_owner(
    page: Any, emulator: Any, test_bot: Bot
) -> None:
    from playwright.async_api import expect

    from sandbox.telegram.client import EmulatorClient

    pg = page
    await expect(pg.get_by_test_id("bot-name")).to_have_text("Webchat Test Bot")
    async with EmulatorClient(emulator.base_url) as client:
        # Alice (the page's user 1001) owns a channel; the bot is its administrator; 1002 subscribes
        channel = await client.create_channel("Alpha Signals", 1001, signatures=True)
        await client.set_bot_member(channel)
        await client.set_member(channel, 1002)
        link = "https://t.me/webchat_test_bot?start=from_channel"
        markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Copy", url=link)]])
        await test_bot.send_message(channel, "<b>BTC/USDT LONG</b> entry 65000", reply_markup=markup)

        # the chat list: the bot's chat and the channel; open the channel
        await pg.get_by_test_id("chats-toggle").click()
        await expect(pg.get_by_test_id("chat-list-item")).to_have_count(2)
        await pg.locator(f'[data-testid="chat-list-item"][data-chat-id="{channel}"]').click()
        await expect(pg.get_by_test_id("chat-list")).to_be_hidden()
        await expect(pg.get_by_test_id("bot-name")).to_have_text("Alpha Signals")
        await expect(pg.get_by_test_id("bot-username")).to_have_text("channel · 3 subscribers")

        # the bot's card, signed, with its Copy button: a t.me deep link to the bot
        card = bot_messages(pg)
        await expect(card).to_have_count(1)
        await expect(card.locator('[data-testid="message-text"] b')).to_have_text("BTC/USDT LONG")
        await expect(card.get_by_test_id("message-signature")).to_have_text("Webchat Test Bot")
        copy = card.locator('[data-testid="inline-button"][data-deep-link="bot"]')
        await expect(copy).to_have_text("Copy")
        await expect(copy).to_have_attribute("data-url", link)

        # the owner posts in the channel: it is the channel's post, signed with her name
        await send(pg, "Hello subscribers")
        mine = pg.locator('[data-testid="message"][data-from="user"]')
        await expect(mine.get_by_test_id("message-text")).to_have_text("Hello subscribers")
        await expect(mine.get_by_test_id("message-signature")).to_have_text("Alice")
        posts = await client.chat_messages(channel, by_bot=False)
        assert [p.text for p in posts] == ["Hello subscribers"]
        assert posts[0]["sender_chat"]["id"] == channel and "from" not in posts[0].raw

        # the Copy button opens the bot's chat with /start <payload>, and the bot answers
        await copy.click()
        await expect(pg.get_by_test_id("bot-name")).to_have_text("Webchat Test Bot")
        sent = pg.locator('[data-testid="message"][data-from="user"]').last
        await expect(sent.get_by_test_id("message-text")).to_have_text("/start from_channel")
        answer = bot_messages(pg).last
        await expect(answer.get_by_test_id("message-text")).to_have_text("Started with from_channel")

        # a subscriber reads the channel but cannot post in it
        await pg.get_by_test_id("user-id-input").fill("1002")
        await pg.get_by_test_id("user-id-input").press("Enter")
        await expect(pg.get_by_test_id("message")).to_have_count(0)
        await pg.get_by_test_id("chats-toggle").click()
        await pg.locator(f'[data-testid="chat-list-item"][data-chat-id="{channel}"]').click()
        await expect(pg.get_by_test_id("message")).to_have_count(2)
        await expect(pg.get_by_test_id("read-only-note")).to_be_visible()
        await expect(pg.get_by_test_id("composer")).to_be_hidden()
