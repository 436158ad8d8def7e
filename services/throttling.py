"""Per-key rate limiting (token bucket), in process or shared through Redis."""

from __future__ import annotations

import time
from typing import Protocol

from redis.asyncio import Redis


class RateLimiter(Protocol):
    async def allow(self, key: str) -> bool: ...


class MemoryRateLimiter:
    """Token bucket per key; `rate` tokens a second up to `burst`. Rate 0 lets everything through."""

    def __init__(self, rate: float, burst: int, *, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    async def allow(self, key: str) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic()
        tokens, stamp = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - stamp) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        if len(self._buckets) >= self.max_keys and key not in self._buckets:
            self._evict(now)
        self._buckets[key] = (tokens, now)
        return allowed

    def _evict(self, now: float) -> None:
        full_after = self.burst / self.rate
        for key in [k for k, (_, stamp) in self._buckets.items() if now - stamp > full_after]:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            self._buckets.clear()


# GCRA-like token bucket kept in one Redis hash per key, atomic through Lua.
_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 't', 's')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - stamp) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 't', tokens, 's', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return allowed
"""


class RedisRateLimiter:
    """The same bucket shared by every process of the bot."""

    def __init__(self, redis: Redis, rate: float, burst: int, *, prefix: str = "cu:throttle:") -> None:
        self.redis = redis
        self.rate = rate
        self.burst = max(1, burst)
        self.prefix = prefix
        self._script = redis.register_script(_BUCKET_LUA)

    async def allow(self, key: str) -> bool:
        if self.rate <= 0:
            return True
        result = await self._script(keys=[self.prefix + key], args=[self.rate, self.burst, time.time()])
        return bool(int(result))
