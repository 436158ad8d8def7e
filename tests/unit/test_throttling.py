from __future__ import annotations

import pytest

from bot.inbox import chat_key
from services.throttling import MemoryRateLimiter


async def test_bucket_allows_a_burst_then_refuses() -> None:
    limiter = MemoryRateLimiter(rate=0.001, burst=3)
    results = [await limiter.allow("u1") for _ in range(5)]
    assert results == [True, True, True, False, False]
    assert await limiter.allow("u2")


async def test_zero_rate_disables_throttling() -> None:
    limiter = MemoryRateLimiter(rate=0, burst=1)
    assert all([await limiter.allow("u") for _ in range(100)])


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        ({"update_id": 1, "message": {"chat": {"id": 5}, "from": {"id": 7}}}, 5),
        ({"update_id": 1, "callback_query": {"from": {"id": 7}}}, 7),
        ({"update_id": 1, "channel_post": {"chat": {"id": -100}}}, -100),
        ({"update_id": 1}, None),
    ],
)
def test_chat_key(payload: dict[str, object], key: int | None) -> None:
    assert chat_key(payload) == key
