"""Leader election on each lock backend: one leader of two, takeover when the leader stops or loses its
lock, and never two leaders at the same moment (sampled every few milliseconds)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_PAUSED
from redis.asyncio import Redis

from scheduler.leader import scheduler_election
from scheduler.lock import (
    FileLock,
    LeaderElection,
    LeaderLock,
    PostgresAdvisoryLock,
    ProcessLock,
    RedisLeaseLock,
    build_leader_lock,
    lock_key,
)

TTL = 1.0
RETRY = 0.2
SLACK = 1.0
LockFactory = Callable[[], LeaderLock]


class Sampler:
    """Samples `is_leader` of every election every few milliseconds; counts moments with two leaders."""

    def __init__(self, elections: list[LeaderElection]) -> None:
        self.elections = elections
        self.samples = 0
        self.overlaps = 0
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            if sum(e.is_leader for e in self.elections) > 1:
                self.overlaps += 1
            self.samples += 1
            await asyncio.sleep(0.005)

    async def __aenter__(self) -> Sampler:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def election(self, tag: str, lock: LeaderLock) -> LeaderElection:
        return LeaderElection(
            lock,
            retry_interval=RETRY,
            on_elected=lambda: self.events.append((tag, "elected")),
            on_deposed=lambda: self.events.append((tag, "deposed")),
            name=tag,
        )


async def first_leader(*elections: LeaderElection, within: float) -> LeaderElection:
    waiters = {asyncio.create_task(e.wait_until_leader()): e for e in elections}
    try:
        done, _ = await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiters:
            task.cancel()
    assert done, f"nobody was elected within {within}s"
    return waiters[next(iter(done))]


async def wait_leader(election: LeaderElection, within: float) -> float:
    started = time.monotonic()
    async with asyncio.timeout(within):
        await election.wait_until_leader()
    return time.monotonic() - started


async def wait_not_leader(election: LeaderElection, within: float) -> float:
    started = time.monotonic()
    async with asyncio.timeout(within):
        while election.is_leader:  # noqa: ASYNC110  (polled like the sampler, not told)
            await asyncio.sleep(0.005)
    return time.monotonic() - started


@contextlib.asynccontextmanager
async def stopping(*elections: LeaderElection) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for election in elections:
            await election.stop()


# --- lock factories: each call is a new, independent holder of the same lock ---------------------------


@pytest.fixture
def postgres_locks(postgres_url: str) -> LockFactory:
    key = lock_key("scheduler", f"test-{uuid.uuid4().hex}")
    return lambda: PostgresAdvisoryLock(postgres_url, key, ttl=TTL)


@pytest.fixture
def redis_locks(redis_url: str) -> Iterator[LockFactory]:
    key = f"cryptouniverse:leader:test:{uuid.uuid4().hex}"
    yield lambda: RedisLeaseLock.from_url(redis_url, key, ttl=TTL)


@pytest.fixture
def file_locks(tmp_path: Path) -> LockFactory:
    return lambda: FileLock(tmp_path / "bot.db.scheduler.lock", ttl=TTL)


@pytest.fixture
def process_locks() -> LockFactory:
    key = f"test-{uuid.uuid4().hex}"
    return lambda: ProcessLock(key, ttl=TTL)


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
        "file",
        "process",
    ]
)
def locks(request: pytest.FixtureRequest) -> LockFactory:
    return request.getfixturevalue(f"{request.param}_locks")


# --- every backend -------------------------------------------------------------------------------------


async def test_one_leader_and_takeover_when_it_stops(locks: LockFactory) -> None:
    recorder = Recorder()
    a, b = recorder.election("a", locks()), recorder.election("b", locks())
    async with stopping(a, b), Sampler([a, b]) as sampler:
        a.start()
        b.start()
        leader = await first_leader(a, b, within=RETRY + TTL + SLACK)
        follower = b if leader is a else a
        await asyncio.sleep(0.6)
        assert leader.is_leader and not follower.is_leader
        assert (leader.role, follower.role) == ("leader", "follower")
        assert leader.status()["leader"] is True and follower.status()["leader"] is False

        await leader.stop()
        assert not leader.is_leader and leader.role == "stopped"
        took = await wait_leader(follower, within=follower.takeover_bound + SLACK)
        assert took <= follower.takeover_bound + SLACK
        await asyncio.sleep(0.3)
        assert follower.is_leader
    assert recorder.events == [
        (leader.name, "elected"),
        (leader.name, "deposed"),
        (follower.name, "elected"),
        (follower.name, "deposed"),
    ]
    assert sampler.overlaps == 0 and sampler.samples > 100


async def test_settle_wait_before_acting(locks: LockFactory) -> None:
    election = LeaderElection(locks(), retry_interval=RETRY)
    async with stopping(election):
        election.start()
        took = await wait_leader(election, within=RETRY + TTL + SLACK)
    assert election.settle_seconds <= took <= election.settle_seconds + SLACK


async def test_async_callbacks_and_a_failing_on_elected(process_locks: LockFactory) -> None:
    calls: list[str] = []

    async def elected() -> None:
        calls.append("elected")
        if calls.count("elected") == 1:
            raise RuntimeError("the scheduler did not resume")

    async def deposed() -> None:
        calls.append("deposed")

    a = LeaderElection(process_locks(), retry_interval=RETRY, on_elected=elected, on_deposed=deposed)
    b = LeaderElection(process_locks(), retry_interval=RETRY)
    async with stopping(a, b):
        a.start()
        await asyncio.sleep(0.05)
        b.start()
        # a fails to start its jobs: it gives the lock up and b takes it
        await wait_leader(b, within=RETRY * 3 + SLACK)
        await b.stop()
        await wait_leader(a, within=RETRY * 3 + SLACK)
    assert calls == ["elected", "deposed", "elected", "deposed"]


async def test_scheduler_runs_jobs_only_while_leading(file_locks: LockFactory) -> None:
    runs: list[str] = []

    def bot_process(tag: str) -> tuple[AsyncIOScheduler, LeaderElection]:
        async def job() -> None:
            runs.append(tag)

        scheduler = AsyncIOScheduler(job_defaults={"coalesce": True, "max_instances": 1})
        scheduler.add_job(job, "interval", seconds=0.05)
        return scheduler, scheduler_election(scheduler, file_locks(), retry_interval=RETRY)

    (first, a), (second, b) = bot_process("a"), bot_process("b")
    assert first.state == second.state == STATE_PAUSED
    async with stopping(a, b):
        a.start()
        b.start()
        leader = await first_leader(a, b, within=RETRY + TTL + SLACK)
        await asyncio.sleep(0.5)
        tag = "a" if leader is a else "b"
        assert len(runs) >= 5 and set(runs) == {tag}
        (first if leader is a else second).shutdown(wait=False)
        await leader.stop()
        stopped_at = len(runs)
        follower = b if leader is a else a
        await wait_leader(follower, within=follower.takeover_bound + SLACK)
        await asyncio.sleep(0.5)
        (second if leader is a else first).shutdown(wait=False)
    after = runs[stopped_at:]
    assert len(after) >= 5 and set(after) == ({"a", "b"} - {tag})


# --- a leader that loses its lock while it lives ---------------------------------------------------------


@pytest.mark.postgres
async def test_postgres_backend_terminated(postgres_url: str, postgres_locks: LockFactory) -> None:
    recorder = Recorder()
    a, b = recorder.election("a", postgres_locks()), recorder.election("b", postgres_locks())
    admin = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    async with stopping(a, b), Sampler([a, b]) as sampler:
        a.start()
        await wait_leader(a, within=RETRY + TTL + SLACK)
        b.start()
        await asyncio.sleep(RETRY * 3)
        assert a.is_leader and not b.is_leader
        assert isinstance(a.lock, PostgresAdvisoryLock) and a.lock.backend_pid is not None
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", a.lock.backend_pid)
        # the closed connection is noticed well before the next leader may act (one TTL after it takes over)
        assert await wait_not_leader(a, within=TTL) < TTL
        took = await wait_leader(b, within=b.takeover_bound + SLACK)
        assert took <= b.takeover_bound + SLACK
        await asyncio.sleep(RETRY * 3)
        assert b.is_leader and not a.is_leader
        assert a.role == "follower"
    await admin.close()
    assert recorder.events == [("a", "elected"), ("a", "deposed"), ("b", "elected"), ("b", "deposed")]
    assert sampler.overlaps == 0


@pytest.mark.postgres
async def test_postgres_scopes_do_not_block_each_other(postgres_url: str) -> None:
    first = build_leader_lock(postgres_url, scope="tenant-a:1001", ttl=TTL)
    second = build_leader_lock(postgres_url, scope="tenant-b:1002", ttl=TTL)
    a, b = LeaderElection(first, retry_interval=RETRY), LeaderElection(second, retry_interval=RETRY)
    async with stopping(a, b):
        a.start()
        b.start()
        await wait_leader(a, within=RETRY + TTL + SLACK)
        await wait_leader(b, within=RETRY + TTL + SLACK)


class Proxy:
    """A TCP proxy to Redis that the test can cut, like a network failure between a holder and Redis."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writers += [writer, up_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        await self.server.wait_closed()


@pytest.mark.redis
async def test_redis_holder_cut_off(redis_url: str) -> None:
    key = f"cryptouniverse:leader:test:{uuid.uuid4().hex}"
    url = urlsplit(redis_url)
    proxy = Proxy(url.port or 6379)
    proxy_port = await proxy.start()
    via_proxy = urlunsplit(url._replace(netloc=f"{url.hostname}:{proxy_port}"))
    recorder = Recorder()
    a = recorder.election("a", RedisLeaseLock.from_url(via_proxy, key, ttl=TTL))
    b = recorder.election("b", RedisLeaseLock.from_url(redis_url, key, ttl=TTL))
    async with stopping(a, b), Sampler([a, b]) as sampler:
        a.start()
        await wait_leader(a, within=RETRY + TTL + SLACK)
        b.start()
        await asyncio.sleep(RETRY * 3)
        assert a.is_leader and not b.is_leader
        await proxy.cut()
        # a cannot extend its lease: it steps down before the key expires
        assert await wait_not_leader(a, within=TTL) < TTL
        # b gets the key once it expired, then settles
        took = await wait_leader(b, within=TTL + RETRY + TTL + SLACK)
        assert took <= TTL + RETRY + TTL + SLACK
        assert not a.is_leader
    assert recorder.events == [("a", "elected"), ("a", "deposed"), ("b", "elected"), ("b", "deposed")]
    assert sampler.overlaps == 0


@pytest.mark.redis
async def test_redis_key_deleted_under_the_holder(redis_url: str, redis_locks: LockFactory) -> None:
    recorder = Recorder()
    a, b = recorder.election("a", redis_locks()), recorder.election("b", redis_locks())
    assert isinstance(a.lock, RedisLeaseLock)
    admin = Redis.from_url(redis_url)
    async with stopping(a, b), Sampler([a, b]) as sampler:
        a.start()
        await wait_leader(a, within=RETRY + TTL + SLACK)
        b.start()
        await asyncio.sleep(RETRY * 3)
        assert await admin.get(a.lock.key) == a.lock.token.encode()
        await admin.delete(a.lock.key)
        # b may take the key at once, but acts only after a has noticed and stepped down
        await wait_not_leader(a, within=TTL)
        await wait_leader(b, within=b.takeover_bound + SLACK)
        await asyncio.sleep(RETRY * 3)
        assert b.is_leader and not a.is_leader
        assert isinstance(b.lock, RedisLeaseLock)
        assert await admin.get(b.lock.key) == b.lock.token.encode()
    assert await admin.exists(a.lock.key) == 0
    await admin.aclose()
    assert sampler.overlaps == 0


async def test_file_lock_removed_under_the_holder(tmp_path: Path, file_locks: LockFactory) -> None:
    recorder = Recorder()
    a, b = recorder.election("a", file_locks()), recorder.election("b", file_locks())
    assert isinstance(a.lock, FileLock)
    async with stopping(a, b), Sampler([a, b]) as sampler:
        a.start()
        await wait_leader(a, within=RETRY + TTL + SLACK)
        b.start()
        await asyncio.sleep(RETRY * 3)
        assert not b.is_leader
        a.lock.path.unlink()
        await wait_not_leader(a, within=TTL)
        await wait_leader(b, within=b.takeover_bound + SLACK)
        assert not a.is_leader
    assert sampler.overlaps == 0
    assert a.lock.path.exists()


# --- choosing the lock ----------------------------------------------------------------------------------


async def test_lock_choice(tmp_path: Path) -> None:
    postgres = build_leader_lock("postgresql+asyncpg://u:pw@db:5432/bot", scope="default:42", ttl=9)
    assert isinstance(postgres, PostgresAdvisoryLock) and postgres.ttl == 9
    assert postgres.key == lock_key("scheduler", "default:42") != lock_key("scheduler", "default:43")
    assert "pw" not in postgres.describe()
    assert isinstance(build_leader_lock("postgres://u@db/bot", scope="x"), PostgresAdvisoryLock)

    database = tmp_path / "data" / "cryptouniverse.db"
    sqlite = build_leader_lock(f"sqlite+aiosqlite:///{database}", scope="default:42", redis_url="redis://r")
    assert isinstance(sqlite, FileLock)
    assert sqlite.path.parent == database.parent and sqlite.path.name.startswith(
        "cryptouniverse.db.scheduler-"
    )
    other = build_leader_lock(f"sqlite+aiosqlite:///{database}", scope="default:43")
    assert isinstance(other, FileLock) and other.path != sqlite.path

    assert isinstance(build_leader_lock("sqlite+aiosqlite://", scope="x"), ProcessLock)
    assert isinstance(build_leader_lock("sqlite+aiosqlite:///:memory:", scope="x"), ProcessLock)

    redis = build_leader_lock(
        "postgresql+asyncpg://u@db/bot", scope="default:42", backend="redis", redis_url="redis://r:6379/0"
    )
    assert isinstance(redis, RedisLeaseLock) and redis.key == "cryptouniverse:leader:scheduler:default:42"
    await redis.close()
    with pytest.raises(ValueError, match="REDIS_URL"):
        build_leader_lock("sqlite+aiosqlite:///x.db", scope="x", backend="redis")
    with pytest.raises(ValueError, match="PostgreSQL"):
        build_leader_lock("sqlite+aiosqlite:///x.db", scope="x", backend="postgres")
