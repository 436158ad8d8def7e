"""Helpers shared by the benchmark scripts: machine facts, percentiles, CPU accounting, scratch databases."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def machine_facts() -> str:
    return (
        f"{os.cpu_count()} CPU cores, {platform.python_implementation()} {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (NaN when there are none)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of another process, from /proc (None where that is not available)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # after the command name: state is fields[0]; utime and stime are fields 14 and 15 of the whole line
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def host_cpu_busy_seconds() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine summed over all cores, from /proc/stat."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    values = [int(v) for v in first[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])  # guest time is already counted in user time
    return (total - idle) / _CLOCK_TICKS, total / _CLOCK_TICKS


@dataclass
class CpuSample:
    """CPU counters at one moment: a server process, this process and the whole machine."""

    wall: float
    server: float | None
    client: float
    host: tuple[float, float] | None

    @classmethod
    def take(cls, server_pid: int | None) -> CpuSample:
        return cls(
            wall=time.perf_counter(),
            server=process_cpu_seconds(server_pid) if server_pid is not None else None,
            client=time.process_time(),
            host=host_cpu_busy_seconds(),
        )


@dataclass(frozen=True)
class CpuUsage:
    """Average CPU use between two samples, in percent of one core (200% = two cores busy)."""

    server: float | None
    client: float
    host: float | None

    @classmethod
    def between(cls, start: CpuSample, end: CpuSample) -> CpuUsage:
        wall = max(end.wall - start.wall, 1e-9)
        server = None
        if start.server is not None and end.server is not None:
            server = 100 * (end.server - start.server) / wall
        host = None
        if start.host is not None and end.host is not None:
            busy, total = end.host[0] - start.host[0], end.host[1] - start.host[1]
            if total > 0:
                host = 100 * (os.cpu_count() or 1) * busy / total
        return cls(server=server, client=100 * (end.client - start.client) / wall, host=host)


@contextlib.asynccontextmanager
async def scratch_postgres_database(admin_url: str = DEFAULT_POSTGRES_URL) -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database (SQLAlchemy asyncpg URL), dropped afterwards."""
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    admin = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        database=url.database or "postgres",
        timeout=5,
    )
    name = f"cu_bench_{uuid.uuid4().hex[:12]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            scratch = url.set(drivername="postgresql+asyncpg", database=name)
            yield scratch.render_as_string(hide_password=False)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
