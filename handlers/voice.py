"""Voice messages and free text become the bot's commands.

A voice message (voice note, audio file or video note) is checked against the limits before it is
downloaded, transcribed off the event loop and echoed back ("I heard: ..."). The transcript, like any free
text, goes through the intent parser: a command is proposed with a Run button (nothing runs from speech or
prose alone; money moves only after the order's own confirmation card), an ambiguous request gets a
question with buttons, anything else a short hint. Run feeds the command to the dispatcher as if it had
been typed, so it meets exactly the same handlers, checks and cards.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.enums import ChatAction
from aiogram.filters import BaseFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, MessageEntity, Update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.filters import PRIVATE
from handlers.render import show
from keyboards.voice import IntentCB, options_keyboard, run_keyboard
from services.i18n import Translator
from services.intents import Intent, IntentKind, parse_intent
from services.voice import VoiceService

MAX_FREE_TEXT = 300
STATE_KEY = "intent"


class FreeText(BaseFilter):
    """Plain text that is not a command (async: aiogram runs sync filters in worker threads)."""

    async def __call__(self, message: Message) -> bool:
        text = message.text or ""
        return bool(text) and not text.startswith("/") and len(text) <= MAX_FREE_TEXT


def build_router() -> Router:
    router = Router(name="voice")
    router.message.filter(PRIVATE)
    router.message.register(on_voice, F.voice | F.audio | F.video_note)
    router.message.register(on_free_text, FreeText())
    router.callback_query.register(on_intent_button, IntentCB.filter())
    return router


async def _propose(
    message: Message, i18n: Translator, state: FSMContext, intent: Intent, heard: str | None
) -> None:
    """Show what the words mean: a command to run, a question, or a hint."""
    prefix = i18n("voice.heard", text=heard) + "\n\n" if heard is not None else ""
    nonce = secrets.token_hex(4)
    if intent.kind is IntentKind.COMMAND and intent.command:
        await state.update_data({STATE_KEY: {"nonce": nonce, "command": intent.command, "options": []}})
        key = "voice.propose_money" if intent.moves_money else "voice.propose"
        await message.answer(
            prefix + i18n(key, command=intent.command), reply_markup=run_keyboard(i18n, nonce)
        )
        return
    if intent.kind is IntentKind.CLARIFY and intent.options:
        await state.update_data(
            {STATE_KEY: {"nonce": nonce, "command": None, "options": [o.text for o in intent.options]}}
        )
        question = i18n(intent.message_key or "intent.clarify.which_coin", **dict(intent.params))
        await message.answer(prefix + question, reply_markup=options_keyboard(i18n, nonce, intent.options))
        return
    await message.answer(prefix + i18n(intent.message_key or "intent.unknown", **dict(intent.params)))


async def on_voice(
    message: Message, bot: Bot, i18n: Translator, locale: str, state: FSMContext, voice: VoiceService
) -> None:
    media = message.voice or message.audio or message.video_note
    assert media is not None
    voice.check(duration_s=media.duration, size_bytes=media.file_size)  # before anything is downloaded
    progress = await message.answer(i18n("voice.listening"))
    await bot.send_chat_action(message.chat.id, ChatAction.TYPING)
    try:
        downloaded = await bot.download(media.file_id)
        assert downloaded is not None
        transcript = await voice.transcribe(downloaded.read(), language=None, duration_s=media.duration)
    finally:
        await bot.delete_message(message.chat.id, progress.message_id)
    intent = parse_intent(transcript.text, locale)
    await _propose(message, i18n, state, intent, transcript.text.strip())


async def on_free_text(message: Message, i18n: Translator, locale: str, state: FSMContext) -> None:
    intent = parse_intent(message.text or "", locale)
    if intent.kind is IntentKind.UNKNOWN:
        await message.answer(i18n("fallback.text"))
        return
    await _propose(message, i18n, state, intent, None)


async def on_intent_button(
    query: CallbackQuery,
    callback_data: IntentCB,
    bot: Bot,
    dispatcher: Dispatcher,
    i18n: Translator,
    locale: str,
    state: FSMContext,
    session: AsyncSession,
) -> None:
    data = (await state.get_data()).get(STATE_KEY) or {}
    if data.get("nonce") != callback_data.nonce:
        await query.answer(i18n("voice.expired"), show_alert=True)
        return
    await state.update_data({STATE_KEY: None})  # single use
    message = query.message
    if callback_data.action == "cancel" or not isinstance(message, Message):
        await show(query, i18n("voice.cancelled"), None)
        return
    if callback_data.action == "pick":
        options: list[str] = data.get("options") or []
        if not 0 <= callback_data.index < len(options):
            await query.answer(i18n("voice.expired"), show_alert=True)
            return
        intent = parse_intent(options[callback_data.index], locale)
        await show(query, message.html_text, None)  # the question is answered: its buttons go
        await _propose(message, i18n, state, intent, None)
        return
    command: str | None = data.get("command")
    if not command:
        await query.answer(i18n("voice.expired"), show_alert=True)
        return
    await show(query, i18n("voice.running", command=command), None)
    await session.commit()  # the command runs in its own update and session
    await _run(bot, dispatcher, query, message, command)


async def _run(
    bot: Bot, dispatcher: Dispatcher, query: CallbackQuery, message: Message, command: str
) -> None:
    """The command as if the user had typed it: the same routers, middlewares, checks and cards."""
    name_length = len(command.split(maxsplit=1)[0])
    typed = Message(
        message_id=message.message_id,
        date=message.date,
        chat=message.chat,
        from_user=query.from_user,
        text=command,
        entities=[MessageEntity(type="bot_command", offset=0, length=name_length)],
    )
    payload: dict[str, Any] = {"update_id": 0, "message": typed.model_dump(exclude_none=True)}
    await dispatcher.feed_update(bot, Update.model_validate(payload, context={"bot": bot}))
