"""The natural batcher: a lone item runs at once, a crowd shares statements, a bad item fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from db.batching import NaturalBatcher


class Bad(Exception):
    """An item the 'server' refuses."""


class Recorder:
    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.calls: list[tuple[str, list[int]]] = []

    async def one(self, item: int) -> int:
        self.calls.append(("one", [item]))
        await asyncio.sleep(self.delay)
        if item < 0:
            raise Bad(item)
        return item * 10

    async def many(self, items: Sequence[int]) -> list[int]:
        self.calls.append(("many", list(items)))
        await asyncio.sleep(self.delay)
        if any(item < 0 for item in items):
            raise Bad(items)
        return [item * 10 for item in items]


async def test_a_lone_item_runs_at_once_with_the_single_statement() -> None:
    recorder = Recorder()
    batcher = NaturalBatcher(recorder.one, recorder.many, lanes=2)
    assert await batcher.submit(3) == 30
    assert recorder.calls == [("one", [3])]
    assert (batcher.batches, batcher.items) == (1, 1)


async def test_a_crowd_shares_statements_and_every_caller_gets_its_own_result() -> None:
    recorder = Recorder()
    batcher = NaturalBatcher(recorder.one, recorder.many, lanes=2, max_batch=16)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(50)))
    assert results == [i * 10 for i in range(50)]
    # the first two took the free lanes alone; the other 48 waited and went 16 at a time
    assert recorder.calls[:2] == [("one", [0]), ("one", [1])]
    sizes = [len(items) for kind, items in recorder.calls[2:]]
    assert sum(sizes) == 48 and max(sizes) == 16 and len(sizes) == 3
    assert sorted(i for _, items in recorder.calls for i in items) == list(range(50))
    assert (batcher.batches, batcher.items) == (5, 50)


async def test_no_more_statements_in_flight_than_lanes() -> None:
    in_flight = peak = 0

    async def one(item: int) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1
        return item

    async def many(items: Sequence[int]) -> list[int]:
        return [await one(item) for item in items[:1]] + list(items[1:])

    batcher = NaturalBatcher(one, many, lanes=3, max_batch=4)
    assert await asyncio.gather(*(batcher.submit(i) for i in range(40))) == list(range(40))
    assert peak == 3


async def test_a_refused_item_fails_alone_and_the_rest_of_its_batch_succeeds() -> None:
    recorder = Recorder()
    batcher = NaturalBatcher(recorder.one, recorder.many, retry_alone=(Bad,), lanes=1)
    items = [1, 2, -3, 4]
    results = await asyncio.gather(*(batcher.submit(i) for i in items), return_exceptions=True)
    assert results[:2] == [10, 20] and results[3] == 40
    assert isinstance(results[2], Bad)
    # the batch [2, -3, 4] was refused, then its items ran one by one
    assert ("many", [2, -3, 4]) in recorder.calls
    assert [c for c in recorder.calls if c[0] == "one"][-3:] == [("one", [2]), ("one", [-3]), ("one", [4])]


async def test_any_other_error_fails_the_whole_batch() -> None:
    async def one(item: int) -> int:
        await asyncio.sleep(0.01)
        return item

    async def many(items: Sequence[int]) -> list[int]:
        raise ConnectionResetError("the connection broke")

    batcher = NaturalBatcher(one, many, lanes=1)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(4)), return_exceptions=True)
    assert results[0] == 0
    assert all(isinstance(r, ConnectionResetError) for r in results[1:])
    # and the batcher keeps working afterwards
    assert await batcher.submit(9) == 9


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    recorder = Recorder(delay=0.02)
    batcher = NaturalBatcher(recorder.one, recorder.many, lanes=1)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)
    queued = [asyncio.create_task(batcher.submit(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0)
    queued[1].cancel()
    assert await first == 10
    assert await queued[0] == 20 and await queued[2] == 40
    with pytest.raises(asyncio.CancelledError):
        await queued[1]
    await batcher.drain()


def test_lanes_and_batch_size_must_be_positive() -> None:
    recorder = Recorder()
    with pytest.raises(ValueError):
        NaturalBatcher(recorder.one, recorder.many, lanes=0)
    with pytest.raises(ValueError):
        NaturalBatcher(recorder.one, recorder.many, max_batch=0)
