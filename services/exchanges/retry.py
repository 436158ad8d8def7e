"""Retry of transient exchange failures with exponential backoff."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from services.exchanges.errors import ExchangeTemporaryError, ExchangeUnavailable

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]


def backoff_delay(attempt: int, base_delay: float, max_delay: float, jitter: bool) -> float:
    """Delay before retry number ``attempt`` (0 = after the first failure): ``base * 2**attempt`` capped at
    ``max_delay``; with ``jitter`` a uniform draw in [delay/2, delay]."""
    delay = min(max_delay, base_delay * (2**attempt))
    if jitter:
        delay = random.uniform(delay / 2, delay)
    return delay


async def retry(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int = 3,
    base_delay: float = 0.2,
    max_delay: float = 2.0,
    jitter: bool = True,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """Call ``fn`` up to ``attempts`` times. Only :class:`ExchangeTemporaryError` is retried (an open circuit,
    :class:`ExchangeUnavailable`, and every other error propagate at once); the last error is re-raised."""
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    for attempt in range(attempts):
        try:
            return await fn()
        except ExchangeUnavailable:
            raise
        except ExchangeTemporaryError:
            if attempt + 1 >= attempts:
                raise
            await sleep(backoff_delay(attempt, base_delay, max_delay, jitter))
    raise AssertionError("unreachable")  # pragma: no cover
