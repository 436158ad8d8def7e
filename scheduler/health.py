"""The master controller's job, and what ties the scheduler and the admins' alerts to the controller."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import structlog
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.schedulers.base import STATE_PAUSED, BaseScheduler
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.controller import AdminAlerts, Controller, JobSchedule, JobTracker, user_locales
from services.notify import Notifier

log = structlog.get_logger(__name__)

HEALTH_JOB_ID = "health"


async def health_job(controller: Controller) -> int:
    """Check every component; transitions reach the admins through the controller's callbacks.
    Returns how many components are down or degraded."""
    snapshot = await controller.check_all()
    problems = snapshot.not_up
    if problems:
        log.info("health.problems", components={c.name: c.status.value for c in problems})
    return len(problems)


def track_jobs(scheduler: BaseScheduler, tracker: JobTracker) -> None:
    """Record every run of every job of ``scheduler`` (outcome, time) in ``tracker``."""

    def jobs() -> list[JobSchedule]:
        return [
            JobSchedule(job.id, job.name, getattr(job, "next_run_time", None)) for job in scheduler.get_jobs()
        ]

    def listener(event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            tracker.record_missed(event.job_id)
            return
        failed = event.exception is not None
        tracker.record(
            event.job_id,
            ok=not failed,
            error=type(event.exception).__name__ if failed else None,
        )

    tracker.attach(lambda: bool(scheduler.running), jobs, paused=lambda: scheduler.state == STATE_PAUSED)
    scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)


def alert_admins(
    controller: Controller,
    notifier: Notifier,
    admin_ids: Iterable[int],
    session_factory: async_sessionmaker[AsyncSession],
    *,
    active: Callable[[], bool] | None = None,
) -> AdminAlerts:
    """Admins get one message per transition (down, recovered), in their own language; with ``active``
    (e.g. ``lambda: election.is_leader``) only from the process for which it is True."""
    alerts = AdminAlerts(notifier, admin_ids, user_locales(session_factory), active=active)
    controller.on_transition(alerts)
    return alerts
