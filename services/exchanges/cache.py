"""A short-lived, single-flight cache for public market data.

Many users asking for the same order book or ticker within a fraction of a second share one request:
the first caller fetches, the others await the same result. This keeps a busy bot far below the exchange's
rate limits (and ccxt's throttle) without serving stale prices: entries live `ttl` seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class SingleFlightCache:
    def __init__(
        self, ttl: float, *, clock: Callable[[], float] = time.monotonic, max_entries: int = 4096
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, asyncio.Future[Any]]] = {}  # (fetched at, result)
        self.hits = 0
        self.misses = 0

    async def get(
        self, key: Hashable, fetch: Callable[[], Awaitable[T]], *, max_age: float | None = None
    ) -> T:
        """The cached value if fetched within `max_age` seconds (default: the ttl), else a fetch; callers
        arriving while a fetch is in flight share it. `max_age=0` means "fresh": only an in-flight fetch
        is shared (it started after the caller's decision to ask)."""
        if self.ttl <= 0:
            return await fetch()
        now = self.clock()
        limit = self.ttl if max_age is None else min(max_age, self.ttl)
        entry = self._entries.get(key)
        if entry is not None:
            fetched_at, future = entry
            if not future.done() or (fetched_at >= 0 and now - fetched_at <= limit and max_age != 0):
                self.hits += 1
                return await asyncio.shield(future)
        self.misses += 1
        future = asyncio.get_running_loop().create_future()
        if len(self._entries) >= self.max_entries:
            self._entries = {k: v for k, v in self._entries.items() if now - v[0] <= self.ttl}
        self._entries[key] = (-1.0, future)  # in flight
        try:
            value = await fetch()
        except BaseException as exc:
            self._entries.pop(key, None)  # failures are not cached
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        self._entries[key] = (self.clock(), future)
        future.set_result(value)
        return value
