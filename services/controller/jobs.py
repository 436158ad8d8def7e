"""What the scheduler's jobs did: runs, failures, last outcome. Fed by the scheduler's event listener."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobSchedule:
    """A job as the scheduler holds it."""

    id: str
    name: str
    next_run_at: datetime | None  # None: paused


@dataclass(frozen=True, slots=True)
class JobStats:
    id: str
    runs: int = 0
    failures: int = 0
    missed: int = 0
    consecutive_failures: int = 0
    last_run_at: datetime | None = None
    last_ok_at: datetime | None = None
    last_error: str | None = None  # the exception's type name of the last failure

    @property
    def failing(self) -> bool:
        return self.consecutive_failures > 0


JobListener = Callable[[str, bool], None]
"""``listener(job_id, ok)`` after each run."""


class JobTracker:
    """Counts the runs of each job. The scheduler side calls :meth:`attach` with how to ask whether it runs
    and which jobs it holds, and :meth:`record` after every run."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self._stats: dict[str, JobStats] = {}
        self._listeners: list[JobListener] = []
        self._running: Callable[[], bool] | None = None
        self._jobs: Callable[[], list[JobSchedule]] | None = None
        self._paused: Callable[[], bool] | None = None

    def attach(
        self,
        running: Callable[[], bool],
        jobs: Callable[[], list[JobSchedule]],
        paused: Callable[[], bool] | None = None,
    ) -> None:
        """``running``: started and not shut down; ``paused``: started but holding its jobs (a standby
        process while another one leads)."""
        self._running = running
        self._jobs = jobs
        self._paused = paused

    @property
    def attached(self) -> bool:
        return self._running is not None

    def running(self) -> bool:
        return self._running is not None and self._running()

    def paused(self) -> bool:
        return self._paused is not None and self._paused()

    def schedules(self) -> list[JobSchedule]:
        if self._jobs is None:
            return []
        try:
            return self._jobs()
        except Exception:
            log.exception("listing the scheduler's jobs failed")
            return []

    def on_record(self, listener: JobListener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def record(self, job_id: str, *, ok: bool, error: str | None = None, at: datetime | None = None) -> None:
        when = at or self._clock()
        stats = self._stats.get(job_id) or JobStats(job_id)
        if ok:
            stats = replace(
                stats, runs=stats.runs + 1, consecutive_failures=0, last_run_at=when, last_ok_at=when
            )
        else:
            stats = replace(
                stats,
                runs=stats.runs + 1,
                failures=stats.failures + 1,
                consecutive_failures=stats.consecutive_failures + 1,
                last_run_at=when,
                last_error=error,
            )
        self._stats[job_id] = stats
        for listener in list(self._listeners):
            try:
                listener(job_id, ok)
            except Exception:
                log.exception("job listener failed")

    def record_missed(self, job_id: str) -> None:
        stats = self._stats.get(job_id) or JobStats(job_id)
        self._stats[job_id] = replace(stats, missed=stats.missed + 1)

    def stats(self) -> dict[str, JobStats]:
        """Every job known from the schedule or from a run, by id (scheduled ones first, in their order)."""
        result = {s.id: self._stats.get(s.id) or JobStats(s.id) for s in self.schedules()}
        for job_id, stats in self._stats.items():
            result.setdefault(job_id, stats)
        return result
