"""The Telegram Bot API emulator driven by the real aiogram 3 Bot and Dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
import zlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command, CommandStart
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    MessageEntity,
    ReplyKeyboardMarkup,
    ReplyParameters,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from sandbox.telegram import TelegramEmulator
from sandbox.telegram.client import ControlError, EmulatorClient

USER = 1001


def make_bot(emu: TelegramEmulator, token: str) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(emu.base_url))
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode="HTML"))


def png(width: int, height: int) -> bytes:
    row = b"\x00" + b"\x10\x20\x30" * width
    raw = row * height

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=text, callback_data=data) for text, data in buttons]]
    )


@contextlib.asynccontextmanager
async def polling(dp: Dispatcher, bot: Bot) -> AsyncIterator[None]:
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    try:
        yield
    finally:
        await dp.stop_polling()
        with contextlib.suppress(asyncio.CancelledError, RuntimeError):
            await asyncio.wait_for(task, 5)


# ---------------------------------------------------------------------------------------------- messages


async def test_get_me(bot: Bot) -> None:
    me = await bot.get_me()
    assert me.is_bot and me.username == "cryptouniverse_bot" and me.first_name == "CryptoUniverse"


async def test_html_becomes_text_and_utf16_entities(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    user = client.user(USER, "Alice")
    await user.send("hi")
    sent = await bot.send_message(USER, '<b>BTC 🚀 up</b> &lt;5%&gt; &amp; <a href="https://ex.com">more</a>')
    assert sent.text == "BTC 🚀 up <5%> & more"
    assert sent.from_user is not None and sent.from_user.is_bot
    assert sent.chat.id == USER and sent.chat.type == "private" and sent.chat.first_name == "Alice"
    entities = [(e.type, e.offset, e.length, e.url) for e in sent.entities or []]
    # the rocket is a surrogate pair: 2 UTF-16 code units
    assert entities == [("bold", 0, 9, None), ("text_link", 17, 4, "https://ex.com/")]
    shown = await user.next_message()
    assert shown.message_id == sent.message_id
    assert shown.html == '<b>BTC 🚀 up</b> &lt;5%&gt; &amp; <a href="https://ex.com/">more</a>'
    assert sent.html_text == shown.html  # aiogram renders the entities back the same way


async def test_message_ids_increase_per_chat(emu: TelegramEmulator, bot: Bot, client: EmulatorClient) -> None:
    alice, bob = client.user(1, "Alice"), client.user(2, "Bob")
    first = await alice.send("hello")
    await bob.send("hello")
    reply = await bot.send_message(1, "hi Alice")
    assert reply.message_id == first["message_id"] + 1
    assert (await bot.send_message(2, "hi Bob")).message_id == 2


async def test_malformed_html_is_refused(emu: TelegramEmulator, bot: Bot, client: EmulatorClient) -> None:
    await client.user(USER).send("hi")
    cases = {
        "<b>bold": 'Can\'t find end tag corresponding to start tag "b"',
        "a < b": 'Unsupported start tag "" at byte offset 2',
        "<b>x</i>": 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"',
        "<br>": 'Unsupported start tag "br" at byte offset 0',
        "é</b>": "Unexpected end tag at byte offset 2",
    }
    for text, detail in cases.items():
        with pytest.raises(TelegramBadRequest) as info:
            await bot.send_message(USER, text)
        assert info.value.message == f"Bad Request: can't parse entities: {detail}"
    assert emu.messages(USER)[-1]["text"] == "hi"  # nothing was stored


async def test_text_limits_and_unknown_chat(bot: Bot, client: EmulatorClient) -> None:
    await client.user(USER).send("hi")
    with pytest.raises(TelegramBadRequest, match="Bad Request: message text is empty"):
        await bot.send_message(USER, "  <b> </b> ")
    with pytest.raises(TelegramBadRequest, match="Bad Request: message is too long"):
        await bot.send_message(USER, "x" * 4097)
    assert (await bot.send_message(USER, "😀" * 2048)).text == "😀" * 2048  # 4096 UTF-16 units
    with pytest.raises(TelegramBadRequest, match="Bad Request: message is too long"):
        await bot.send_message(USER, "😀" * 2049)
    with pytest.raises(TelegramBadRequest, match="Bad Request: chat not found"):
        await bot.send_message(424242, "hello?")


async def test_markdown_v2_and_explicit_entities(bot: Bot, client: EmulatorClient) -> None:
    await client.user(USER).send("hi")
    sent = await bot.send_message(USER, "*bold _it_* `code` \\. [x](https://t.me)", parse_mode="MarkdownV2")
    assert sent.text == "bold it code . x"
    assert [(e.type, e.offset, e.length) for e in sent.entities or []] == [
        ("bold", 0, 7),
        ("italic", 5, 2),
        ("code", 8, 4),
        ("text_link", 15, 1),
    ]
    with pytest.raises(TelegramBadRequest, match=r"Character '\.' is reserved"):
        await bot.send_message(USER, "1.5", parse_mode="MarkdownV2")
    plain = await bot.send_message(
        USER, "<b>not html</b>", parse_mode=None, entities=[MessageEntity(type="italic", offset=0, length=4)]
    )
    assert (
        plain.text == "<b>not html</b>" and plain.entities is not None and plain.entities[0].type == "italic"
    )


async def test_user_commands_get_bot_command_entity(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    await client.user(USER, "Alice", language_code="de").send("/price BTC")
    (update,) = await bot.get_updates()
    assert update.message is not None and update.message.text == "/price BTC"
    assert update.message.from_user is not None and update.message.from_user.language_code == "de"
    assert [(e.type, e.offset, e.length) for e in update.message.entities or []] == [("bot_command", 0, 6)]


async def test_edit_delete_and_their_errors(emu: TelegramEmulator, bot: Bot, client: EmulatorClient) -> None:
    user = client.user(USER)
    mine = await user.send("hi")
    sent = await bot.send_message(USER, "Price: <b>1</b>", reply_markup=keyboard(("Refresh", "r")))
    edited = await bot.edit_message_text(
        text="Price: <b>2</b>",
        chat_id=USER,
        message_id=sent.message_id,
        reply_markup=keyboard(("Refresh", "r")),
    )
    assert isinstance(edited, Message) and edited.text == "Price: 2" and edited.edit_date is not None
    with pytest.raises(TelegramBadRequest) as info:
        await bot.edit_message_text(
            text="Price: <b>2</b>",
            chat_id=USER,
            message_id=sent.message_id,
            reply_markup=keyboard(("Refresh", "r")),
        )
    assert info.value.message == (
        "Bad Request: message is not modified: specified new message content and reply markup are exactly "
        "the same as a current content and reply markup of the message"
    )
    # same text without the keyboard removes the keyboard: that is a modification
    stripped = await bot.edit_message_text(text="Price: <b>2</b>", chat_id=USER, message_id=sent.message_id)
    assert isinstance(stripped, Message) and stripped.reply_markup is None
    with pytest.raises(TelegramBadRequest, match="Bad Request: message to edit not found"):
        await bot.edit_message_text(text="x", chat_id=USER, message_id=999)
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text(text="x", chat_id=USER, message_id=mine["message_id"])
    assert await bot.delete_message(USER, sent.message_id)
    with pytest.raises(TelegramBadRequest, match="Bad Request: message to delete not found"):
        await bot.delete_message(USER, sent.message_id)
    assert await bot.delete_messages(USER, [mine["message_id"], 12345])

    first = await user.next_message()
    second = await user.next_message()
    third = await user.next_message()
    assert (first.edited, second.edited, third.edited) == (False, True, True)
    assert second.html == "Price: <b>2</b>" and second.buttons == [[("Refresh", "r")]]
    assert third.buttons == []
    await user.refresh()
    assert user.history == [] and sent.message_id in user.deleted


async def test_reply_parameters_and_reply_keyboard(bot: Bot, client: EmulatorClient) -> None:
    user = client.user(USER)
    question = await user.send("what now?")
    answer = await bot.send_message(
        USER,
        "choose",
        reply_parameters=ReplyParameters(message_id=question["message_id"]),
        reply_markup=ReplyKeyboardMarkup(
            keyboard=[[KeyboardButton(text="Portfolio")]], one_time_keyboard=True
        ),
    )
    assert answer.reply_to_message is not None and answer.reply_to_message.text == "what now?"
    assert answer.reply_markup is None  # Telegram returns only inline keyboards in messages
    shown = await user.next_message()
    assert shown.reply_keyboard is not None and shown.reply_keyboard["keyboard"] == [[{"text": "Portfolio"}]]
    assert user.keyboard is not None
    await user.send("Portfolio")
    await user.refresh()
    assert user.keyboard is None  # one-time keyboards hide after use
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(USER, "x", reply_parameters=ReplyParameters(message_id=999))


async def test_blocked_user_and_unstarted_user(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    user = client.user(USER)
    await user.send("/start")
    await user.block()
    with pytest.raises(TelegramForbiddenError) as info:
        await bot.send_message(USER, "still there?")
    assert info.value.message == "Forbidden: bot was blocked by the user"
    updates = await bot.get_updates()
    member = updates[-1].my_chat_member
    assert member is not None and member.new_chat_member.status == "kicked"
    await user.send("/start")  # writing again unblocks
    assert (await bot.send_message(USER, "welcome back")).text == "welcome back"
    emu.add_user(555, "Quiet", started=False)
    with pytest.raises(TelegramForbiddenError, match="bot can't initiate conversation with a user"):
        await bot.send_message(555, "hi")


# ---------------------------------------------------------------------------------------------- keyboards


async def test_button_data_invalid(bot: Bot, client: EmulatorClient) -> None:
    await client.user(USER).send("hi")
    with pytest.raises(TelegramBadRequest, match="Bad Request: BUTTON_DATA_INVALID"):
        await bot.send_message(USER, "x", reply_markup=keyboard(("too long", "x" * 65)))
    assert await bot.send_message(USER, "x", reply_markup=keyboard(("ok", "é" * 32)))  # 64 bytes


async def test_dispatcher_polling_with_inline_keyboard(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer("<b>Welcome</b>", reply_markup=keyboard(("Buy", "buy"), ("Sell", "sell")))

    @router.callback_query(F.data == "buy")
    async def buy(query: CallbackQuery) -> None:
        await query.answer("Bought!", show_alert=True)
        assert isinstance(query.message, Message)
        await query.message.edit_text("You bought <i>BTC</i>")

    dp = Dispatcher()
    dp.include_router(router)
    user = client.user(USER, "Alice")
    async with polling(dp, bot):
        await user.send("/start")
        welcome = await user.next_message()
        assert welcome.html == "<b>Welcome</b>" and welcome.buttons == [[("Buy", "buy"), ("Sell", "sell")]]
        query_id = await user.press(welcome, text="Buy")
        answer = await user.callback_answer(query_id)
        assert answer["text"] == "Bought!" and answer["show_alert"] is True
        edited = await user.next_message()
        assert edited.edited and edited.message_id == welcome.message_id
        assert edited.html == "You bought <i>BTC</i>" and edited.buttons == []
        await user.expect_silence(0.2)
    answers = await client.request("GET", "callback_answers", params={"user_id": USER})
    assert answers == [
        {
            "callback_query_id": query_id,
            "message_id": welcome.message_id,
            "data": "buy",
            "text": "Bought!",
            "show_alert": True,
            "url": None,
            "answered": True,
            "expired": False,
        }
    ]


async def test_callback_query_full_message_and_expiry(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    user = client.user(USER)
    await user.send("hi")
    sent = await bot.send_message(USER, "pick", reply_markup=keyboard(("A", "a")))
    first_id = await user.press(sent.message_id, data="a")
    updates = await bot.get_updates()
    query = updates[-1].callback_query
    assert query is not None and query.id == first_id and query.data == "a" and query.chat_instance
    assert isinstance(query.message, Message) and query.message.text == "pick"
    assert query.message.reply_markup == sent.reply_markup
    assert await bot.answer_callback_query(first_id)
    with pytest.raises(TelegramBadRequest) as info:
        await bot.answer_callback_query(first_id)  # answered twice
    assert info.value.message == (
        "Bad Request: query is too old and response timeout expired or query ID is invalid"
    )
    emu.settings.callback_query_timeout = 0.05
    late_id = await user.press(sent.message_id, data="a")
    await asyncio.sleep(0.1)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(late_id)
    with pytest.raises(ControlError):
        await user.press(sent.message_id, data="nope")


# ---------------------------------------------------------------------------------------------- files


async def test_photo_upload_get_file_and_download(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    user = client.user(USER)
    await user.send("chart please")
    image = png(64, 32)
    sent = await bot.send_photo(USER, BufferedInputFile(image, "chart.png"), caption="<b>BTC</b> 1h")
    assert sent.photo is not None
    size = sent.photo[-1]
    assert (size.width, size.height, size.file_size) == (64, 32, len(image))
    assert sent.caption == "BTC 1h" and sent.caption_entities is not None
    file = await bot.get_file(size.file_id)
    assert file.file_path is not None
    downloaded = await bot.download_file(file.file_path)
    assert downloaded is not None and downloaded.read() == image
    shown = await user.next_message()
    assert shown.photo is not None and shown.html == "<b>BTC</b> 1h"
    assert await user.download(shown) == image
    # re-sending by file_id reuses the file
    again = await bot.send_photo(USER, size.file_id)
    assert again.photo is not None and again.photo[-1].file_unique_id == size.file_unique_id
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(USER, BufferedInputFile(b"not an image", "x.png"))
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(USER, "nonexistent-file-id")


async def test_document_voice_and_user_uploads(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    user = client.user(USER)
    voice_message = await user.upload(
        "voice", b"OggS fake voice", "note.ogg", duration=3, mime_type="audio/ogg"
    )
    assert voice_message["voice"]["duration"] == 3
    updates = await bot.get_updates()
    voice = updates[-1].message
    assert voice is not None and voice.voice is not None and voice.voice.mime_type == "audio/ogg"
    file = await bot.get_file(voice.voice.file_id)
    assert file.file_path is not None
    data = await bot.download_file(file.file_path)
    assert data is not None and data.read() == b"OggS fake voice"

    await user.upload("photo", png(8, 8), "me.png", caption="look")
    photo_update = (await bot.get_updates(offset=updates[-1].update_id + 1))[-1]
    assert photo_update.message is not None and photo_update.message.photo is not None
    assert photo_update.message.caption == "look"

    doc = await bot.send_document(USER, BufferedInputFile(b"a,b\n1,2\n", "trades.csv"), caption="export")
    assert doc.document is not None and doc.document.file_name == "trades.csv"
    assert doc.document.mime_type == "text/csv"
    reply_voice = await bot.send_voice(USER, BufferedInputFile(b"OggS", "r.ogg"), duration=2)
    assert reply_voice.voice is not None and reply_voice.voice.duration == 2
    audio = await bot.send_audio(USER, BufferedInputFile(b"ID3", "a.mp3"), title="Song")
    assert audio.audio is not None and audio.audio.title == "Song"
    with pytest.raises(TelegramBadRequest, match="can't use file of type Document as Photo"):
        await bot.send_photo(USER, doc.document.file_id)
    shown = [await user.next_message() for _ in range(3)]
    assert shown[0].document is not None and shown[0].file_url is not None
    assert await user.download(shown[0]) == b"a,b\n1,2\n"


async def test_forward_and_copy(bot: Bot, client: EmulatorClient) -> None:
    user = client.user(USER)
    original = await user.send("signal: BUY")
    forwarded = await bot.forward_message(USER, USER, original["message_id"])
    assert forwarded.text == "signal: BUY" and forwarded.forward_origin is not None
    copied = await bot.copy_message(USER, USER, original["message_id"])
    assert copied.message_id == forwarded.message_id + 1


# ---------------------------------------------------------------------------------------------- bot settings


async def test_commands_per_scope_and_language(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    english = [
        BotCommand(command="start", description="Start"),
        BotCommand(command="price", description="Price"),
    ]
    russian = [BotCommand(command="start", description="Начать")]
    assert await bot.set_my_commands(english)
    assert await bot.set_my_commands(russian, language_code="ru")
    assert await bot.set_my_commands(
        [BotCommand(command="admin", description="Admin")], BotCommandScopeChat(chat_id=7)
    )
    assert [c.command for c in await bot.get_my_commands()] == ["start", "price"]
    assert [c.description for c in await bot.get_my_commands(language_code="ru")] == ["Начать"]
    assert await bot.get_my_commands(language_code="de") == []
    state = await client.bot_state()
    assert set(state["commands"]) == {"default", "default/ru", "chat:7"}
    menu = await client.request("GET", "commands", params={"user_id": 1, "language_code": "ru"})
    assert menu["commands"] == [{"command": "start", "description": "Начать"}]
    menu = await client.request("GET", "commands", params={"user_id": 7})
    assert menu["commands"] == [{"command": "admin", "description": "Admin"}]
    assert await bot.delete_my_commands(language_code="ru")
    assert await bot.get_my_commands(language_code="ru") == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad Command", description="x")])
    assert await bot.set_chat_menu_button()
    chat = None
    await client.user(USER, "Alice", username="alice").send("hi")
    chat = await bot.get_chat(USER)
    assert chat.type == "private" and chat.first_name == "Alice" and chat.username == "alice"
    await bot.send_chat_action(USER, "typing")
    with pytest.raises(TelegramBadRequest, match="wrong parameter action in request"):
        await bot.send_chat_action(USER, "dancing")


# ---------------------------------------------------------------------------------------------- updates


async def test_get_updates_offset_limit_and_long_poll(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    user = client.user(USER)
    for text in ("one", "two", "three"):
        await user.send(text)
    updates = await bot.get_updates(limit=2)
    assert [u.message.text for u in updates if u.message] == ["one", "two"]
    assert updates[1].update_id == updates[0].update_id + 1
    again = await bot.get_updates()  # nothing confirmed yet
    assert len(again) == 3
    rest = await bot.get_updates(offset=updates[1].update_id + 1)
    assert [u.message.text for u in rest if u.message] == ["three"]
    assert await bot.get_updates(offset=rest[0].update_id + 1) == []

    started = time.monotonic()
    assert await bot.get_updates(offset=rest[0].update_id + 1, timeout=1) == []
    assert 0.9 <= time.monotonic() - started < 3

    async def later() -> None:
        await asyncio.sleep(0.2)
        await user.send("four")

    task = asyncio.create_task(later())
    started = time.monotonic()
    woken = await bot.get_updates(offset=rest[0].update_id + 1, timeout=10)
    assert [u.message.text for u in woken if u.message] == ["four"]
    assert time.monotonic() - started < 2
    await task


async def test_allowed_updates_filter(emu: TelegramEmulator, bot: Bot, client: EmulatorClient) -> None:
    await bot.get_updates(allowed_updates=["callback_query"])
    await client.user(USER).send("ignored")
    assert await bot.get_updates() == []
    await bot.get_updates(allowed_updates=[])
    await client.user(USER).send("seen")
    assert [u.message.text for u in await bot.get_updates() if u.message] == ["seen"]


async def test_raw_update_and_edited_message(emu: TelegramEmulator, bot: Bot, client: EmulatorClient) -> None:
    user = client.user(USER)
    sent = await user.send("typo")
    await user.edit(sent["message_id"], "fixed")
    update_id = await client.raw_update(
        {"message": {"message_id": 99, "date": 0, "chat": {"id": 5, "type": "private"}, "text": "raw"}}
    )
    updates = await bot.get_updates()
    assert updates[1].edited_message is not None and updates[1].edited_message.text == "fixed"
    assert updates[2].update_id == update_id and updates[2].message is not None
    assert updates[2].message.text == "raw"


async def test_webhook_delivery_secret_retry_and_conflict(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    received: list[dict[str, object]] = []
    secrets_seen: list[str | None] = []
    fail_first = [True]

    async def hook(request: web.Request) -> web.Response:
        secrets_seen.append(request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        if fail_first[0]:
            fail_first[0] = False
            return web.Response(status=500)
        received.append(await request.json())
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        user = client.user(USER)
        await user.send("before")
        assert await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cr3t")
        with pytest.raises(
            TelegramConflictError, match="can't use getUpdates method while webhook is active"
        ):
            await bot.get_updates()
        await user.send("after")
        for _ in range(100):
            if len(received) == 2:
                break
            await asyncio.sleep(0.05)
        texts = [u["message"]["text"] for u in received]  # type: ignore[index]
        assert texts == ["before", "after"]  # the failed delivery was retried, order kept
        assert secrets_seen[:2] == ["s3cr3t", "s3cr3t"] and len(secrets_seen) == 3
        info = await bot.get_webhook_info()
        assert info.url.endswith("/hook") and info.pending_update_count == 0
        assert info.last_error_message is not None and "500" in info.last_error_message
        assert await bot.delete_webhook()
        await user.send("polled")
        assert [u.message.text for u in await bot.get_updates() if u.message] == ["polled"]
    finally:
        await runner.cleanup()


async def test_dispatcher_in_webhook_mode(emu: TelegramEmulator, bot: Bot, client: EmulatorClient) -> None:
    router = Router()

    @router.message(Command("ping"))
    async def ping(message: Message) -> None:
        await message.answer("pong")

    dp = Dispatcher()
    dp.include_router(router)
    app = web.Application()
    SimpleRequestHandler(dp, bot, secret_token="tok").register(app, path="/webhook")
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        await bot.set_webhook(f"http://127.0.0.1:{port}/webhook", secret_token="tok")
        user = client.user(USER)
        await user.send("/ping")
        assert (await user.next_message()).text == "pong"
    finally:
        await bot.delete_webhook()
        await runner.cleanup()


async def test_webhook_answer_with_method(emu: TelegramEmulator, bot: Bot, client: EmulatorClient) -> None:
    async def hook(request: web.Request) -> web.Response:
        update = await request.json()
        chat_id = update["message"]["chat"]["id"]
        return web.json_response({"method": "sendMessage", "chat_id": chat_id, "text": "<i>inline</i>"})

    app = web.Application()
    app.router.add_post("/h", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        await bot.set_webhook(f"http://127.0.0.1:{runner.addresses[0][1]}/h")
        user = client.user(USER)
        await user.send("hi")
        # no parse_mode in the answer: the text stays literal
        assert (await user.next_message()).text == "<i>inline</i>"
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------------------------------------- errors


async def test_unknown_token_and_method(emu: TelegramEmulator) -> None:
    stranger = make_bot(emu, token="123456:unknown")
    try:
        with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
            await stranger.get_me()
    finally:
        await stranger.session.close()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{emu.base_url}/bot{emu.bot().token}/noSuchMethod") as response:
            assert response.status == 404
            assert await response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        # method names are case-insensitive; query strings and JSON bodies work too
        async with http.get(f"{emu.base_url}/bot{emu.bot().token}/GETME") as response:
            assert (await response.json())["result"]["is_bot"] is True
    _ = TelegramNotFound


async def test_retry_after_injection(emu: TelegramEmulator, bot: Bot, client: EmulatorClient) -> None:
    await client.user(USER).send("hi")
    emu.fail_next("sendMessage", error_code=429, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as info:
        await bot.send_message(USER, "x")
    assert info.value.retry_after == 7 and "Too Many Requests: retry after 7" in info.value.message
    assert (await bot.send_message(USER, "x")).text == "x"  # only once
    await client.fail_next("getMe", error_code=502, times=2)
    for _ in range(2):
        with pytest.raises(Exception, match="Bad Gateway"):
            await bot.get_me()
    assert (await bot.get_me()).is_bot


async def test_calls_recorded_and_rate_measured(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    await client.user(USER).send("hi")
    emu.clear_calls()
    for i in range(5):
        await bot.send_message(USER, f"msg {i}")
    await bot.send_chat_action(USER, "typing")
    calls = emu.calls_of("sendMessage")
    assert [c.params["text"] for c in calls] == [f"msg {i}" for i in range(5)]
    assert all(c.chat_id == USER for c in calls)
    assert emu.max_requests_per_second(USER) == 5
    assert emu.max_requests_per_second(USER, methods=None) == 6
    assert emu.total_requests_per_second() == 5
    emu.set_rate_limits(per_chat=2)
    await asyncio.sleep(1.0)
    await bot.send_message(USER, "a")
    await bot.send_message(USER, "b")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(USER, "c")
    remote = await client.calls()
    assert remote[-1]["error"] == "Too Many Requests: retry after 1"


async def test_request_body_formats(emu: TelegramEmulator, client: EmulatorClient) -> None:
    await client.user(USER).send("hi")
    url = f"{emu.base_url}/bot{emu.bot().token}/sendMessage"
    markup = '{"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}'
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"chat_id": USER, "text": "<b>json</b>", "parse_mode": "HTML"}) as r:
            body = await r.json()
            assert body["result"]["entities"] == [{"type": "bold", "offset": 0, "length": 4}]
        async with http.post(url, data={"chat_id": str(USER), "text": "form", "reply_markup": markup}) as r:
            body = await r.json()
            assert body["result"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "a"
        async with http.get(url, params={"chat_id": str(USER), "text": "query"}) as r:
            assert (await r.json())["result"]["text"] == "query"
        async with http.post(url, data={"chat_id": str(USER), "text": "x", "reply_markup": "{bad"}) as r:
            assert r.status == 400


async def test_control_chat_long_poll_and_webchat_files(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    user = client.user(USER)
    await user.send("hello")
    first = await client.request("GET", "chat", params={"user_id": USER})
    assert [e["type"] for e in first["events"]] == ["message"]
    assert first["events"][0]["message"]["html"] == "hello"

    async def later() -> None:
        await asyncio.sleep(0.1)
        await bot.send_message(USER, "<b>late</b>")

    task = asyncio.create_task(later())
    second = await client.request(
        "GET", "chat", params={"user_id": USER, "since": first["seq"], "timeout": 5}
    )
    await task
    assert [e["message"]["html"] for e in second["events"]] == ["<b>late</b>"]
    assert second["seq"] > first["seq"]
    bots = await client.bots()
    assert bots == [{"id": emu.bot().id, "username": "cryptouniverse_bot", "first_name": "CryptoUniverse"}]
    async with aiohttp.ClientSession() as http:
        for path in ("/webchat/../server.py", "/webchat/definitely-missing.js", "/sandbox/files/nope"):
            async with http.get(f"{emu.base_url}{path}") as response:
                assert response.status == 404
        async with http.get(f"{emu.base_url}/") as response:
            assert response.status in (200, 404)


async def test_media_group(bot: Bot, client: EmulatorClient) -> None:
    from aiogram.types import InputMediaPhoto

    user = client.user(USER)
    await user.send("hi")
    album = await bot.send_media_group(
        USER,
        [
            InputMediaPhoto(media=BufferedInputFile(png(4, 4), "a.png"), caption="<b>first</b>"),
            InputMediaPhoto(media=BufferedInputFile(png(5, 5), "b.png")),
        ],
    )
    assert len(album) == 2 and album[0].media_group_id == album[1].media_group_id
    assert album[0].caption == "first" and album[1].photo is not None and album[1].photo[-1].width == 5


async def test_stop_answers_pending_long_polls() -> None:
    emu = TelegramEmulator()
    await emu.start()
    token = emu.add_bot("slow_bot")
    bot = make_bot(emu, token)
    try:
        poll = asyncio.create_task(bot.get_updates(timeout=30))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await emu.stop()
        assert time.monotonic() - started < 3
        with contextlib.suppress(Exception):
            await asyncio.wait_for(poll, 3)
    finally:
        await bot.session.close()
