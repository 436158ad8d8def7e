from __future__ import annotations

import pytest

from services.exchanges.errors import (
    ExchangeAuthError,
    ExchangeRateLimited,
    ExchangeTemporaryError,
    ExchangeUnavailable,
    InsufficientFundsError,
)
from services.exchanges.retry import backoff_delay, retry


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Flaky:
    """Fails with the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def temporary() -> ExchangeTemporaryError:
    return ExchangeTemporaryError(exchange="binance", reason="timeout")


async def test_temporary_errors_are_retried_with_exponential_backoff() -> None:
    sleep, fn = FakeSleep(), Flaky(temporary(), ExchangeRateLimited(exchange="binance"), temporary())
    assert await retry(fn, attempts=4, base_delay=0.2, max_delay=2.0, jitter=False, sleep=sleep) == "ok"
    assert fn.calls == 4 and sleep.delays == [0.2, 0.4, 0.8]


async def test_delays_are_capped() -> None:
    sleep, fn = FakeSleep(), Flaky(*(temporary() for _ in range(6)))
    assert await retry(fn, attempts=7, base_delay=0.5, max_delay=2.0, jitter=False, sleep=sleep) == "ok"
    assert sleep.delays == [0.5, 1.0, 2.0, 2.0, 2.0, 2.0]


async def test_the_last_error_is_raised_when_attempts_run_out() -> None:
    sleep, last = FakeSleep(), temporary()
    fn = Flaky(temporary(), temporary(), last)
    with pytest.raises(ExchangeTemporaryError) as info:
        await retry(fn, attempts=3, jitter=False, sleep=sleep)
    assert info.value is last and fn.calls == 3 and sleep.delays == [0.2, 0.4]


@pytest.mark.parametrize(
    "error",
    [
        ExchangeUnavailable("binance", 10),  # open circuit: retrying would only be refused again
        ExchangeAuthError(exchange="binance"),
        InsufficientFundsError(exchange="binance"),
        ValueError("bug"),
    ],
)
async def test_other_errors_are_not_retried(error: Exception) -> None:
    sleep, fn = FakeSleep(), Flaky(error)
    with pytest.raises(type(error)):
        await retry(fn, attempts=5, sleep=sleep)
    assert fn.calls == 1 and sleep.delays == []


async def test_jitter_stays_within_half_to_full_delay() -> None:
    sleep = FakeSleep()
    await retry(
        Flaky(*(temporary() for _ in range(4))), attempts=5, base_delay=0.2, max_delay=1.0, sleep=sleep
    )
    for attempt, delay in enumerate(sleep.delays):
        full = min(1.0, 0.2 * 2**attempt)
        assert full / 2 <= delay <= full
    assert all(full / 2 <= backoff_delay(3, 0.2, 1.0, True) <= 1.0 for full in [1.0])


async def test_a_single_attempt_and_bad_arguments() -> None:
    fn = Flaky(temporary())
    with pytest.raises(ExchangeTemporaryError):
        await retry(fn, attempts=1, sleep=FakeSleep())
    with pytest.raises(ValueError):
        await retry(Flaky(), attempts=0)
