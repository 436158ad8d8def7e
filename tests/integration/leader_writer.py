"""A bot-like process for the two-process leader tests, wired the way the runner wires the scheduler.

An AsyncIOScheduler is started paused in every process; a LeaderElection resumes it while this process
leads and pauses it when it stops leading. The one job appends "pid,timestamp" to a shared file every
`--every` seconds. SIGTERM or SIGINT stops it gracefully (the lock is released).

    python -m tests.integration.leader_writer --database-url URL --out FILE [--backend auto|redis]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.logging import setup_logging
from scheduler.leader import scheduler_election
from scheduler.lock import build_leader_lock


async def append_line(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{os.getpid()},{time.time():.6f}\n".encode())
    finally:
        os.close(fd)


async def main(args: argparse.Namespace) -> None:
    scheduler = AsyncIOScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
    )
    scheduler.add_job(append_line, "interval", seconds=args.every, args=(args.out,), id="writer")
    lock = build_leader_lock(
        args.database_url, scope=args.scope, ttl=args.ttl, backend=args.backend, redis_url=args.redis_url
    )
    election = scheduler_election(scheduler, lock, retry_interval=args.retry)
    election.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        await election.stop()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--backend", default="auto", choices=["auto", "postgres", "redis", "file", "process"])
    parser.add_argument("--redis-url")
    parser.add_argument("--scope", default="test")
    parser.add_argument("--ttl", type=float, default=1.0)
    parser.add_argument("--retry", type=float, default=0.2)
    parser.add_argument("--every", type=float, default=0.1)
    return parser.parse_args(argv)


if __name__ == "__main__":
    setup_logging("INFO", "console")
    asyncio.run(main(parse()))
