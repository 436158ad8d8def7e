"""The fan-out queue: leader actions copied to their followers off the update path.

A handler records the leader's action (durably, once per source) and enqueues its id here; a pool of asyncio
workers owned by the application carries each out with `CopyRelay.run_fan_out`: claim it, copy it to every
follower (bounded per exchange by the `MirrorEngine` lanes, which every worker shares), tell each follower and
post the card through the notifier and publisher (the bot's paced sender keeps Telegram's limits), then tell
the leader. The queue itself is memory: what it held when the process stopped or died is found again in the
database by `sweep` (unfinished actions no live lease holds), run when the application starts and by a
scheduled job. The claim makes a second enqueue of the same action, in this process or another, a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import structlog

from services.copytrading.relay import CopyRelay, RelayReport

log = structlog.get_logger(__name__)


class FanOutQueue:
    def __init__(self, relay: CopyRelay, *, workers: int = 4) -> None:
        self.relay = relay
        self.workers = workers
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._waiting: set[int] = set()  # queued or being worked on here
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.completed = 0  # fan-outs this process carried out
        self.reports: list[RelayReport] = []  # the last few, newest last (for diagnostics and tests)

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not self._closed

    @property
    def pending(self) -> int:
        return len(self._waiting)

    def start(self) -> None:
        """Start the workers and route the relay's fan-outs here."""
        if self._tasks:
            return
        self._closed = False
        self.relay.queue = self
        self._tasks = [
            asyncio.create_task(self._work(), name=f"copy-fan-out-{n}") for n in range(self.workers)
        ]

    def enqueue(self, action_id: int) -> bool:
        if self._closed or action_id in self._waiting:
            return False
        self._waiting.add(action_id)
        self._queue.put_nowait(action_id)
        return True

    async def sweep(
        self, tenant_id: int | None = None, *, older_than: timedelta = timedelta(seconds=30)
    ) -> int:
        """Enqueue the tenant's actions whose fan-out did not finish (a process died, or stopped before its
        queue drained) and that no live lease holds; how many were enqueued. `older_than` leaves alone what
        was just recorded (it is in some process's queue)."""
        if self._closed:
            return 0
        ids = await self.relay.claims.unfinished(tenant_id, older_than=older_than)
        added = sum(self.enqueue(action_id) for action_id in ids)
        if added:
            log.info("copy.fan_out_swept", actions=added)
        return added

    async def join(self) -> None:
        """Wait until everything enqueued so far is carried out."""
        await self._queue.join()

    async def stop(self, drain_timeout: float = 10.0) -> None:
        """Take no more; let the queue drain for up to `drain_timeout` seconds, then cancel the workers.
        An action cut short is given back (its claim released) and swept again by the next process."""
        if self._closed:
            return
        self._closed = True  # the relay still routes here: what comes now waits in the database
        if self._tasks and drain_timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), drain_timeout)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._queue = asyncio.Queue()
        if self._waiting:
            log.info("copy.fan_out_left", actions=len(self._waiting))
        self._waiting.clear()

    async def _work(self) -> None:
        while True:
            action_id = await self._queue.get()
            try:
                report = await self.relay.run_fan_out(action_id)
                if report is not None:
                    self.completed += 1
                    self.reports = [*self.reports[-99:], report]
                    log.info("copy.fan_out_done", action_id=action_id, **report.counts)
            except Exception:
                log.exception("copy.fan_out_crashed", action_id=action_id)
            finally:
                self._waiting.discard(action_id)
                self._queue.task_done()
