"""Per-user throttling: floods are dropped, with one short warning per window."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, Message, TelegramObject, Update
from aiogram.types import User as TelegramUser

from bot.metrics import Metrics
from services.i18n import I18n
from services.tenants import TenantInfo
from services.throttling import RateLimiter

WARN_EVERY = 10.0


class ThrottlingMiddleware(BaseMiddleware):
    def __init__(self, limiter: RateLimiter, metrics: Metrics) -> None:
        self.limiter = limiter
        self.metrics = metrics
        self._warned: dict[int, float] = {}

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        tg_user: TelegramUser | None = data.get("event_from_user")
        if tg_user is None:
            return await handler(event, data)
        tenant: TenantInfo = data["tenant"]
        if await self.limiter.allow(f"{tenant.id}:{tg_user.id}"):
            return await handler(event, data)
        self.metrics.throttled.inc()
        now = time.monotonic()
        if now - self._warned.get(tg_user.id, 0.0) >= WARN_EVERY:
            self._warned[tg_user.id] = now
            if len(self._warned) > 50_000:
                self._warned.clear()
            hub: I18n = data["i18n_hub"]
            text = hub.translator(hub.resolve(None, tg_user.language_code)).get("throttle.slow_down")
            await self._warn(event, data["bot"], text)
        return None

    @staticmethod
    async def _warn(event: TelegramObject, bot: Bot, text: str) -> None:
        inner = event.event if isinstance(event, Update) else event
        try:
            if isinstance(inner, CallbackQuery):
                await bot.answer_callback_query(inner.id, text=text)
            elif isinstance(inner, Message) and inner.chat.type == "private":
                await bot.send_message(inner.chat.id, text)
        except TelegramAPIError:
            return
