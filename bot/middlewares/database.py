"""One AsyncSession per update, committed once, together with the inbox row that marks it handled.

The session connects on first use. When the handler never used it there is nothing to commit with the
inbox row, and the claim is closed by a single statement of its own instead."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction, async_sessionmaker

from db.repositories import InboxClaim, InboxRepository
from db.repositories.inbox import InboxWriter
from db.types import utcnow
from services.errors import AppError
from services.users import KnownUserRow

log = structlog.get_logger(__name__)

# the workflow-data key of the savepoint the user middleware sets after writing the user's row
USER_SAVEPOINT = "user_savepoint"


@dataclass(slots=True)
class InboxTicket:
    """Handed to the dispatcher with an update from the inbox; set when the claim has been closed."""

    claim: InboxClaim
    writer: InboxWriter | None = None
    # the sender's user row, read when the update was stored: (tenant id, Telegram id) and the row
    user_key: tuple[int, int] | None = None
    user: KnownUserRow | None = None
    # the chat's next update, when it is waiting for this one: it wants its sender's row read afterwards
    successor: InboxTicket | None = None
    finished: bool = False
    superseded: bool = False
    failed: bool = False


def _pending_work(session: AsyncSession) -> bool:
    """Whether the handler left anything in the session for the commit (a transaction or objects)."""
    return session.in_transaction() or bool(session.new) or bool(session.deleted) or bool(session.dirty)


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
        session = self.session_factory()
        data["session"] = session
        try:
            result = await handler(event, data)
            if not _pending_work(session):
                if ticket is not None:
                    await self._finish_alone(ticket)
                return result
            if ticket is not None:
                closed = await InboxRepository(session).finish(ticket.claim, now=utcnow())
                if not closed:
                    # Another process took this update over after our lease ran out: its run counts.
                    await session.rollback()
                    self._superseded(ticket)
                    return result
            await session.commit()
            if ticket is not None:
                ticket.finished = True
            return result
        except Exception as exc:
            if isinstance(exc, AppError) and await self._keep_user_write(session, data, ticket, exc):
                raise
            await session.rollback()
            if ticket is not None and not ticket.finished:
                expected = isinstance(exc, AppError)
                await self._close(ticket, error=type(exc).__name__, failed=not expected)
            raise
        finally:
            if session.in_transaction() or session.identity_map or session.new:
                await session.close()

    async def _keep_user_write(
        self, session: AsyncSession, data: dict[str, Any], ticket: InboxTicket | None, exc: AppError
    ) -> bool:
        """A refused update: roll the handler's writes back to the user middleware's savepoint and commit
        the user's row with the inbox row. False when there is no such savepoint (nothing to keep, or the
        handler committed or rolled back itself), or it could not be used: the caller rolls back all."""
        savepoint: AsyncSessionTransaction | None = data.get(USER_SAVEPOINT)
        if savepoint is None or not savepoint.is_active:
            return False
        try:
            await savepoint.rollback()
            if ticket is not None and not ticket.finished:
                closed = await InboxRepository(session).finish(
                    ticket.claim, now=utcnow(), error=type(exc).__name__
                )
                if not closed:
                    await session.rollback()
                    self._superseded(ticket)
                    return True
            await session.commit()
        except Exception:
            log.exception("user.keep_failed")
            return False
        if ticket is not None:
            ticket.finished = True
        return True

    async def _finish_alone(self, ticket: InboxTicket) -> None:
        """The handler wrote nothing through the session: close the claim on its own."""
        successor = ticket.successor
        if ticket.writer is not None and ticket.writer.native and successor is not None:
            wanted = successor.user_key if successor.user is None else None
            if wanted is not None:
                # the row as it is after this update: the next one needs no lookup of its own
                closed, row = await ticket.writer.finish_and_read_user(ticket.claim, wanted, now=utcnow())
                successor.user = KnownUserRow(row)
            else:
                closed = await ticket.writer.finish(ticket.claim, now=utcnow())
        elif ticket.writer is not None:
            closed = await ticket.writer.finish(ticket.claim, now=utcnow())
        else:
            async with self.session_factory() as session:
                closed = await InboxRepository(session).finish(ticket.claim, now=utcnow())
                await session.commit()
        if closed:
            ticket.finished = True
        else:
            self._superseded(ticket)

    @staticmethod
    def _superseded(ticket: InboxTicket) -> None:
        ticket.finished = ticket.superseded = True
        log.warning("inbox.superseded", update_id=ticket.claim.update_id)

    async def _close(self, ticket: InboxTicket, *, error: str, failed: bool) -> None:
        if ticket.writer is not None:
            await ticket.writer.finish(ticket.claim, now=utcnow(), error=error, failed=failed)
        else:
            async with self.session_factory() as session:
                await InboxRepository(session).finish(ticket.claim, now=utcnow(), error=error, failed=failed)
                await session.commit()
        ticket.finished = True
        ticket.failed = failed
