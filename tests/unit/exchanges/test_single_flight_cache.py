from __future__ import annotations

import asyncio

import pytest

from services.exchanges.cache import SingleFlightCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_callers_share_one_fetch_and_entries_expire() -> None:
    clock = Clock()
    cache = SingleFlightCache(0.3, clock=clock)
    calls = 0

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return calls

    results = await asyncio.gather(*(cache.get("book", fetch) for _ in range(20)))
    assert results == [1] * 20 and calls == 1
    clock.now = 0.2
    assert await cache.get("book", fetch) == 1
    clock.now = 0.6
    assert await cache.get("book", fetch) == 2
    assert await cache.get("other", fetch) == 3


async def test_failures_are_shared_but_not_cached() -> None:
    cache = SingleFlightCache(10)
    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise RuntimeError("down")

    outcomes = await asyncio.gather(*(cache.get("k", failing) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes) and calls == 1
    with pytest.raises(RuntimeError):
        await cache.get("k", failing)
    assert calls == 2


async def test_zero_ttl_disables_caching() -> None:
    cache = SingleFlightCache(0)
    values = iter(range(10))

    async def fetch() -> int:
        return next(values)

    assert [await cache.get("k", fetch) for _ in range(3)] == [0, 1, 2]
