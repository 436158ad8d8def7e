from __future__ import annotations

import pytest
from redis.asyncio import Redis

from services.throttling import RedisRateLimiter

pytestmark = pytest.mark.redis


async def test_bucket_is_shared_between_limiters(redis_url: str) -> None:
    first, second = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        a = RedisRateLimiter(first, rate=0.01, burst=3)
        b = RedisRateLimiter(second, rate=0.01, burst=3)
        results = [await a.allow("42"), await b.allow("42"), await a.allow("42"), await b.allow("42")]
        assert results == [True, True, True, False]
        assert await a.allow("43")
    finally:
        await first.aclose()
        await second.aclose()
