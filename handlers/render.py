"""Small rendering helpers shared by handlers."""

from __future__ import annotations

import re

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InaccessibleMessage, InlineKeyboardMarkup, Message

_TAGS = re.compile(r"<[^>]+>")


def plain(text: str, limit: int = 200) -> str:
    """HTML to the plain text callback alerts need (Telegram caps them at 200 characters)."""
    import html

    out = html.unescape(_TAGS.sub("", text))
    return out if len(out) <= limit else out[: limit - 1] + "…"


async def show(event: Message | CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Answer a command with a new message, or a button press by editing the message in place."""
    if isinstance(event, CallbackQuery):
        message = event.message
        if isinstance(message, Message):
            try:
                await message.edit_text(text, reply_markup=markup)
            except TelegramBadRequest as exc:
                if "message is not modified" not in exc.message:
                    raise
        elif isinstance(message, InaccessibleMessage) or message is None:
            await event.bot.send_message(event.from_user.id, text, reply_markup=markup)  # type: ignore[union-attr]
        await event.answer()
        return
    await event.answer(text, reply_markup=markup)


async def confirmation_gone(query: CallbackQuery, text: str) -> None:
    """A confirmation that expired or was used: say so, and take its buttons away."""
    await query.answer(plain(text), show_alert=True)
    if isinstance(query.message, Message):
        try:
            await query.message.edit_reply_markup(reply_markup=None)
        except TelegramBadRequest as exc:
            if "message is not modified" not in exc.message:  # the press that used it took them already
                raise
