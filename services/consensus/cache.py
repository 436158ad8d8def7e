"""A small text cache for snapshots and LLM answers: Redis when configured (shared by every bot process),
otherwise in-process. Entries live until the candle they belong to is over."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol

from redis.asyncio import Redis


class AnswerCache(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl_seconds: float) -> None: ...


class MemoryAnswerCache:
    """In-process, bounded (least recently stored entries go first)."""

    def __init__(self, max_items: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._items: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self.max_items = max_items
        self._clock = clock

    async def get(self, key: str) -> str | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if expires <= self._clock():
            del self._items[key]
            return None
        return value

    async def set(self, key: str, value: str, ttl_seconds: float) -> None:
        if ttl_seconds <= 0:
            return
        self._items[key] = (self._clock() + ttl_seconds, value)
        self._items.move_to_end(key)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget every answer (a new candle for everyone)."""
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class RedisAnswerCache:
    def __init__(self, redis: Redis, prefix: str = "cu:consensus:") -> None:
        self.redis = redis
        self.prefix = prefix

    async def get(self, key: str) -> str | None:
        raw = await self.redis.get(self.prefix + key)
        if raw is None:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    async def set(self, key: str, value: str, ttl_seconds: float) -> None:
        milliseconds = int(ttl_seconds * 1000)
        if milliseconds > 0:
            await self.redis.set(self.prefix + key, value, px=milliseconds)


def cache_key(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\x00")
    return digest.hexdigest()


class KeyedLocks:
    """One asyncio lock per key while anyone holds or waits for it: concurrent identical requests in this
    process wait for the first one and then read its answer from the cache."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
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


__all__ = ["AnswerCache", "KeyedLocks", "MemoryAnswerCache", "RedisAnswerCache", "cache_key"]
