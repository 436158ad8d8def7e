"""Per-update services built on the update's database session (cheap: no I/O at construction)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from sqlalchemy.ext.asyncio import AsyncSession

from services.trading.accounts import AccountService
from services.trading.service import TradingService

TradingFactory = Callable[[AsyncSession], TradingService]
AccountsFactory = Callable[[AsyncSession], AccountService]


class ServicesMiddleware(BaseMiddleware):
    def __init__(self, trading: TradingFactory, accounts: AccountsFactory | None = None) -> None:
        self.trading = trading
        self.accounts = accounts

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        data["trading"] = self.trading(data["session"])
        if self.accounts is not None:
            data["accounts"] = self.accounts(data["session"])
        return await handler(event, data)
