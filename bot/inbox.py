"""The inbox processor: every update is stored before it is acknowledged, then handled exactly once.

* `receive()` validates an update, stores it (deduplicated by bot and update_id) already claimed by this
  process, commits, and only then returns, so the webhook answers 200 / the poller confirms the offset
  after the update is safe. A redelivered update is recognised and ignored.
* Each stored update is fed to the dispatcher in a task; updates of one chat run in order, different chats
  run concurrently (bounded).
* The sender's user row is read in a round trip the update costs anyway, so the user middleware needs no
  lookup of its own: with the store, when no earlier update of that chat is in flight here (the row cannot
  predate its writes), or else with the closing statement of the chat's previous update, right before
  this one is handled.
* The sweeper picks up updates nobody holds: left over by a crash (their lease ran out) or released at
  shutdown. While a handler runs, its update's lease is renewed every third of the lease, so a long
  handler (a slow exchange, a long voice note) is not taken over by another process. The handler's
  database writes commit together with the inbox row, so a retried update never applies them twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from aiogram import Bot, Dispatcher
from aiogram.types import Update
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.metrics import Metrics
from bot.middlewares.database import InboxTicket
from bot.settings import InboxSettings
from db.repositories import InboxClaim, InboxRepository
from db.repositories.inbox import InboxWriter
from db.types import utcnow
from services.tenants import TenantInfo
from services.users import KnownUserRow

log = structlog.get_logger(__name__)


class InvalidUpdate(ValueError):
    """The body is not a Telegram update."""


def chat_key(payload: Mapping[str, Any]) -> int | None:
    """The chat (or user) an update belongs to, to keep that chat's updates in order."""
    for field in ("message", "edited_message", "channel_post", "edited_channel_post", "business_message"):
        inner = payload.get(field)
        if isinstance(inner, dict) and isinstance(inner.get("chat"), dict):
            chat_id = inner["chat"].get("id")
            return chat_id if isinstance(chat_id, int) else None
    for inner in payload.values():
        if isinstance(inner, dict) and isinstance(inner.get("from"), dict):
            user_id = inner["from"].get("id")
            return user_id if isinstance(user_id, int) else None
    return None


def sender_id(payload: Mapping[str, Any]) -> int | None:
    """The human who sent an update (its event's `from`), if it names one."""
    for inner in payload.values():
        if isinstance(inner, dict):
            sender = inner.get("from")
            if isinstance(sender, dict) and not sender.get("is_bot"):
                user_id = sender.get("id")
                return user_id if isinstance(user_id, int) else None
    return None


class _KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: int | None) -> Any:
        if key is None:
            yield
            return
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


@dataclass(slots=True)
class _Chat:
    in_flight: int = 0
    last: InboxTicket | None = None  # the latest update of the chat given to a task


class InboxProcessor:
    def __init__(
        self,
        *,
        bot: Bot,
        dispatcher: Dispatcher,
        session_factory: async_sessionmaker[AsyncSession],
        settings: InboxSettings,
        metrics: Metrics,
    ) -> None:
        self.bot = bot
        self.dispatcher = dispatcher
        self.session_factory = session_factory
        self.settings = settings
        self.metrics = metrics
        self.lease = timedelta(seconds=settings.lease_seconds)
        self._engine: AsyncEngine = session_factory.kw["bind"]
        self.writer = InboxWriter(self._engine)
        self._chats: dict[int, _Chat] = {}  # chats with updates between receipt and the end of handling
        self._semaphore = asyncio.Semaphore(settings.concurrency)
        self._locks = _KeyedLocks()
        self._tasks: dict[int, tuple[asyncio.Task[None], InboxClaim]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def bot_id(self) -> int:
        return self.bot.id

    def parse(self, payload: Any) -> Update:
        if not isinstance(payload, dict) or not isinstance(payload.get("update_id"), int):
            raise InvalidUpdate("not an update object")
        try:
            return Update.model_validate(payload, context={"bot": self.bot})
        except PydanticValidationError as exc:
            raise InvalidUpdate(f"{exc.error_count()} validation errors") from None

    async def receive(self, payload: Any, *, source: str) -> bool:
        """Store one update; True when it is new (and now being handled), False for a redelivery."""
        update = self.parse(payload)
        key = chat_key(payload)
        alone = self._enter(key)
        user = self._user_to_read(payload)
        try:
            stored = await self.writer.store(
                self.bot_id,
                update.update_id,
                payload,
                now=utcnow(),
                lease=self.lease,
                user=user if alone else None,
            )
        except BaseException:
            self._leave(key)
            raise
        if stored is None:
            self._leave(key)
            self.metrics.updates_duplicate.labels(source).inc()
            return False
        self.metrics.updates_received.labels(source).inc()
        ticket = InboxTicket(stored.claim, writer=self.writer, user_key=user)
        if user is not None and stored.user_looked_up:
            ticket.user = KnownUserRow(stored.user_row)
        self._spawn(stored.claim, update, time.monotonic(), key, ticket)
        return True

    def _user_to_read(self, payload: Mapping[str, Any]) -> tuple[int, int] | None:
        tenant = self.dispatcher.workflow_data.get("tenant")
        user_id = sender_id(payload)
        if not isinstance(tenant, TenantInfo) or user_id is None:
            return None
        return tenant.id, user_id

    def _enter(self, key: int | None) -> bool:
        """Count an update of this chat in; True when no other is in flight."""
        if key is None:
            return True
        chat = self._chats.get(key)
        if chat is None:
            chat = self._chats[key] = _Chat()
        chat.in_flight += 1
        return chat.in_flight == 1

    def _leave(self, key: int | None) -> None:
        if key is None:
            return
        chat = self._chats.get(key)
        if chat is not None:
            chat.in_flight -= 1
            if chat.in_flight <= 0:
                del self._chats[key]

    def _spawn(
        self, claim: InboxClaim, update: Update, received: float, key: int | None, ticket: InboxTicket
    ) -> None:
        chat = self._chats.get(key) if key is not None else None
        if chat is not None:
            if chat.last is not None:
                # An update of the chat has a task already: it is handled first, so a row read while
                # storing this one may predate its writes.
                ticket.user = None
                # Tasks take the chat's lock in the order they are created: the previous update is handled
                # right before this one, and its closing statement can read this sender's row.
                chat.last.successor = ticket
            chat.last = ticket
        task = asyncio.create_task(
            self._handle(update, received, key, ticket), name=f"update-{claim.update_id}"
        )
        self._tasks[claim.id] = (task, claim)
        task.add_done_callback(functools.partial(self._forget, claim.id))

    def _forget(self, key: int, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(key, None)

    async def _handle(self, update: Update, received: float, key: int | None, ticket: InboxTicket) -> None:
        claim = ticket.claim
        try:
            async with self._locks.hold(key), self._semaphore:
                status = "done"
                try:
                    await self.dispatcher.feed_update(self.bot, update, inbox_ticket=ticket)
                except Exception:
                    status = "failed"
                    self.metrics.errors.labels("handler").inc()
                    log.exception("update.failed", update_id=claim.update_id)
                if not ticket.finished:
                    await self._close(claim, error=None if status == "done" else "unhandled exception")
                elif ticket.failed:
                    status = "failed"
                elif ticket.superseded:
                    status = "superseded"
                self.metrics.updates_processed.labels(status).inc()
                self.metrics.update_latency.observe(time.monotonic() - received)
        finally:
            self._leave(key)

    async def _close(self, claim: InboxClaim, *, error: str | None) -> None:
        try:
            await self.writer.finish(claim, now=utcnow(), error=error, failed=error is not None)
        except Exception:
            log.exception("inbox.close_failed", update_id=claim.update_id)

    async def sweep_once(self) -> int:
        """Take over updates that nobody holds; returns how many were picked up."""
        now = utcnow()
        async with self.session_factory() as session:
            repo = InboxRepository(session)
            given_up = await repo.give_up_exhausted(
                self.bot_id, max_attempts=self.settings.max_attempts, now=now
            )
            claims = await repo.claim_due(
                self.bot_id,
                now=now,
                lease=self.lease,
                limit=self.settings.concurrency,
                max_attempts=self.settings.max_attempts,
            )
            await session.commit()
        if given_up:
            log.error("inbox.gave_up", count=given_up)
        for claim in claims:
            try:
                update = self.parse(claim.payload)
            except InvalidUpdate:
                await self._close(claim, error="invalid update")
                continue
            log.info("inbox.recovered", update_id=claim.update_id, attempt=claim.attempt)
            key = chat_key(claim.payload)
            self._enter(key)
            self._spawn(claim, update, time.monotonic(), key, InboxTicket(claim, writer=self.writer))
        return len(claims)

    async def _sweep_forever(self) -> None:
        while not self._stopping:
            try:
                await self.sweep_once()
            except Exception:
                self.metrics.errors.labels("inbox_sweep").inc()
                log.exception("inbox.sweep_failed")
            await asyncio.sleep(self.settings.sweep_interval)

    async def renew_once(self) -> int:
        """Extend the leases of the updates this process holds; how many were extended."""
        claims = [claim for _, claim in self._tasks.values()]
        if not claims:
            return 0
        async with self.session_factory() as session:
            renewed = await InboxRepository(session).renew(claims, until=utcnow() + self.lease)
            await session.commit()
        return renewed

    async def _renew_forever(self) -> None:
        # a third of the lease: two renewals can fail before another process may take an update over
        while not self._stopping:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                await self.renew_once()
            except Exception:
                self.metrics.errors.labels("inbox_renew").inc()
                log.exception("inbox.renew_failed")

    def start(self) -> None:
        self._stopping = False
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="inbox-sweeper")
        if self._renewer is None:
            self._renewer = asyncio.create_task(self._renew_forever(), name="inbox-renewer")

    async def idle(self, grace: float = 10.0) -> None:
        """Wait until every update in flight has been handled (tests, benchmarks, shutdown)."""
        deadline = time.monotonic() + grace
        while self._tasks and time.monotonic() < deadline:
            await asyncio.wait([t for t, _ in self._tasks.values()], timeout=deadline - time.monotonic())

    async def stop(self, grace: float = 10.0) -> None:
        self._stopping = True
        for task in (self._sweeper, self._renewer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._sweeper = self._renewer = None
        await self.idle(grace)
        leftovers = list(self._tasks.values())
        for task, _ in leftovers:
            task.cancel()
        for task, claim in leftovers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            with contextlib.suppress(Exception):
                async with self.session_factory() as session:
                    await InboxRepository(session).release(claim)
                    await session.commit()
        await self.writer.close()
