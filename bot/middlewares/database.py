"""One AsyncSession per update, committed once, together with the inbox row that marks it handled."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories import InboxClaim, InboxRepository
from db.types import utcnow
from services.errors import AppError

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class InboxTicket:
    """Handed to the dispatcher with an update from the inbox; set when the claim has been closed."""

    claim: InboxClaim
    finished: bool = False
    superseded: bool = False
    failed: bool = False


class DbSessionMiddleware(BaseMiddleware):
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self.session_factory = session_factory

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        ticket: InboxTicket | None = data.get("inbox_ticket")
        async with self.session_factory() as session:
            data["session"] = session
            try:
                result = await handler(event, data)
                if ticket is not None:
                    closed = await InboxRepository(session).finish(ticket.claim, now=utcnow())
                    if not closed:
                        # Another process took this update over after our lease ran out: its run counts.
                        await session.rollback()
                        ticket.finished = ticket.superseded = True
                        log.warning("inbox.superseded", update_id=ticket.claim.update_id)
                        return result
                await session.commit()
                if ticket is not None:
                    ticket.finished = True
                return result
            except Exception as exc:
                await session.rollback()
                if ticket is not None and not ticket.finished:
                    expected = isinstance(exc, AppError)
                    await self._close(ticket, error=type(exc).__name__, failed=not expected)
                raise

    async def _close(self, ticket: InboxTicket, *, error: str, failed: bool) -> None:
        async with self.session_factory() as session:
            await InboxRepository(session).finish(ticket.claim, now=utcnow(), error=error, failed=failed)
            await session.commit()
        ticket.finished = True
        ticket.failed = failed
