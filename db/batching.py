"""Natural batching of small statements: what arrives while a batch is in flight goes in the next one.

A lone item runs at once, in its caller's task, with its single-item statement: no wait is added and
nothing changes at low load. Under load, items queue while the lanes are busy and each lane takes up to
`max_batch` of them in one statement, so a crowd of updates shares round trips (and, on PostgreSQL,
commits: one WAL flush for the whole batch instead of one each).

When a batch fails with an error the server reported about the data (one bad item), its items are run
again one by one so that only the bad one fails; any other error (the connection broke) fails the batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

RunOne = Callable[[Item], Awaitable[Result]]
RunMany = Callable[[Sequence[Item]], Awaitable[Sequence[Result]]]


class NaturalBatcher(Generic[Item, Result]):
    def __init__(
        self,
        run_one: Callable[[Item], Awaitable[Result]],
        run_many: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
        *,
        retry_alone: tuple[type[BaseException], ...] = (),
        lanes: int = 2,
        max_batch: int = 64,
    ) -> None:
        if lanes < 1 or max_batch < 1:
            raise ValueError("lanes and max_batch must be at least 1")
        self._run_one = run_one
        self._run_many = run_many
        self._retry_alone = retry_alone
        self._lanes = lanes
        self._max_batch = max_batch
        self._busy = 0
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flushes: set[asyncio.Task[None]] = set()
        self.batches = 0  # statements run, for the metrics and the tests
        self.items = 0

    async def submit(self, item: Item) -> Result:
        if self._busy < self._lanes and not self._queue:
            self._busy += 1
            self.batches += 1
            self.items += 1
            try:
                return await self._run_one(item)
            finally:
                self._busy -= 1
                self._kick()
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._kick()
        return await future

    def _kick(self) -> None:
        while self._queue and self._busy < self._lanes:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            batch = [(item, future) for item, future in batch if not future.cancelled()]
            if not batch:
                continue
            self._busy += 1
            task = asyncio.create_task(self._flush(batch), name="db-batch")
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _flush(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            self.batches += 1
            self.items += len(batch)
            items = [item for item, _ in batch]
            try:
                if len(items) == 1:
                    results: Sequence[Result] = [await self._run_one(items[0])]
                else:
                    results = await self._run_many(items)
            except self._retry_alone:
                await self._one_by_one(batch)
                return
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                return
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
        finally:
            self._busy -= 1
            self._kick()

    async def _one_by_one(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        for item, future in batch:
            if future.done():
                continue
            try:
                result = await self._run_one(item)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)

    async def drain(self) -> None:
        """Wait for the batches in flight (shutdown)."""
        while self._flushes:
            await asyncio.gather(*list(self._flushes), return_exceptions=True)
