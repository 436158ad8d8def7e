"""A few PostgreSQL driver connections for single-statement work outside ORM sessions.

Each statement runs on its own (autocommitted), so a connection carries no state between uses: taking one
is popping it from a list, with no reset, no pool events and no round trip. A connection that failed other
than by a server-side error is dropped, as is one the server closed or one past its recycle age.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

# SQLAlchemy's own connect options, not asyncpg's
_ADAPTER_OPTIONS = ("prepared_statement_cache_size", "prepared_statement_name_func", "async_creator_fn")


class NativePool:
    def __init__(self, engine: AsyncEngine, *, size: int = 10, recycle: float = 1800.0) -> None:
        _args, options = engine.dialect.create_connect_args(engine.url)
        for name in _ADAPTER_OPTIONS:
            options.pop(name, None)
        self._options: dict[str, Any] = dict(options)
        self._recycle = recycle
        self._slots = asyncio.Semaphore(size)
        self._idle: list[tuple[asyncpg.Connection, float]] = []
        self._closed = False

    async def _connect(self) -> tuple[asyncpg.Connection, float]:
        return await asyncpg.connect(**self._options), time.monotonic()

    def _take_idle(self) -> tuple[asyncpg.Connection, float] | None:
        while self._idle:
            connection, opened = self._idle.pop()
            if not connection.is_closed() and time.monotonic() - opened < self._recycle:
                return connection, opened
            connection.terminate()
        return None

    def _put_back(self, entry: tuple[asyncpg.Connection, float]) -> None:
        if self._closed:
            entry[0].terminate()
        else:
            self._idle.append(entry)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._slots:
            entry = self._take_idle() or await self._connect()
            try:
                yield entry[0]
            except BaseException as exc:
                if isinstance(exc, asyncpg.PostgresError):  # reported by the server: the connection is fine
                    self._put_back(entry)
                else:  # its state is unknown (cancelled mid-statement, network error): drop it
                    entry[0].terminate()
                raise
            self._put_back(entry)

    async def close(self) -> None:
        """Close the idle connections; a connection used after this is closed after its statement."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            try:
                await asyncio.wait_for(connection.close(), 5)
            except Exception:
                connection.terminate()
