"""Keeps aiogram's per-call response types alive.

aiogram builds `Response[<method's return type>]` (a pydantic generic) for every API call; pydantic caches
those classes only weakly, so after a garbage collection the class is rebuilt, which costs milliseconds per
call. Holding a strong reference to the types of the methods we use keeps them cached for the process.
"""

from __future__ import annotations

from typing import Any

from aiogram import methods
from aiogram.methods import Response

_METHODS = (
    methods.SendMessage,
    methods.EditMessageText,
    methods.EditMessageReplyMarkup,
    methods.AnswerCallbackQuery,
    methods.DeleteMessage,
    methods.SendChatAction,
    methods.SendPhoto,
    methods.SendDocument,
    methods.GetUpdates,
    methods.GetMe,
    methods.SetMyCommands,
    methods.SetWebhook,
    methods.DeleteWebhook,
    methods.GetFile,
)
_KEEP: list[Any] = [Response[method.__returning__] for method in _METHODS]  # type: ignore[name-defined]


def kept() -> int:
    return len(_KEEP)
