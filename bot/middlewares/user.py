"""Find or create the Telegram user of each update in the bot's tenant."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from aiogram.types import User as TelegramUser
from sqlalchemy.ext.asyncio import AsyncSession

from bot.middlewares.database import USER_SAVEPOINT, InboxTicket
from services.tenants import TenantInfo
from services.users import KnownUserRow, UserService


class UserMiddleware(BaseMiddleware):
    def __init__(self, admin_ids: frozenset[int]) -> None:
        self.admin_ids = admin_ids

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        tg_user: TelegramUser | None = data.get("event_from_user")
        tenant: TenantInfo = data["tenant"]
        service = UserService(data["session"], self.admin_ids)
        data["user_service"] = service
        data["user"] = None
        if tg_user is not None and not tg_user.is_bot:
            ticket: InboxTicket | None = data.get("inbox_ticket")
            known = None
            if ticket is not None:
                if ticket.user is not None and ticket.user_key == (tenant.id, tg_user.id):
                    known = ticket.user  # read along with storing the update or closing the previous one
                elif ticket.writer is not None and ticket.writer.native:
                    # read now, after this chat's earlier updates: no session needed unless it changes
                    known = KnownUserRow(await ticket.writer.user_row(tenant.id, tg_user.id))
            data["user"] = await service.touch(
                tenant_id=tenant.id,
                telegram_id=tg_user.id,
                username=tg_user.username,
                first_name=tg_user.first_name,
                language_code=tg_user.language_code,
                known=known,
            )
            session: AsyncSession = data["session"]
            if session.in_transaction():
                # The user's row was written (a new user, new details): a savepoint keeps that write apart
                # from the handler's, so a refused update (an AppError) still records its sender.
                data[USER_SAVEPOINT] = await session.begin_nested()
        return await handler(event, data)
