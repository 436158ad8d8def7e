from __future__ import annotations

import asyncio

import pytest

from services.exchanges.breaker import BreakerState, CircuitBreaker
from services.exchanges.errors import (
    ExchangeAuthError,
    ExchangeTemporaryError,
    ExchangeUnavailable,
)

CLOSED, OPEN, HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker("binance", failure_threshold=3, reset_seconds=30, clock=clock)


async def ok() -> str:
    return "ok"


async def fail() -> None:
    raise ExchangeTemporaryError(exchange="binance", reason="unavailable")


async def refuse() -> None:
    raise ExchangeAuthError(exchange="binance")


async def failures(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises(ExchangeTemporaryError):
            await breaker.call(fail)


async def test_opens_after_consecutive_temporary_failures(breaker: CircuitBreaker) -> None:
    await failures(breaker, 2)
    assert breaker.state is CLOSED and breaker.consecutive_failures == 2
    await failures(breaker, 1)
    assert breaker.state is OPEN


async def test_a_success_or_a_refusal_resets_the_count(breaker: CircuitBreaker) -> None:
    await failures(breaker, 2)
    assert await breaker.call(ok) == "ok"
    await failures(breaker, 2)
    with pytest.raises(ExchangeAuthError):  # the exchange answered: not a failure
        await breaker.call(refuse)
    await failures(breaker, 2)
    assert breaker.state is CLOSED and breaker.consecutive_failures == 2


async def test_open_refuses_at_once_without_calling(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await failures(breaker, 3)
    called = False

    async def spy() -> None:
        nonlocal called
        called = True

    clock.now += 10
    with pytest.raises(ExchangeUnavailable) as info:
        await breaker.call(spy)
    assert not called
    assert info.value.params["exchange"] == "binance" and info.value.params["retry_in"] == 20
    assert info.value.message_key == "exchange.unavailable"
    assert breaker.retry_in() == 20 and breaker.stats().rejected == 1


async def test_half_open_probe_success_closes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await failures(breaker, 3)
    clock.now += 30
    assert breaker.state is OPEN  # turns half-open only when a call arrives
    assert await breaker.call(ok) == "ok"
    assert breaker.state is CLOSED and breaker.consecutive_failures == 0


async def test_half_open_probe_failure_reopens(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await failures(breaker, 3)
    clock.now += 31
    await failures(breaker, 1)
    assert breaker.state is OPEN and breaker.retry_in() == 30
    clock.now += 29.5
    with pytest.raises(ExchangeUnavailable) as info:
        await breaker.call(ok)
    assert info.value.retry_in == 1


async def test_a_refusal_as_probe_closes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await failures(breaker, 3)
    clock.now += 30
    with pytest.raises(ExchangeAuthError):
        await breaker.call(refuse)
    assert breaker.state is CLOSED


async def test_only_one_probe_at_a_time(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await failures(breaker, 3)
    clock.now += 30
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "probe"

    probe = asyncio.create_task(breaker.call(slow))
    await asyncio.sleep(0)
    assert breaker.state is HALF
    with pytest.raises(ExchangeUnavailable):
        await breaker.call(ok)
    release.set()
    assert await probe == "probe" and breaker.state is CLOSED
    assert await breaker.call(ok) == "ok"


async def test_a_cancelled_or_buggy_probe_lets_the_next_call_probe(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    await failures(breaker, 3)
    clock.now += 30

    async def bug() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        await breaker.call(bug)
    assert breaker.state is HALF
    assert await breaker.call(ok) == "ok" and breaker.state is CLOSED


async def test_listeners_are_called_once_per_transition(breaker: CircuitBreaker, clock: FakeClock) -> None:
    seen: list[tuple[str, BreakerState, BreakerState]] = []
    async_seen: list[BreakerState] = []

    async def async_listener(name: str, old: BreakerState, new: BreakerState) -> None:
        async_seen.append(new)

    breaker.on_change(lambda name, old, new: seen.append((name, old, new)))
    unsubscribe = breaker.on_change(async_listener)
    breaker.on_change(lambda *_: 1 / 0)  # a failing listener changes nothing

    await failures(breaker, 3)
    for _ in range(2):  # refused while open: no transition
        with pytest.raises(ExchangeUnavailable):
            await breaker.call(fail)
    clock.now += 30
    await failures(breaker, 1)  # probe fails
    clock.now += 30
    unsubscribe()
    await breaker.call(ok)
    await breaker.call(ok)
    await asyncio.sleep(0)

    assert seen == [
        ("binance", CLOSED, OPEN),
        ("binance", OPEN, HALF),
        ("binance", HALF, OPEN),
        ("binance", OPEN, HALF),
        ("binance", HALF, CLOSED),
    ]
    assert async_seen == [OPEN, HALF, OPEN]


async def test_counters_and_guard(breaker: CircuitBreaker, clock: FakeClock) -> None:
    async with breaker.guard():
        pass
    await failures(breaker, 3)
    with pytest.raises(ExchangeUnavailable):
        async with breaker.guard():
            raise AssertionError("not reached")
    stats = breaker.stats()
    assert (stats.calls, stats.successes, stats.failures, stats.rejected, stats.opened) == (4, 1, 3, 1, 1)
    assert stats.state is OPEN and stats.retry_in == 30 and stats.name == "binance"
    breaker.reset()
    assert breaker.state is CLOSED and breaker.consecutive_failures == 0


async def test_late_answers_do_not_move_an_open_circuit(breaker: CircuitBreaker) -> None:
    release = asyncio.Event()

    async def late_ok() -> str:
        await release.wait()
        return "late"

    straggler = asyncio.create_task(breaker.call(late_ok))
    await asyncio.sleep(0)
    await failures(breaker, 3)
    release.set()
    assert await straggler == "late"
    assert breaker.state is OPEN


def test_bad_threshold() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("x", failure_threshold=0)
