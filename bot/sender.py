"""One paced outbound sender for every message the bot sends outside a request.

Telegram's limits (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
about 30 messages a second per bot, about one a second per chat (short bursts tolerated) and 20 a minute
per group or channel; above them the API answers 429 with ``retry_after``.

* `Pacer` is the pure scheduling core (no I/O, the caller passes the time): one FIFO per chat, a timer
  heap of chats held by their own limits, a heap of chats free to send ordered by their oldest message,
  and the limits:

  - per bot: at most ``per_bot`` requests in any ``window`` seconds, a sliding log anchored on when each
    request *finished*, so the guarantee holds for the moment Telegram received it, whatever the latency
    and however many requests are in flight;
  - per chat: a token bucket (GCRA) of one message per ``chat_interval`` with ``chat_burst`` tokens,
    charged when the request finished; one request in flight per chat, so a chat's messages keep their order;
  - per group or channel (negative ids, ``@username``): also at most ``per_group`` in ``group_window``.

  The next message sent is the oldest one whose chat may send now: a chat that must wait never holds
  up the others.

* `Sender` runs the pacer against aiogram's `Bot`: one scheduler task launches each due message as its own
  task; 429 pauses the chat (and the whole bot when the limit hit is the bot's, which also lowers the bot
  limit for a while) for ``retry_after`` and the message is retried, never lost; blocked or unknown chats
  are dropped and counted; network errors and 5xx are retried with exponential backoff a bounded number
  of times.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import structlog
from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import SendMessage, SendPhoto, TelegramMethod
from aiogram.types import InputFile

if TYPE_CHECKING:
    from bot.metrics import Metrics

log = structlog.get_logger(__name__)

ChatId = int | str
T = TypeVar("T")
_NEVER = -math.inf
# Bad Request descriptions meaning the chat itself cannot be written to (the message is not at fault).
_UNDELIVERABLE_BAD_REQUESTS = (
    "chat not found",
    "user not found",
    "peer_id_invalid",
    "have no rights to send a message",
    "not enough rights to send",
    "chat_write_forbidden",
    "group chat was deactivated",
    "bot was kicked",
)


def is_group(chat_id: ChatId) -> bool:
    """Groups, supergroups and channels have negative ids (or are named by ``@username``)."""
    return isinstance(chat_id, str) or chat_id < 0


# ------------------------------------------------------------------------------------------------ limits


@dataclass(frozen=True)
class SendLimits:
    """How fast the sender may go. The defaults are Telegram's published limits."""

    per_bot: int = 30
    window: float = 1.0
    chat_interval: float = 1.0
    chat_burst: int = 3
    per_group: int = 20
    group_window: float = 60.0

    def __post_init__(self) -> None:
        if min(self.per_bot, self.chat_burst, self.per_group) < 1:
            raise ValueError("limits must allow at least one message")
        if min(self.window, self.chat_interval, self.group_window) <= 0:
            raise ValueError("limit periods must be positive")

    def scaled(self, factor: float) -> SendLimits:
        """The same limits on a clock running ``1 / factor`` times faster (periods multiplied by factor)."""
        return replace(
            self,
            window=self.window * factor,
            chat_interval=self.chat_interval * factor,
            group_window=self.group_window * factor,
        )


class SlidingWindow:
    """At most ``limit`` requests within any ``period`` seconds, requests counted from start to finish.

    A request is *pending* from `begin` until `end`, then remembered with its finishing time. A new one may
    start only while fewer than ``limit`` are pending or finished less than ``period`` ago. Any ``limit + 1``
    requests then reach the server at least ``period`` apart (the last one started after the first had
    finished, plus the period), whatever the latency.
    """

    __slots__ = ("done", "limit", "pending", "period")

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self.pending = 0
        self.done: deque[float] = deque()

    def _prune(self, now: float) -> None:
        done = self.done
        while done and done[0] + self.period <= now:
            done.popleft()

    def next_allowed(self, now: float) -> float | None:
        """When the next request may start: ``now`` or later; None until a pending one finishes."""
        self._prune(now)
        active = self.pending + len(self.done)
        if active < self.limit:
            return now
        if self.pending >= self.limit:
            return None
        return self.done[active - self.limit] + self.period

    def begin(self) -> None:
        self.pending += 1

    def end(self, now: float) -> None:
        self.pending -= 1
        self.done.append(now)

    def recent(self, now: float) -> int:
        """Requests pending or finished within the period."""
        self._prune(now)
        return self.pending + len(self.done)


# ------------------------------------------------------------------------------------------------ pacer


@dataclass(eq=False)
class _Chat(Generic[T]):
    chat_id: ChatId
    interval: float
    burst: int
    group: SlidingWindow | None
    queue: deque[tuple[int, T]] = field(default_factory=deque)  # (sequence number, message)
    tat: float = _NEVER  # GCRA's theoretical arrival time
    paused_until: float = _NEVER
    last_end: float = _NEVER
    in_flight: bool = False
    scheduled: bool = False

    def ready_at(self, now: float) -> float:
        """The earliest moment this chat may send (never earlier than now)."""
        at = max(now, self.paused_until, self.tat - (self.burst - 1) * self.interval)
        if self.group is not None:
            allowed = self.group.next_allowed(at)
            at = max(at, allowed if allowed is not None else math.inf)
        return at

    def charge(self, now: float) -> None:
        """Count a finished request against the chat's limits."""
        self.tat = max(self.tat, now) + self.interval
        self.last_end = now
        if self.group is not None:
            self.group.end(now)

    def cold(self, now: float) -> bool:
        return (
            not self.queue
            and not self.in_flight
            and self.tat <= now
            and self.paused_until <= now
            and (self.group is None or self.group.recent(now) == 0)
        )


@dataclass(frozen=True, eq=False)
class Ticket(Generic[T]):
    """A message handed out for sending; give it back to the pacer exactly once."""

    chat_id: ChatId
    item: T
    started: float


class Pacer(Generic[T]):
    """Decides which queued message may go next and when (see the module docstring).

    Pure: no I/O and no clock of its own; every call gets the current time.
    """

    SWEEP_EVERY = 5.0
    RECOVER_AFTER = 10  # windows without a bot-wide 429 before the bot limit creeps back up

    def __init__(self, limits: SendLimits | None = None) -> None:
        self.limits = limits or SendLimits()
        self.bot = SlidingWindow(self.limits.per_bot, self.limits.window)
        self.paused_until = _NEVER
        self._chats: dict[ChatId, _Chat[T]] = {}
        self._waiting: list[tuple[float, int, ChatId]] = []  # chats held by their own limits, by when
        self._ready: list[tuple[int, ChatId]] = []  # chats free to send, by their oldest message
        self._seq = 0
        self._queued = 0
        self._in_flight = 0
        self._floods: deque[tuple[float, ChatId]] = deque()
        self._next_sweep = _NEVER
        self._next_raise = _NEVER

    # -- state

    @property
    def queued(self) -> int:
        """Messages waiting (not in flight)."""
        return self._queued

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def bot_limit(self) -> int:
        """The bot-wide limit in force: ``per_bot``, or less after 429s."""
        return self.bot.limit

    @property
    def chats(self) -> int:
        """Chats the pacer keeps state for (waiting, sending, or still inside a limit window)."""
        return len(self._chats)

    def chat_queue(self, chat_id: ChatId) -> list[T]:
        chat = self._chats.get(chat_id)
        return [item for _, item in chat.queue] if chat is not None else []

    # -- queueing and handing out

    def push(self, chat_id: ChatId, item: T, now: float) -> None:
        chat = self._chats.get(chat_id)
        if chat is None:
            limits = self.limits
            group = SlidingWindow(limits.per_group, limits.group_window) if is_group(chat_id) else None
            chat = _Chat(chat_id, self.limits.chat_interval, self.limits.chat_burst, group)
            self._chats[chat_id] = chat
        self._seq += 1
        chat.queue.append((self._seq, item))
        self._queued += 1
        self._schedule(chat, now)

    def poll(self, now: float) -> tuple[Ticket[T] | None, float | None]:
        """A message to send now, or (None, when to look again); (None, None): wait for a push or a finish.

        The message chosen is the oldest one whose chat may send now: a chat held by its own limit never
        holds up the others, and a chat with many messages is not sent to the back of the line each time.
        """
        if now >= self._next_sweep:
            self._sweep(now)
        if now < self.paused_until:
            return None, self.paused_until
        if self.bot.limit < self.limits.per_bot and now >= self._next_raise:
            self.bot.limit += 1
            self._next_raise = now + self.limits.window
        waiting, ready = self._waiting, self._ready
        while waiting and waiting[0][0] <= now:
            _, tie, chat_id = heapq.heappop(waiting)
            chat = self._chats[chat_id]
            at = chat.ready_at(now)
            if at > now:
                heapq.heappush(waiting, (at, tie, chat_id))
            else:
                heapq.heappush(ready, (chat.queue[0][0], chat_id))
        if not ready:
            return None, waiting[0][0] if waiting else None
        allowed = self.bot.next_allowed(now)
        if allowed is None or allowed > now:
            return None, allowed
        _, chat_id = heapq.heappop(ready)
        chat = self._chats[chat_id]
        chat.scheduled = False
        chat.in_flight = True
        self._queued -= 1
        self._in_flight += 1
        self.bot.begin()
        if chat.group is not None:
            chat.group.begin()
        return Ticket(chat_id, chat.queue[0][1], now), None

    # -- giving tickets back

    def done(self, ticket: Ticket[T], now: float) -> None:
        """The message is finished with (sent, or failed for good): the chat moves on to its next one."""
        chat = self._finish(ticket, now)
        chat.queue.popleft()
        self._schedule(chat, now)

    def retry(self, ticket: Ticket[T], now: float, not_before: float) -> None:
        """Send the same message again, not before ``not_before``; the chat's later ones wait behind it."""
        chat = self._finish(ticket, now)
        chat.paused_until = max(chat.paused_until, not_before)
        self._queued += 1
        self._schedule(chat, now)

    def flood(self, ticket: Ticket[T], now: float, retry_after: float) -> bool:
        """A 429: retry the message after ``retry_after``. Returns True when the whole bot pauses.

        Telegram does not say which limit was hit. It is the chat's own only if the chat had sent something
        recently enough for that to be possible (and no other chat got a 429 in the meantime); otherwise it
        is the bot's, and every chat waits. A chat that hit its own limit loses its burst allowance; a
        bot-wide 429 lowers the bot limit by a quarter, which then grows back by one a window once no
        bot-wide 429 was seen for ``RECOVER_AFTER`` windows (Telegram's real limit may be lower than ours).
        """
        chat = self._chats[ticket.chat_id]
        horizon = now - max(self.limits.window, self.limits.chat_interval)
        while self._floods and self._floods[0][0] < horizon:
            self._floods.popleft()
        others = any(chat_id != ticket.chat_id for _, chat_id in self._floods)
        self._floods.append((now, ticket.chat_id))
        if chat.group is not None:
            # this request is still pending in the group window: "recent" counts it too
            hot = chat.group.recent(now) > 1 or chat.last_end > ticket.started - chat.interval
        else:
            hot = chat.last_end > ticket.started - chat.interval
        whole_bot = others or not hot
        until = now + retry_after
        if whole_bot:
            if now >= self.paused_until:  # once per pause, not for every request of the same wave
                self.bot.limit = max(1, self.bot.limit * 3 // 4)
            self.paused_until = max(self.paused_until, until)
            self._next_raise = until + self.RECOVER_AFTER * self.limits.window
        else:
            chat.burst = 1
        self.retry(ticket, now, until)
        return whole_bot

    def drop_chat(self, ticket: Ticket[T], now: float) -> list[T]:
        """The chat cannot be written to: this message and every other one queued for it are dropped."""
        chat = self._finish(ticket, now)
        dropped = [item for _, item in chat.queue]
        self._queued -= len(dropped) - 1
        chat.queue.clear()
        return dropped

    def drain(self) -> list[T]:
        """Remove every waiting message (not those in flight) and return them."""
        drained: list[tuple[int, T]] = []
        for chat in self._chats.values():
            skip = 1 if chat.in_flight else 0
            while len(chat.queue) > skip:
                drained.append(chat.queue.pop())
            chat.scheduled = False
        self._waiting.clear()
        self._ready.clear()
        self._queued = 0
        return [item for _, item in sorted(drained, key=lambda pair: pair[0])]

    # -- internals

    def _finish(self, ticket: Ticket[T], now: float) -> _Chat[T]:
        chat = self._chats[ticket.chat_id]
        if not chat.in_flight:
            raise RuntimeError(f"no message in flight for chat {ticket.chat_id!r}")
        chat.in_flight = False
        self._in_flight -= 1
        self.bot.end(now)
        chat.charge(now)
        return chat

    def _schedule(self, chat: _Chat[T], now: float) -> None:
        if chat.queue and not chat.in_flight and not chat.scheduled:
            chat.scheduled = True
            at = chat.ready_at(now)
            if at > now:
                heapq.heappush(self._waiting, (at, chat.queue[0][0], chat.chat_id))
            else:
                heapq.heappush(self._ready, (chat.queue[0][0], chat.chat_id))

    def _sweep(self, now: float) -> None:
        """Forget chats with nothing queued and no limit still running: their state equals a fresh one."""
        self._next_sweep = now + self.SWEEP_EVERY
        for chat_id in [chat_id for chat_id, chat in self._chats.items() if chat.cold(now)]:
            del self._chats[chat_id]


# ------------------------------------------------------------------------------------------------ sender


class DeliveryStatus(StrEnum):
    SENT = "sent"
    UNDELIVERABLE = "undeliverable"  # blocked by the user, chat not found, kicked: dropped
    FAILED = "failed"  # refused (bad request) or still failing after the retries
    CANCELLED = "cancelled"  # the sender stopped before it could be sent
    REJECTED = "rejected"  # not accepted: the sender is stopped or its queue is full


@dataclass(frozen=True)
class Delivery:
    """The outcome of one outbound message."""

    status: DeliveryStatus
    chat_id: ChatId
    result: Any = None  # what the method returned (a Message for send_text / send_photo)
    error: str | None = None
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.status is DeliveryStatus.SENT


@dataclass
class SenderStats:
    accepted: int = 0
    sent: int = 0
    undeliverable: int = 0
    failed: int = 0
    cancelled: int = 0
    rejected: int = 0
    flood_waits: int = 0  # 429 answers received
    global_pauses: int = 0  # of which paused the whole bot
    retries: int = 0  # network errors and 5xx retried
    undeliverable_chats: set[ChatId] = field(default_factory=set)  # the latest ones, at most MAX_KEPT

    MAX_KEPT: ClassVar[int] = 10_000

    def note_undeliverable(self, chat_id: ChatId) -> None:
        if len(self.undeliverable_chats) >= self.MAX_KEPT:
            self.undeliverable_chats.pop()
        self.undeliverable_chats.add(chat_id)


@dataclass(eq=False)
class _Outgoing:
    method: TelegramMethod[Any]
    future: asyncio.Future[Delivery]
    queued_at: float
    attempts: int = 0
    transient_failures: int = 0


class Sender:
    """The outbound queue: `send_text` / `send_photo` / `send` enqueue and return an awaitable `Delivery`."""

    def __init__(
        self,
        bot: Bot,
        *,
        limits: SendLimits | None = None,
        metrics: Metrics | None = None,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_queue: int = 100_000,
        request_timeout: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot = bot
        self.limits = limits or SendLimits()
        self.metrics = metrics
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_queue = max_queue
        self.request_timeout = request_timeout
        self.stats = SenderStats()
        self._clock = clock
        self._pacer: Pacer[_Outgoing] = Pacer(self.limits)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._outstanding = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._closed = False

    # -- public API

    def send_text(self, chat_id: ChatId, text: str, **kwargs: Any) -> asyncio.Future[Delivery]:
        """Queue a `sendMessage`; keyword arguments are the method's (reply_markup, parse_mode, ...)."""
        return self.send(SendMessage(chat_id=chat_id, text=text, **kwargs))

    def send_photo(self, chat_id: ChatId, photo: InputFile | str, **kwargs: Any) -> asyncio.Future[Delivery]:
        """Queue a `sendPhoto` (an upload or a file_id / URL); keyword arguments are the method's."""
        return self.send(SendPhoto(chat_id=chat_id, photo=photo, **kwargs))

    def send(self, method: TelegramMethod[Any]) -> asyncio.Future[Delivery]:
        """Queue any method that sends to one chat (it must have ``chat_id``). Await the future for the
        outcome, or ignore it: it never raises."""
        chat_id = getattr(method, "chat_id", None)
        if not isinstance(chat_id, int | str):
            raise ValueError(f"{type(method).__name__} has no chat_id: the sender only sends to chats")
        future: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()
        if self._closed or self._outstanding >= self.max_queue:
            reason = "stopped" if self._closed else "queue full"
            log.warning("sender.rejected", chat_id=chat_id, reason=reason)
            self.stats.rejected += 1
            self._count(DeliveryStatus.REJECTED)
            future.set_result(Delivery(DeliveryStatus.REJECTED, chat_id, error=reason))
            return future
        self._outstanding += 1
        self._idle.clear()
        self.stats.accepted += 1
        self._pacer.push(chat_id, _Outgoing(method, future, self._clock()), self._clock())
        self._update_gauges()
        self._wake.set()
        return future

    @property
    def pending(self) -> int:
        """Messages accepted and not finished yet (waiting or in flight)."""
        return self._outstanding

    @property
    def bot_limit(self) -> int:
        """Messages per window the sender allows itself now (lower than configured after bot-wide 429s)."""
        return self._pacer.bot_limit

    @property
    def running(self) -> bool:
        return self._runner is not None and not self._runner.done()

    def start(self) -> None:
        if self.running:
            return
        self._closed = False
        self._runner = asyncio.get_running_loop().create_task(self._run(), name="outbound-sender")

    async def join(self) -> None:
        """Wait until every accepted message is finished with (sent, dropped or failed)."""
        await self._idle.wait()

    async def stop(self, drain_timeout: float = 10.0) -> None:
        """Stop accepting, send what can be sent within ``drain_timeout`` seconds, cancel the rest."""
        self._closed = True
        if self.running and self._outstanding:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain_timeout):
                    await self.join()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # a crash was logged already
                await self._runner
            self._runner = None
        in_flight = list(self._tasks)
        for task in in_flight:
            task.cancel()
        for task in in_flight:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        leftover = self._pacer.drain()
        for item in leftover:
            self._resolve(item, DeliveryStatus.CANCELLED, error="sender stopped")
        if leftover:
            log.warning("sender.stopped_with_unsent", cancelled=len(leftover))
        log.info("sender.stopped", sent=self.stats.sent, cancelled=self.stats.cancelled)

    # -- the scheduler

    async def _run(self) -> None:
        try:
            await self._schedule_forever()
        except Exception:
            log.exception("sender.crashed", pending=self._outstanding)
            raise

    async def _schedule_forever(self) -> None:
        while True:
            self._wake.clear()
            now = self._clock()
            ticket, wake_at = self._pacer.poll(now)
            if ticket is not None:
                task = asyncio.get_running_loop().create_task(self._deliver(ticket))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                continue
            delay = None if wake_at is None else max(0.0, wake_at - now)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _deliver(self, ticket: Ticket[_Outgoing]) -> None:
        item = ticket.item
        item.attempts += 1
        pacer = self._pacer
        try:
            result = await self.bot(item.method, request_timeout=self.request_timeout)
        except asyncio.CancelledError:
            pacer.retry(ticket, self._clock(), self._clock())
            raise
        except TelegramRetryAfter as exc:
            whole_bot = pacer.flood(ticket, self._clock(), exc.retry_after)
            self.stats.flood_waits += 1
            scope = "bot" if whole_bot else "chat"
            if whole_bot:
                self.stats.global_pauses += 1
            if self.metrics is not None:
                self.metrics.outbound_flood_waits.labels(scope).inc()
            log.warning(
                "sender.flood_wait",
                chat_id=ticket.chat_id,
                retry_after=exc.retry_after,
                scope=scope,
                bot_limit=pacer.bot_limit,
            )
        except TelegramForbiddenError as exc:
            self._undeliverable(ticket, exc)
        except TelegramBadRequest as exc:
            if any(marker in exc.message.lower() for marker in _UNDELIVERABLE_BAD_REQUESTS):
                self._undeliverable(ticket, exc)
            else:
                self._failed(ticket, exc)
        except (TelegramMigrateToChat, TelegramNotFound, TelegramEntityTooLarge) as exc:
            self._failed(ticket, exc)
        except (TelegramNetworkError, TelegramServerError, ClientDecodeError) as exc:
            item.transient_failures += 1
            if item.transient_failures > self.max_retries:
                self._failed(ticket, exc)
            else:
                now = self._clock()
                delay = self._backoff(item.transient_failures)
                pacer.retry(ticket, now, now + delay)
                self.stats.retries += 1
                if self.metrics is not None:
                    self.metrics.outbound_retries.labels(type(exc).__name__).inc()
                log.info(
                    "sender.retry",
                    chat_id=ticket.chat_id,
                    error=type(exc).__name__,
                    attempt=item.attempts,
                    delay=round(delay, 3),
                )
        except Exception as exc:
            log.exception("sender.error", chat_id=ticket.chat_id)
            self._failed(ticket, exc)
        else:
            pacer.done(ticket, self._clock())
            self._resolve(item, DeliveryStatus.SENT, result=result)
        finally:
            self._update_gauges()
            self._wake.set()

    def _backoff(self, failures: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (failures - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _undeliverable(self, ticket: Ticket[_Outgoing], exc: Exception) -> None:
        dropped = self._pacer.drop_chat(ticket, self._clock())
        error = _describe(exc)
        self.stats.note_undeliverable(ticket.chat_id)
        log.info("sender.undeliverable", chat_id=ticket.chat_id, error=error, dropped=len(dropped))
        for item in dropped:
            self._resolve(item, DeliveryStatus.UNDELIVERABLE, error=error)

    def _failed(self, ticket: Ticket[_Outgoing], exc: Exception) -> None:
        self._pacer.done(ticket, self._clock())
        error = _describe(exc)
        log.warning(
            "sender.failed",
            chat_id=ticket.chat_id,
            method=type(ticket.item.method).__name__,
            error=error,
            attempts=ticket.item.attempts,
        )
        self._resolve(ticket.item, DeliveryStatus.FAILED, error=error)

    def _resolve(
        self, item: _Outgoing, status: DeliveryStatus, *, result: Any = None, error: str | None = None
    ) -> None:
        if item.future.done():
            return
        chat_id = getattr(item.method, "chat_id", "")
        item.future.set_result(Delivery(status, chat_id, result, error, item.attempts))
        setattr(self.stats, status.value, getattr(self.stats, status.value) + 1)
        self._count(status)
        if status is DeliveryStatus.SENT and self.metrics is not None:
            self.metrics.outbound_latency.observe(self._clock() - item.queued_at)
        self._outstanding -= 1
        if self._outstanding == 0:
            self._idle.set()

    def _count(self, status: DeliveryStatus) -> None:
        if self.metrics is not None:
            self.metrics.outbound_messages.labels(status.value).inc()

    def _update_gauges(self) -> None:
        if self.metrics is not None:
            self.metrics.outbound_queued.set(self._pacer.queued)
            self.metrics.outbound_in_flight.set(self._pacer.in_flight)


def _describe(exc: Exception) -> str:
    message = getattr(exc, "message", None)
    return f"{type(exc).__name__}: {message if isinstance(message, str) else exc}"
