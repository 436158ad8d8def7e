"""Garbage collector settings for a long-running bot process.

The bot's heap after start-up is large: aiogram's and pydantic's model classes, SQLAlchemy's metadata,
ccxt's exchange descriptions, litellm's model tables. CPython's collector walks every tracked object of a
generation it collects, so each full collection of that heap took the better part of a second of CPU
while the bot was answering; measured with `bench/updates.py`, collections were over half the bot's CPU
time under load. Objects that live as long as the process are moved out of the collector's sight once
start-up is done (`gc.freeze()`), and young collections run less often.

This is for the process's main entry points (`run`, `sandbox`), called once when the bot is serving: a
process that starts and stops many bots (the test suite) would keep each one's start-up cycles.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)

# generation 0 every 10,000 net allocations instead of 700; the older generations as CPython's defaults
THRESHOLDS = (10_000, 10, 10)


@dataclass(frozen=True, slots=True)
class Settled:
    frozen: int  # objects moved to the permanent generation
    seconds: float


def settle() -> Settled:
    """Collect once, then freeze everything alive into the permanent generation."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    settled = Settled(frozen=gc.get_freeze_count(), seconds=time.perf_counter() - started)
    log.info("heap.settled", frozen=settled.frozen, seconds=round(settled.seconds, 3))
    return settled
