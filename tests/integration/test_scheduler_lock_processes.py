"""Two real bot-like processes against one database: only one runs the scheduled job at any time, and
when the leader is killed (SIGKILL, no cleanup) the other one takes over within the bound."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TTL = 1.0
RETRY = 0.2
EVERY = 0.1
SLACK = 1.5


def read_lines(path: Path) -> list[tuple[int, float]]:
    if not path.exists():
        return []
    lines: list[tuple[int, float]] = []
    for line in path.read_text().splitlines():
        pid, stamp = line.split(",")
        lines.append((int(pid), float(stamp)))
    return lines


def runs(lines: list[tuple[int, float]]) -> list[tuple[int, float, float, int]]:
    """Consecutive lines of one writer: (pid, first timestamp, last timestamp, count)."""
    out: list[tuple[int, float, float, int]] = []
    for pid, stamp in lines:
        if out and out[-1][0] == pid:
            first, _, count = out[-1][1], out[-1][2], out[-1][3]
            out[-1] = (pid, first, stamp, count + 1)
        else:
            out.append((pid, stamp, stamp, 1))
    return out


class Writers:
    def __init__(self, tmp_path: Path, database_url: str, backend: str, redis_url: str | None) -> None:
        self.tmp_path = tmp_path
        self.out = tmp_path / "writes.csv"
        self.database_url = database_url
        self.backend = backend
        self.redis_url = redis_url
        self.scope = f"test-{uuid.uuid4().hex[:8]}"
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def spawn(self, tag: str) -> subprocess.Popen[bytes]:
        command = [
            sys.executable,
            "-m",
            "tests.integration.leader_writer",
            "--database-url",
            self.database_url,
            "--out",
            str(self.out),
            "--backend",
            self.backend,
            "--ttl",
            str(TTL),
            "--retry",
            str(RETRY),
            "--every",
            str(EVERY),
            "--scope",
            self.scope,
        ]
        if self.redis_url:
            command += ["--redis-url", self.redis_url]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with (self.tmp_path / f"{tag}.log").open("wb") as log:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.processes[process.pid] = process
        return process

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(self.tmp_path.glob("*.log"))
        )

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


@pytest.fixture
def writers_factory(tmp_path: Path) -> Iterator[list[Writers]]:
    made: list[Writers] = []
    yield made
    for writers in made:
        writers.stop_all()


async def wait_until(predicate: object, timeout: float, what: str, writers: Writers) -> float:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s\n{writers.logs()}")
        for process in writers.processes.values():
            if process.poll() not in (None, -signal.SIGKILL):
                raise AssertionError(f"a writer exited with {process.returncode}\n{writers.logs()}")
        await asyncio.sleep(0.02)
    return time.monotonic()


async def one_writer_then_takeover(writers: Writers, kill_to_takeover: float) -> None:
    first, second = writers.spawn("a"), writers.spawn("b")
    await wait_until(lambda: len(read_lines(writers.out)) >= 3, 20, "the first leader writing", writers)
    leader_pid = read_lines(writers.out)[0][0]
    assert leader_pid in (first.pid, second.pid)
    await asyncio.sleep(1.0)
    before = read_lines(writers.out)
    assert {pid for pid, _ in before} == {leader_pid}, runs(before)
    assert len(before) >= 8

    leader = writers.processes[leader_pid]
    follower = second if leader is first else first
    killed_at = time.time()
    leader.send_signal(signal.SIGKILL)
    leader.wait(timeout=10)
    await wait_until(
        lambda: any(pid == follower.pid for pid, _ in read_lines(writers.out)),
        kill_to_takeover + 5,
        "the takeover",
        writers,
    )
    await asyncio.sleep(0.5)
    follower.send_signal(signal.SIGTERM)
    assert follower.wait(timeout=10) == 0, writers.logs()

    lines = read_lines(writers.out)
    assert [(pid, count > 1) for pid, _, _, count in runs(lines)] == [
        (leader_pid, True),
        (follower.pid, True),
    ], runs(lines)
    leader_last = max(stamp for pid, stamp in lines if pid == leader_pid)
    follower_first = min(stamp for pid, stamp in lines if pid == follower.pid)
    assert leader_last <= killed_at < follower_first
    takeover = follower_first - killed_at
    assert takeover <= kill_to_takeover, f"took over after {takeover:.2f}s"


@pytest.mark.postgres
async def test_two_processes_on_postgres(postgres_url: str, tmp_path: Path, writers_factory: list) -> None:
    writers = Writers(tmp_path, postgres_url, "auto", None)
    writers_factory.append(writers)
    # the dead leader's connection is closed by its OS: the server frees the lock at once
    await one_writer_then_takeover(writers, kill_to_takeover=RETRY + TTL + SLACK)


async def test_two_processes_on_sqlite_file_lock(tmp_path: Path, writers_factory: list) -> None:
    writers = Writers(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", "auto", None)
    writers_factory.append(writers)
    await one_writer_then_takeover(writers, kill_to_takeover=RETRY + TTL + SLACK)
    assert list(tmp_path.glob("bot.db.scheduler-*.lock"))


@pytest.mark.redis
async def test_two_processes_on_redis(redis_url: str, tmp_path: Path, writers_factory: list) -> None:
    writers = Writers(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", "redis", redis_url)
    writers_factory.append(writers)
    # the dead leader's key has to expire first (ttl), then the next holder settles (ttl)
    await one_writer_then_takeover(writers, kill_to_takeover=TTL + RETRY + TTL + SLACK)
