"""Whatever no feature handled: a short helpful answer in private chats, silence elsewhere."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from handlers.commands import COMMANDS
from handlers.filters import GROUPS, PRIVATE, HasText, IsCommand
from services.i18n import Translator


def build_router() -> Router:
    router = Router(name="fallback")
    router.message.register(unknown_command, PRIVATE, IsCommand())
    router.message.register(free_text, PRIVATE, HasText())
    router.message.register(unsupported_content, PRIVATE)
    router.message.register(group_command, GROUPS, IsCommand())
    router.callback_query.register(stale_button)
    return router


MAX_TEXT = 2000


def _command_of(text: str) -> tuple[str, str | None]:
    head = text.split(maxsplit=1)[0][1:]
    name, _, mention = head.partition("@")
    return name.lower(), (mention.lower() or None)


async def unknown_command(message: Message, i18n: Translator) -> None:
    command = (message.text or "").split(maxsplit=1)[0][:64]
    await message.answer(i18n("fallback.unknown_command", command=command))


async def free_text(message: Message, i18n: Translator) -> None:
    key = "fallback.too_long" if len(message.text or "") > MAX_TEXT else "fallback.text"
    await message.answer(i18n(key))


async def unsupported_content(message: Message, i18n: Translator) -> None:
    await message.answer(i18n("fallback.unsupported"))


async def group_command(message: Message, i18n: Translator, bot: Bot) -> None:
    """Commands meant for us in a group get a pointer to the private chat; others are not ours."""
    me = await bot.me()
    name, mention = _command_of(message.text or "")
    if mention is not None and mention != (me.username or "").lower():
        return
    if mention is None and name not in COMMANDS:
        return
    button = InlineKeyboardButton(
        text=i18n("fallback.open_private"), url=f"https://t.me/{me.username}?start=hi"
    )
    await message.reply(
        i18n("fallback.private_only"),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[[button]]),
        allow_sending_without_reply=True,
    )


async def stale_button(query: CallbackQuery, i18n: Translator) -> None:
    await query.answer(i18n("errors.expired_button"), show_alert=True)
