"""Webhook endpoints and event delivery: events are POSTed as JSON with a ``Stripe-Signature`` header
(``t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<payload>")>``), retried on failure, and can be held back,
released in a chosen order, or delivered again, signed with another secret or an old timestamp."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from sandbox.stripe.store import Obj, Store

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


def signature_header(payload: str, secret: str, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event_payload(event: Obj) -> str:
    """The body Stripe POSTs: the event as pretty-printed JSON."""
    return json.dumps(event, indent=2)


@dataclass
class WebhookEndpoint:
    id: str
    url: str
    secret: str
    enabled_events: list[str]
    created: int
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    api_version: str | None = None
    status: str = "enabled"

    def wants(self, event_type: str) -> bool:
        return self.status == "enabled" and ("*" in self.enabled_events or event_type in self.enabled_events)

    def to_api(self, with_secret: bool = False) -> Obj:
        obj: Obj = {
            "id": self.id,
            "object": "webhook_endpoint",
            "api_version": self.api_version,
            "application": None,
            "created": self.created,
            "description": self.description,
            "enabled_events": list(self.enabled_events),
            "livemode": False,
            "metadata": dict(self.metadata),
            "status": self.status,
            "url": self.url,
        }
        if with_secret:
            obj["secret"] = self.secret
        return obj


@dataclass
class Delivery:
    """One POST of an event to an endpoint, and what the endpoint answered."""

    event_id: str
    event_type: str
    endpoint_id: str
    url: str
    payload: str
    signature: str
    timestamp: int
    attempt: int
    manual: bool
    status: int | None = None
    error: str | None = None
    response_body: str = ""
    at: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def to_json(self) -> Obj:
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "endpoint_id": self.endpoint_id,
            "url": self.url,
            "signature": self.signature,
            "timestamp": self.timestamp,
            "attempt": self.attempt,
            "manual": self.manual,
            "status": self.status,
            "error": self.error,
            "ok": self.ok,
            "at": self.at,
        }


class WebhookDispatcher:
    """Delivers every recorded event to the endpoints that want it, in the order the events were recorded.

    While held, new events wait in a queue until :meth:`resume` (automatic delivery, in order) or
    :meth:`release` (now, in the order given). Failed automatic deliveries are retried after each of
    ``retry_delays`` seconds."""

    def __init__(
        self,
        store: Store,
        retry_delays: Iterable[float] = (1.0, 2.0, 5.0),
        timeout: float = 10.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.retry_delays = tuple(retry_delays)
        self.timeout = timeout
        self.wall_clock = wall_clock
        self.endpoints: dict[str, WebhookEndpoint] = {}
        self.deliveries: list[Delivery] = []
        self.held = False
        self._held: list[str] = []
        self._queue: deque[str] = deque()
        self._done: set[tuple[str, str]] = set()
        self._targets: dict[str, list[str]] = {}  # event id -> endpoint ids it was recorded for
        self._wakeup: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._busy = 0
        self._worker: asyncio.Task[None] | None = None
        self._retries: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._update_idle()
        self._worker = asyncio.create_task(self._run(), name="stripe-webhooks")
        if self._queue:
            self._wakeup.set()

    async def stop(self) -> None:
        tasks = [t for t in (self._worker, *self._retries) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._worker = None
        self._retries.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- endpoints -------------------------------------------------------------------------------------------
    def add_endpoint(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        self.endpoints[endpoint.id] = endpoint
        return endpoint

    def remove_endpoint(self, endpoint_id: str) -> WebhookEndpoint | None:
        return self.endpoints.pop(endpoint_id, None)

    # -- events ----------------------------------------------------------------------------------------------
    def on_event(self, event: Obj) -> None:
        targets = [e.id for e in self.endpoints.values() if e.wants(event["type"])]
        event["pending_webhooks"] = len(targets)
        if not targets:
            return
        self._targets[event["id"]] = targets
        if self.held:
            self._held.append(event["id"])
        else:
            self._enqueue([event["id"]])

    def hold(self) -> None:
        self.held = True

    def resume(self) -> None:
        """Deliver automatically again, starting with the held events in the order they were recorded."""
        self.held = False
        held, self._held = self._held, []
        self._enqueue(held)

    def held_events(self) -> list[str]:
        return list(self._held)

    async def release(self, event_ids: Iterable[str] | None = None) -> list[Delivery]:
        """Deliver held events now: all of them in recorded order, or the given ones in the given order (the
        rest stay held). Returns the deliveries made."""
        chosen = list(self._held) if event_ids is None else list(event_ids)
        unknown = [e for e in chosen if e not in self._held]
        if unknown:
            raise KeyError(f"not held: {', '.join(unknown)}")
        for event_id in chosen:
            self._held.remove(event_id)
        results: list[Delivery] = []
        for event_id in chosen:
            results.extend(await self._deliver_pending(event_id))
        return results

    async def deliver(
        self,
        event_id: str,
        endpoint_id: str | None = None,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> list[Delivery]:
        """Deliver an event once more (a duplicate) to one endpoint or every endpoint that wants it,
        optionally signed with another ``secret``, at another ``timestamp``, or with a literal ``signature``
        header."""
        event = self.store.find(event_id, "event")
        if event is None:
            raise KeyError(f"no such event: {event_id}")
        if endpoint_id is not None:
            if endpoint_id not in self.endpoints:
                raise KeyError(f"no such webhook endpoint: {endpoint_id}")
            endpoints = [self.endpoints[endpoint_id]]
        else:
            endpoints = [e for e in self.endpoints.values() if e.wants(event["type"])]
        results = []
        for endpoint in endpoints:
            results.append(
                await self._post(
                    event, endpoint, 1, manual=True, secret=secret, timestamp=timestamp, signature=signature
                )
            )
        return results

    async def drain(self, seconds: float = 10.0) -> None:
        """Wait until every queued delivery (and scheduled retry) has finished."""
        if self._idle is None:
            return
        await asyncio.wait_for(self._idle.wait(), seconds)

    # -- delivery --------------------------------------------------------------------------------------------
    def _enqueue(self, event_ids: list[str]) -> None:
        if not event_ids:
            return
        self._queue.extend(event_ids)
        self._update_idle()
        if self._wakeup is not None:
            self._wakeup.set()

    def _update_idle(self) -> None:
        if self._idle is None:
            return
        if self._queue or self._busy or self._retries:
            self._idle.clear()
        else:
            self._idle.set()

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                event_id = self._queue.popleft()
                self._busy += 1
                try:
                    await self._deliver_pending(event_id)
                finally:
                    self._busy -= 1
                    self._update_idle()

    async def _deliver_pending(self, event_id: str) -> list[Delivery]:
        event = self.store.find(event_id, "event")
        if event is None:
            return []
        results = []
        for endpoint_id in self._targets.get(event_id, []):
            endpoint = self.endpoints.get(endpoint_id)
            if endpoint is None or (event_id, endpoint_id) in self._done:
                continue
            delivery = await self._post(event, endpoint, 1, manual=False)
            results.append(delivery)
            if not delivery.ok:
                self._schedule_retry(event_id, endpoint_id, 2)
        return results

    def _schedule_retry(self, event_id: str, endpoint_id: str, attempt: int) -> None:
        if attempt - 2 >= len(self.retry_delays) or self._idle is None:
            return
        delay = self.retry_delays[attempt - 2]
        task = asyncio.create_task(self._retry(event_id, endpoint_id, attempt, delay))
        self._retries.add(task)
        task.add_done_callback(self._retry_done)
        self._update_idle()

    def _retry_done(self, task: asyncio.Task[None]) -> None:
        self._retries.discard(task)
        self._update_idle()

    async def _retry(self, event_id: str, endpoint_id: str, attempt: int, delay: float) -> None:
        await asyncio.sleep(delay)
        event = self.store.find(event_id, "event")
        endpoint = self.endpoints.get(endpoint_id)
        if event is None or endpoint is None or (event_id, endpoint_id) in self._done:
            return
        delivery = await self._post(event, endpoint, attempt, manual=False)
        if not delivery.ok:
            self._schedule_retry(event_id, endpoint_id, attempt + 1)

    async def _post(
        self,
        event: Obj,
        endpoint: WebhookEndpoint,
        attempt: int,
        *,
        manual: bool,
        secret: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> Delivery:
        payload = event_payload(event)
        stamp = int(self.wall_clock()) if timestamp is None else int(timestamp)
        header = (
            signature
            if signature is not None
            else signature_header(payload, secret or endpoint.secret, stamp)
        )
        delivery = Delivery(
            event_id=event["id"],
            event_type=event["type"],
            endpoint_id=endpoint.id,
            url=endpoint.url,
            payload=payload,
            signature=header,
            timestamp=stamp,
            attempt=attempt,
            manual=manual,
        )
        self.deliveries.append(delivery)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": header,
            "User-Agent": USER_AGENT,
            "Cache-Control": "no-cache",
            "Accept": "*/*; q=0.5, application/xml",
        }
        session = self._session
        owned = session is None
        if session is None:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        try:
            async with session.post(endpoint.url, data=payload.encode(), headers=headers) as response:
                delivery.status = response.status
                delivery.response_body = (await response.text(errors="replace"))[:2000]
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
        finally:
            if owned:
                await session.close()
        key = (event["id"], endpoint.id)
        if (
            delivery.ok
            and not manual
            and key not in self._done
            and endpoint.id in self._targets.get(event["id"], [])
        ):
            self._done.add(key)
            event["pending_webhooks"] = max(0, int(event["pending_webhooks"]) - 1)
        return delivery


def summary(deliveries: Iterable[Delivery]) -> list[dict[str, Any]]:
    return [d.to_json() for d in deliveries]
