"""The scheduler runs its jobs only while this process leads (see `scheduler.lock`)."""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from scheduler.lock import LeaderElection, LeaderLock


def scheduler_election(
    scheduler: AsyncIOScheduler, lock: LeaderLock, *, retry_interval: float
) -> LeaderElection:
    """Starts `scheduler` paused (unless already started) and returns an election, not yet started, that
    resumes it on election and pauses it on deposition. Stop order: `scheduler.shutdown()` (no job runs
    or starts any more), then `await election.stop()` (releases the lock for the next leader)."""
    if not scheduler.running:
        scheduler.start(paused=True)

    def resume() -> None:
        if scheduler.running:
            scheduler.resume()

    def pause() -> None:
        if scheduler.running:
            scheduler.pause()

    return LeaderElection(
        lock, retry_interval=retry_interval, on_elected=resume, on_deposed=pause, name="scheduler"
    )
