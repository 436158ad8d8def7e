"""HTTP plumbing shared by the exchange front-ends: request log, fault injection, unknown-path handling."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

from sandbox.exchanges.ledger import Ledger
from sandbox.exchanges.market import Market

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LOG_LIMIT = 100_000  # requests kept in the log (counts are kept for all)


@dataclass
class RequestRecord:
    method: str
    path: str
    query: str
    body: str
    status: int = 0
    served: bool = True
    ts: float = field(default_factory=time.time)

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class _Failure:
    status: int | str
    path: str | None


class Faults:
    """Fault controls: outage, failing the next requests, and an order that is accepted but never answered."""

    def __init__(self) -> None:
        self.outage = False
        self._failures: list[_Failure] = []
        self.timeout_next_order = False
        self.timeout_delay = 30.0
        self.timeout_drop = False
        self.released = asyncio.Event()

    def fail_next(self, n: int, status: int | str = 500, path: str | None = None) -> None:
        self._failures.extend(_Failure(status, path) for _ in range(n))

    def take_failure(self, path: str) -> _Failure | None:
        for i, failure in enumerate(self._failures):
            if failure.path is None or failure.path in path:
                return self._failures.pop(i)
        return None

    def clear(self) -> None:
        self.outage = False
        self._failures.clear()
        self.timeout_next_order = False


class Frontend(ABC):
    """Base of one exchange protocol: subclasses add routes and the exchange's error shapes."""

    exchange_id = ""

    def __init__(self, market: Market, ledger: Ledger, faults: Faults) -> None:
        self.market = market
        self.ledger = ledger
        self.faults = faults
        self.log: deque[RequestRecord] = deque(maxlen=LOG_LIMIT)
        self._counts: Counter[str] = Counter()
        self._unserved: deque[RequestRecord] = deque(maxlen=LOG_LIMIT)

    # -- to be provided by the exchange ----------------------------------------------------------------------
    @abstractmethod
    def add_routes(self, app: web.Application) -> None:
        """The exchange's endpoints."""

    @abstractmethod
    def not_found(self, request: web.Request) -> web.Response:
        """The exchange's answer to a path it does not serve."""

    @abstractmethod
    def maintenance(self, request: web.Request) -> web.Response:
        """The exchange's answer during an outage."""

    @abstractmethod
    def is_order_creation(self, request: web.Request) -> bool:
        """Whether the request creates an order (for the accept-then-timeout fault)."""

    # -- app -------------------------------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=1024 * 1024)
        self.add_routes(app)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.text() if request.body_exists else ""
        record = RequestRecord(request.method, request.path, request.query_string, body)
        self.log.append(record)
        self._counts[record.endpoint] += 1
        response = await self._dispatch(request, handler, record)
        record.status = response.status
        if not record.served:
            self._unserved.append(record)
        return response

    async def _dispatch(
        self,
        request: web.Request,
        handler: Handler,
        record: RequestRecord,
    ) -> web.StreamResponse:
        if self.faults.outage:
            return self.maintenance(request)
        failure = self.faults.take_failure(request.path)
        if failure is not None:
            if failure.status == "timeout":
                await self._hold(self.faults.timeout_delay)
                return web.Response(
                    status=504,
                    text="<html><body><h1>504 Gateway Time-out</h1></body></html>",
                    content_type="text/html",
                )
            status = int(failure.status)
            return web.Response(
                status=status,
                text=f"<html><body><h1>{status} Error</h1></body></html>",
                content_type="text/html",
            )
        self.market.sync()
        try:
            response = await handler(request)
        except web.HTTPNotFound:
            record.served = False
            return self.not_found(request)
        except web.HTTPMethodNotAllowed:
            record.served = False
            return self.not_found(request)
        if self.faults.timeout_next_order and self.is_order_creation(request) and response.status == 200:
            self.faults.timeout_next_order = False
            if self.faults.timeout_drop and request.transport is not None:
                request.transport.close()
                return response
            await self._hold(self.faults.timeout_delay)
        return response

    async def _hold(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.faults.released.wait(), timeout=seconds)

    # -- log -------------------------------------------------------------------------------------------------
    def counts(self) -> Counter[str]:
        return Counter(self._counts)

    def unserved(self) -> list[RequestRecord]:
        return list(self._unserved)

    def clear_log(self) -> None:
        self.log.clear()
        self._counts.clear()
        self._unserved.clear()


def dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return fmt(value)
    raise TypeError(type(value).__name__)


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=dumps(payload), status=status, content_type="application/json", headers=headers)


def fmt(value: Decimal | None, places: int | None = None) -> str:
    """A Decimal as a plain string (no exponent); with ``places``, fixed decimals."""
    if value is None:
        return "0"
    if places is not None:
        return f"{value.quantize(Decimal(1).scaleb(-places)):f}"
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def to_decimal(value: str | None) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        result = Decimal(value)
    except ArithmeticError:
        return None
    return result if result.is_finite() else None
