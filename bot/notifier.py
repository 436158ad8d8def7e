"""The Telegram side of `services.notify.Notifier`."""

from __future__ import annotations

from typing import Any

import structlog
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter

from services.i18n import I18n

log = structlog.get_logger(__name__)


class TelegramNotifier:
    def __init__(self, bot: Bot, i18n: I18n) -> None:
        self.bot = bot
        self.i18n = i18n

    async def send(self, telegram_id: int, locale: str | None, key: str, **params: Any) -> bool:
        text = self.i18n.translator(self.i18n.resolve(locale, locale)).get(key, **params)
        try:
            await self.bot.send_message(telegram_id, text)
        except TelegramRetryAfter as exc:
            log.warning("notify.retry_after", retry_after=exc.retry_after)
            return False
        except (TelegramForbiddenError, TelegramBadRequest) as exc:
            log.info("notify.undeliverable", error=type(exc).__name__)
            return False
        return True
