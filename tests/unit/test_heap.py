"""The garbage-collector settings of a serving bot process."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from bot import heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_settle_freezes_what_is_alive_and_raises_the_young_threshold(restored_gc: None) -> None:
    survivor = [[index] for index in range(1000)]  # lists are tracked by the collector
    assert any(obj is survivor for obj in gc.get_objects())
    settled = heap.settle()
    # (frozen objects can still be freed when their last reference goes: the count only roughly stays)
    assert settled.frozen > len(survivor) and gc.get_freeze_count() > len(survivor)
    assert gc.get_threshold() == heap.THRESHOLDS
    # frozen objects are out of the collector's sight: no generation holds them any more
    assert not any(obj is survivor for obj in gc.get_objects())
    newcomer: list[object] = []
    assert any(obj is newcomer for obj in gc.get_objects())  # objects made afterwards are collected as usual
