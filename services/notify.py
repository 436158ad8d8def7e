"""How services reach users outside a request: a small interface the bot implements."""

from __future__ import annotations

from typing import Any, Protocol


class Notifier(Protocol):
    async def send(self, telegram_id: int, locale: str | None, key: str, **params: Any) -> bool:
        """Send a localised message; False when it could not be delivered (blocked bot, unknown chat)."""
        ...
