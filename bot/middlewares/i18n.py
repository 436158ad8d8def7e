"""The user's language: their choice, then Telegram's language_code, then the tenant's default."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from aiogram.types import User as TelegramUser

from services.i18n import I18n
from services.tenants import TenantInfo
from services.users import UserProfile


class I18nMiddleware(BaseMiddleware):
    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        hub: I18n = data["i18n_hub"]
        tenant: TenantInfo = data["tenant"]
        user: UserProfile | None = data.get("user")
        tg_user: TelegramUser | None = data.get("event_from_user")
        locale = hub.resolve(
            user.locale if user else None,
            tg_user.language_code if tg_user else None,
            tenant.default_locale,
        )
        data["locale"] = locale
        data["i18n"] = hub.translator(locale)
        return await handler(event, data)
