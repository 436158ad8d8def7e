"""Leader election: of all the bot processes sharing one database, exactly one runs the scheduled jobs.

Every process builds its `AsyncIOScheduler` and starts it paused; a `LeaderElection` runs beside it and
resumes the scheduler when this process wins the lock, pauses it when the lock is lost or given up.

Which lock (`build_leader_lock`, backend "auto"):

- **PostgreSQL database: a session-level advisory lock** (`pg_try_advisory_lock`) held on one dedicated
  asyncpg connection outside the engine's pool. The database is the shared state the jobs work on, so
  the lock lives there too: every process that can reach the data can reach the lock, and no other
  service has to be up for the jobs to run. When the holder's connection ends (the process died, the
  backend was terminated, the network dropped it) the server releases the lock by itself. The lock
  connection sets server-side TCP keepalives derived from the TTL, so a holder whose host vanished is
  noticed too. It needs a session-pinned connection: behind PgBouncer in transaction pooling mode,
  choose the Redis backend.
- **SQLite file: an OS file lock** (`flock`, exclusive and non-blocking; `msvcrt.locking` on Windows) on a
  lock file next to the database. A SQLite file can only be shared safely by processes on one machine,
  which are exactly the processes a local file lock covers, and the OS releases it when the holder dies.
  Redis adds nothing here but a dependency that can be down, so "auto" uses the file lock even when
  REDIS_URL is set.
- **Redis (explicit `backend="redis"`): a lease**, `SET key token NX PX ttl`, extended every ttl/3 with a
  compare-and-extend script and deleted on release with compare-and-delete. For deployments where a
  session-level advisory lock is not available (transaction-pooling proxies).
- SQLite in memory: nothing outside this process can see the database, so the lock only excludes the
  elections of this process (`ProcessLock`).

Safety: a holder confirms its lock every ttl/3 (Postgres `SELECT 1`, Redis compare-and-extend, the lock
file still being the one at its path), each confirmation bounded by ttl/4; it steps down as soon as one
fails or times out (and at once when the Postgres connection closes), so it never believes it leads for
longer than 5/6 ttl after the last moment the lock was known to be its own. A lock can be lost while its
holder lives (a backend terminated, a key deleted or lost in a Redis failover, a lock file removed), so a
new holder waits one ttl after acquiring before it acts: a previous holder that lost the lock without
noticing has stepped down by then.

Takeover after the leader stops or dies: within retry + ttl (Postgres, file lock, Redis after a clean
release), ttl + retry + ttl (Redis, when a dead holder's key has to expire first). A job already running
when its process steps down is not interrupted; the settle wait of the next leader covers jobs shorter
than the TTL.

The lock key is derived from a name ("scheduler") and a scope (the tenant and bot), so two different bots
on one database do not block each other.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import inspect
import os
import random
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import structlog
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    import asyncpg
    from redis.asyncio import Redis

log = structlog.get_logger(__name__)

Backend = Literal["auto", "postgres", "redis", "file", "process"]
Callback = Callable[[], Awaitable[None] | None]

_ACQUIRE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 1
end
return 0
"""
_EXTEND_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def lock_key(name: str, scope: str) -> int:
    """A stable signed 64-bit advisory lock key for a name within a scope (tenant, bot)."""
    digest = hashlib.blake2b(f"{name}\x00{scope}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def holder_id() -> str:
    """Who holds a lock, as written into Redis values and lock files: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class LeaderLock(abc.ABC):
    """A non-blocking, exclusive lock that one election at a time can hold.

    `ttl` bounds how long the lock may go unconfirmed: the election confirms it every ttl/3. `lost` is
    set when the backend learns, between confirmations, that the lock is gone (a closed connection)."""

    backend: ClassVar[str]
    can_be_lost: ClassVar[bool] = True

    def __init__(self, *, ttl: float) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.ttl = ttl
        self.lost = asyncio.Event()

    @abc.abstractmethod
    async def acquire(self) -> bool:
        """Try once, without waiting for the current holder; True when this lock now holds it."""

    @abc.abstractmethod
    async def confirm(self) -> bool:
        """Still held (for a lease: extended)? False or an exception means it is lost."""

    @abc.abstractmethod
    async def release(self) -> None:
        """Give the lock up so another process can take it at once. Safe to call when not held."""

    @abc.abstractmethod
    def abandon(self) -> None:
        """Forget the lock after a failure, without a round trip; the backend frees it by itself."""

    async def close(self) -> None:
        """Release and free the resources (connections, files)."""
        await self.release()

    @abc.abstractmethod
    def describe(self) -> str:
        """Which lock this is, for logs and /healthz (no credentials)."""


class PostgresAdvisoryLock(LeaderLock):
    """`pg_try_advisory_lock(key)` on a dedicated connection, held as long as the connection lives."""

    backend = "postgres"

    def __init__(
        self, url: str, key: int, *, ttl: float, connect_timeout: float = 5.0, application_name: str = ""
    ) -> None:
        super().__init__(ttl=ttl)
        self.key = key
        self._dsn = _asyncpg_dsn(url)
        self._connect_timeout = connect_timeout
        self._application_name = (application_name or "cryptouniverse-leader")[:63]
        self._conn: asyncpg.Connection | None = None
        self._held = False

    @property
    def backend_pid(self) -> int | None:
        """The server process id of the lock connection (for pg_terminate_backend and diagnostics)."""
        if self._conn is None or self._conn.is_closed():
            return None
        return int(self._conn.get_server_pid())

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        import asyncpg

        idle = max(1, round(self.ttl))
        interval = max(1, round(self.ttl / 3))
        conn = await asyncpg.connect(
            self._dsn,
            timeout=self._connect_timeout,
            server_settings={
                "application_name": self._application_name,
                "tcp_keepalives_idle": str(idle),
                "tcp_keepalives_interval": str(interval),
                "tcp_keepalives_count": "3",
            },
        )
        conn.add_termination_listener(self._on_terminated)
        self._conn = conn
        return conn

    def _on_terminated(self, conn: Any) -> None:
        if self._held and (self._conn is None or self._conn is conn or self._conn.is_closed()):
            self.lost.set()

    async def acquire(self) -> bool:
        self.lost.clear()
        conn = await self._connection()
        try:
            self._held = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key))
        except BaseException:
            self.abandon()
            raise
        return self._held

    async def confirm(self) -> bool:
        conn = self._conn
        if not self._held or conn is None or conn.is_closed():
            return False
        return bool(await conn.fetchval("SELECT 1") == 1)

    async def release(self) -> None:
        held, self._held = self._held, False
        conn = self._conn
        if not held or conn is None or conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.fetchval("SELECT pg_advisory_unlock($1)", self.key), self.ttl)
        except (Exception, asyncio.CancelledError):
            self.abandon()
            raise

    def abandon(self) -> None:
        self._held = False
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    async def close(self) -> None:
        try:
            await self.release()
        finally:
            conn, self._conn = self._conn, None
            if conn is not None and not conn.is_closed():
                try:
                    await conn.close(timeout=self.ttl)
                except Exception:
                    conn.terminate()

    def describe(self) -> str:
        return f"postgres advisory lock {self.key}"


class RedisLeaseLock(LeaderLock):
    """A Redis key holding this process's token, set with NX and a TTL and extended while held."""

    backend = "redis"

    def __init__(self, redis: Redis, key: str, *, ttl: float, owns_client: bool = False) -> None:
        super().__init__(ttl=ttl)
        self.redis = redis
        self.key = key
        self.token = holder_id()
        self._owns_client = owns_client
        self._held = False
        self._acquire = redis.register_script(_ACQUIRE_SCRIPT)
        self._extend = redis.register_script(_EXTEND_SCRIPT)
        self._release = redis.register_script(_RELEASE_SCRIPT)

    @classmethod
    def from_url(cls, url: str, key: str, *, ttl: float) -> RedisLeaseLock:
        from redis.asyncio import Redis

        timeout = max(ttl / 4, 0.5)
        client = Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        return cls(client, key, ttl=ttl, owns_client=True)

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self.ttl * 1000))

    async def acquire(self) -> bool:
        self.lost.clear()
        self._held = bool(await self._acquire(keys=[self.key], args=[self.token, self._ttl_ms]))
        return self._held

    async def confirm(self) -> bool:
        if not self._held:
            return False
        return bool(await self._extend(keys=[self.key], args=[self.token, self._ttl_ms]))

    async def release(self) -> None:
        held, self._held = self._held, False
        if held:
            await asyncio.wait_for(self._release(keys=[self.key], args=[self.token]), self.ttl)

    def abandon(self) -> None:
        self._held = False

    async def close(self) -> None:
        try:
            await self.release()
        finally:
            if self._owns_client:
                await self.redis.aclose()

    def describe(self) -> str:
        return f"redis lease {self.key}"


if sys.platform == "win32":
    import msvcrt

    def _try_lock_file(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock_file(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock_file(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class FileLock(LeaderLock):
    """An exclusive OS lock on a file; the OS drops it when the holding process ends.

    The lock belongs to the open file, so two elections in one process exclude each other as well. The
    file is never deleted: a holder whose file was removed or replaced gives the lock up."""

    backend = "file"

    def __init__(self, path: Path | str, *, ttl: float) -> None:
        super().__init__(ttl=ttl)
        self.path = Path(path)
        self._fd: int | None = None

    async def acquire(self) -> bool:
        self.lost.clear()
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if not _try_lock_file(fd):
                os.close(fd)
                return False
            if sys.platform != "win32":
                os.ftruncate(fd, 0)
                os.write(fd, f"{holder_id()}\n".encode())
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    async def confirm(self) -> bool:
        if self._fd is None:
            return False
        try:
            mine, there = os.fstat(self._fd), os.stat(self.path)
        except OSError:
            return False
        return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)

    async def release(self) -> None:
        self.abandon()

    def abandon(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            _unlock_file(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def describe(self) -> str:
        return f"file lock {self.path}"


class ProcessLock(LeaderLock):
    """Excludes the elections of this process only: for a database no other process can open."""

    backend = "process"
    can_be_lost = False
    _held_keys: ClassVar[set[str]] = set()

    def __init__(self, key: str, *, ttl: float) -> None:
        super().__init__(ttl=ttl)
        self.key = key
        self._held = False

    async def acquire(self) -> bool:
        self.lost.clear()
        if not self._held and self.key not in self._held_keys:
            self._held_keys.add(self.key)
            self._held = True
        return self._held

    async def confirm(self) -> bool:
        return self._held

    async def release(self) -> None:
        self.abandon()

    def abandon(self) -> None:
        if self._held:
            self._held = False
            self._held_keys.discard(self.key)

    def describe(self) -> str:
        return f"process lock {self.key}"


def _asyncpg_dsn(url: str) -> str:
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    query = {
        k: v
        for k, v in parsed.query.items()
        if k not in {"prepared_statement_cache_size", "prepared_statement_name_func", "async_fallback"}
    }
    return parsed.set(drivername="postgresql", query=query).render_as_string(hide_password=False)


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    database = parsed.database or ""
    if not database or database == ":memory:" or parsed.query.get("mode") == "memory":
        return None
    if database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
    return Path(database)


def build_leader_lock(
    database_url: str,
    *,
    scope: str,
    name: str = "scheduler",
    ttl: float = 10.0,
    backend: Backend = "auto",
    redis_url: str | None = None,
    redis: Redis | None = None,
) -> LeaderLock:
    """The lock for the processes sharing `database_url` (see the module docstring for the choice)."""
    dialect = make_url(database_url.replace("postgres://", "postgresql://", 1)).get_backend_name()
    if backend == "auto":
        if dialect == "postgresql":
            backend = "postgres"
        elif dialect == "sqlite":
            backend = "file" if _sqlite_path(database_url) is not None else "process"
        else:
            raise ValueError(f"no leader lock for a {dialect} database; choose the redis backend")
    if backend == "postgres":
        if dialect != "postgresql":
            raise ValueError("the postgres leader lock needs a PostgreSQL database")
        return PostgresAdvisoryLock(
            database_url, lock_key(name, scope), ttl=ttl, application_name=f"cryptouniverse {name} leader"
        )
    if backend == "redis":
        key = f"cryptouniverse:leader:{name}:{scope}"
        if redis is not None:
            return RedisLeaseLock(redis, key, ttl=ttl)
        if not redis_url:
            raise ValueError("the redis leader lock needs REDIS_URL")
        return RedisLeaseLock.from_url(redis_url, key, ttl=ttl)
    if backend == "file":
        path = _sqlite_path(database_url) if dialect == "sqlite" else None
        if path is None:
            raise ValueError("the file leader lock needs a SQLite database file")
        suffix = hashlib.blake2b(scope.encode(), digest_size=4).hexdigest()
        return FileLock(path.with_name(f"{path.name}.{name}-{suffix}.lock"), ttl=ttl)
    if backend == "process":
        return ProcessLock(f"{name}:{scope}:{database_url}", ttl=ttl)
    raise ValueError(f"unknown leader lock backend {backend!r}")


class LeaderElection:
    """Runs as a task: tries the lock every `retry_interval` seconds; while it holds the lock, confirms it
    every ttl/3 and is the leader (after the settle wait, see the module docstring). Calls `on_elected`
    when it becomes the leader and `on_deposed` when it stops being one (lock lost, or `stop()`).
    Callbacks may be plain functions or coroutine functions."""

    def __init__(
        self,
        lock: LeaderLock,
        *,
        retry_interval: float = 2.0,
        on_elected: Callback | None = None,
        on_deposed: Callback | None = None,
        name: str = "scheduler",
    ) -> None:
        if retry_interval <= 0:
            raise ValueError("retry_interval must be positive")
        self.lock = lock
        self.name = name
        self.retry_interval = retry_interval
        self.on_elected = on_elected
        self.on_deposed = on_deposed
        self._leader = False
        self._holding = False
        self._leader_since: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._last_error: str | None = None
        self._changed = asyncio.Event()
        self._log = log.bind(election=name, lock=lock.describe(), pid=os.getpid())

    @property
    def is_leader(self) -> bool:
        return self._leader

    @property
    def role(self) -> Literal["leader", "candidate", "follower", "stopped"]:
        if self._leader:
            return "leader"
        if self._stopped or self._task is None:
            return "stopped"
        return "candidate" if self._holding else "follower"

    @property
    def settle_seconds(self) -> float:
        return self.lock.ttl if self.lock.can_be_lost else 0.0

    @property
    def takeover_bound(self) -> float:
        """Longest wait, after the leader stopped or its lock was freed, until another process leads."""
        return self.retry_interval + self.settle_seconds

    def status(self) -> dict[str, Any]:
        """For /healthz."""
        since = self._leader_since
        return {
            "role": self.role,
            "leader": self._leader,
            "lock": self.lock.backend,
            "leader_for_seconds": round(time.monotonic() - since, 1) if since is not None else None,
            "error": self._last_error,
        }

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the election has already been started")
        self._stopped = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"leader-election-{self.name}")

    async def stop(self) -> None:
        """Step down (calling `on_deposed` if leading) and release the lock for another process."""
        if self._stopped:
            return
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._step_down("stopped", graceful=True)
        try:
            await self.lock.close()
        except Exception as exc:
            self._log.warning("leader.release_failed", error=_describe(exc))

    async def wait_until_leader(self) -> None:
        """Returns once this election leads (bound it with `asyncio.timeout`)."""
        while not self._leader:
            self._changed.clear()
            await self._changed.wait()

    async def _run(self) -> None:
        while True:
            try:
                if await self._try_acquire():
                    reason = await self._hold()
                    await self._step_down(reason, graceful=reason == "callback_failed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._log.exception("leader.election_failed", error=_describe(exc))
                await self._step_down("error", graceful=False)
            await asyncio.sleep(self.retry_interval * random.uniform(0.9, 1.1))

    async def _try_acquire(self) -> bool:
        try:
            async with asyncio.timeout(self.lock.ttl):
                acquired = await self.lock.acquire()
        except Exception as exc:
            self.lock.abandon()
            self._report_error(exc)
            return False
        self._report_error(None)
        return acquired

    async def _hold(self) -> str:
        """Holds the lock until it is lost; returns why it was lost."""
        self._holding = True
        interval = self.lock.ttl / 3
        ready_at = time.monotonic() + self.settle_seconds
        if self.settle_seconds:
            self._log.info("leader.lock_acquired", settle_seconds=self.settle_seconds)
        while True:
            now = time.monotonic()
            if not self._leader and now >= ready_at:
                if not await self._elect():
                    return "callback_failed"
                now = time.monotonic()
            wait = interval if self._leader else min(interval, max(ready_at - now, 0.0))
            if await self._lost_within(wait):
                return "connection_lost"
            try:
                async with asyncio.timeout(self.lock.ttl / 4):
                    confirmed = await self.lock.confirm()
            except TimeoutError:
                return "confirm_timeout"
            except Exception as exc:
                self._report_error(exc)
                return "confirm_failed"
            if not confirmed:
                return "lock_lost"

    async def _lost_within(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self.lock.lost.wait()
        except TimeoutError:
            return False
        return True

    async def _elect(self) -> bool:
        self._leader = True
        self._leader_since = time.monotonic()
        self._changed.set()
        self._log.info("leader.elected")
        try:
            await _call(self.on_elected)
        except Exception as exc:
            self._log.exception("leader.on_elected_failed", error=_describe(exc))
            return False
        return True

    async def _step_down(self, reason: str, *, graceful: bool) -> None:
        was_leader, self._leader, self._holding = self._leader, False, False
        self._leader_since = None
        if was_leader:
            self._changed.set()
            if reason == "stopped":
                self._log.info("leader.deposed", reason=reason)
            else:
                self._log.warning("leader.deposed", reason=reason)
            try:
                await _call(self.on_deposed)
            except Exception as exc:
                self._log.exception("leader.on_deposed_failed", error=_describe(exc))
        if not graceful:
            self.lock.abandon()
            return
        try:
            await self.lock.release()
        except Exception as exc:
            self.lock.abandon()
            self._log.warning("leader.release_failed", error=_describe(exc))

    def _report_error(self, exc: BaseException | None) -> None:
        error = _describe(exc) if exc is not None else None
        if error == self._last_error:
            return
        if error is None:
            self._log.info("leader.lock_reachable")
        else:
            self._log.warning("leader.lock_unreachable", error=error)
        self._last_error = error


async def _call(callback: Callback | None) -> None:
    if callback is None:
        return
    result = callback()
    if inspect.isawaitable(result):
        await result


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
