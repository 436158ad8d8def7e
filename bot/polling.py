"""Long polling that feeds the same inbox as the webhook: an offset is confirmed only after the
updates below it are stored."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.methods import GetUpdates

from bot.inbox import InboxProcessor, InvalidUpdate

log = structlog.get_logger(__name__)


class Poller:
    def __init__(
        self, bot: Bot, inbox: InboxProcessor, allowed_updates: list[str], *, timeout: int = 25
    ) -> None:
        self.bot = bot
        self.inbox = inbox
        self.allowed_updates = allowed_updates
        self.timeout = timeout
        self._task: asyncio.Task[None] | None = None

    async def _poll_forever(self) -> None:
        offset: int | None = None
        backoff = 0.5
        while True:
            try:
                updates = await self.bot(
                    GetUpdates(offset=offset, timeout=self.timeout, allowed_updates=self.allowed_updates),
                    request_timeout=self.timeout + 15,
                )
                for update in updates:
                    payload: dict[str, Any] = update.model_dump(mode="json", exclude_none=True, by_alias=True)
                    try:
                        await self.inbox.receive(payload, source="polling")
                    except InvalidUpdate:
                        log.warning("polling.invalid_update", update_id=update.update_id)
                    offset = update.update_id + 1
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except TelegramRetryAfter as exc:
                await asyncio.sleep(exc.retry_after)
            except (TelegramNetworkError, TelegramServerError) as exc:
                log.warning("polling.network_error", error=type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            except Exception:
                log.exception("polling.failed")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._poll_forever(), name="telegram-polling")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
