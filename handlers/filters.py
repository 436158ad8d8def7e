"""Async filters. aiogram runs synchronous filters (magic `F` filters included) in a thread pool, one
thread hop per check; these run on the event loop."""

from __future__ import annotations

from aiogram.filters import Filter
from aiogram.types import Message


class ChatType(Filter):
    def __init__(self, *types: str) -> None:
        self.types = frozenset(types)

    async def __call__(self, message: Message) -> bool:
        return message.chat.type in self.types


class IsCommand(Filter):
    """Text that starts with a slash."""

    async def __call__(self, message: Message) -> bool:
        return bool(message.text) and message.text.startswith("/")  # type: ignore[union-attr]


class HasText(Filter):
    async def __call__(self, message: Message) -> bool:
        return bool(message.text)


PRIVATE = ChatType("private")
GROUPS = ChatType("group", "supergroup")
