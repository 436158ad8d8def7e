"""The Telegram side of `services.notify.Notifier`."""

from __future__ import annotations

from typing import Any

import structlog
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter

from bot.sender import Sender
from services.i18n import I18n

log = structlog.get_logger(__name__)


class TelegramNotifier:
    """Localises the message and hands it to the paced `Sender`.

    ``send`` waits for the outcome (True once Telegram accepted the message, False when it was dropped or
    refused), unless ``wait_for_delivery`` is False: then it returns True as soon as the message is queued.
    Without a sender (a bot that does not run one) it calls the Bot API directly.
    """

    def __init__(
        self, bot: Bot, i18n: I18n, sender: Sender | None = None, *, wait_for_delivery: bool = True
    ) -> None:
        self.bot = bot
        self.i18n = i18n
        self.sender = sender
        self.wait_for_delivery = wait_for_delivery

    def render(self, locale: str | None, key: str, **params: Any) -> str:
        return self.i18n.translator(self.i18n.resolve(locale, locale)).get(key, **params)

    async def send(self, telegram_id: int, locale: str | None, key: str, **params: Any) -> bool:
        text = self.render(locale, key, **params)
        if self.sender is not None:
            delivery = self.sender.send_text(telegram_id, text)
            if not self.wait_for_delivery:
                return not delivery.done() or delivery.result().ok
            return (await delivery).ok
        try:
            await self.bot.send_message(telegram_id, text)
        except TelegramRetryAfter as exc:
            log.warning("notify.retry_after", retry_after=exc.retry_after)
            return False
        except (TelegramForbiddenError, TelegramBadRequest) as exc:
            log.info("notify.undeliverable", error=type(exc).__name__)
            return False
        return True
