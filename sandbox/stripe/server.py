"""``StripeEmulator``: the Stripe API, hosted Checkout pages, webhook delivery and test controls on one local
port."""

from __future__ import annotations

import copy
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from sandbox.stripe.api import ApiFrontend, Failure, RequestRecord
from sandbox.stripe.billing import DEFAULT_API_VERSION, Billing
from sandbox.stripe.control import setup_control_routes
from sandbox.stripe.pages import setup_page_routes
from sandbox.stripe.store import Obj, Store
from sandbox.stripe.webhooks import Delivery, WebhookDispatcher, WebhookEndpoint

DEFAULT_API_KEY = "sk_test_sandbox"


class StripeEmulator:
    """A local Stripe: point stripe-python at :attr:`base_url`; authenticate with one of :attr:`api_keys`."""

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        *,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        api_version: str = DEFAULT_API_VERSION,
        webhook_retry_delays: Iterable[float] = (1.0, 2.0, 5.0),
        webhook_timeout: float = 10.0,
        public_url: str | None = None,
    ) -> None:
        self.api_keys: set[str] = {api_key}
        self.api_key = api_key
        self.public_url = public_url.rstrip("/") if public_url else None
        self.rng = random.Random(seed if seed is not None else secrets.randbits(64))
        self.clock = clock
        self.store = Store(self.rng)
        self.webhooks = WebhookDispatcher(self.store, webhook_retry_delays, webhook_timeout)
        self.billing = Billing(
            self.store,
            clock,
            checkout_url=lambda session_id: f"{self.page_url}/checkout/{session_id}",
            invoice_url=lambda invoice_id: f"{self.page_url}/invoices/{invoice_id}",
            on_event=self.webhooks.on_event,
            api_version=api_version,
        )
        self.api = ApiFrontend(self)
        self.host = "127.0.0.1"
        self.port = 0
        self._runner: web.AppRunner | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        self.api.add_routes(app)
        setup_page_routes(app, self)
        setup_control_routes(app, self)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        address = self._runner.addresses[-1]
        self.host, self.port = host, int(address[1])
        await self.webhooks.start()
        return self.base_url

    async def stop(self) -> None:
        await self.webhooks.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> StripeEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def page_url(self) -> str:
        """Where people reach the hosted pages: ``public_url`` when given, else :attr:`base_url`."""
        return self.public_url or self.base_url

    def add_api_key(self, key: str) -> None:
        self.api_keys.add(key)

    # -- webhooks --------------------------------------------------------------------------------------------
    def add_webhook_endpoint(
        self, url: str, secret: str | None = None, enabled_events: Iterable[str] = ("*",)
    ) -> WebhookEndpoint:
        """Deliver events (those matching ``enabled_events``; ``*`` is all) to ``url``, signed with ``secret``
        (a new ``whsec_...`` when not given; read it from the returned endpoint's ``secret``)."""
        endpoint = WebhookEndpoint(
            id=self.store.new_id("we"),
            url=url,
            secret=secret or "whsec_" + "".join(self.rng.choice("0123456789abcdef") for _ in range(64)),
            enabled_events=list(enabled_events),
            created=int(self.clock()),
        )
        return self.webhooks.add_endpoint(endpoint)

    def remove_webhook_endpoint(self, endpoint_id: str) -> None:
        if self.webhooks.remove_endpoint(endpoint_id) is None:
            raise KeyError(f"no such webhook endpoint: {endpoint_id}")

    @property
    def webhook_endpoints(self) -> list[WebhookEndpoint]:
        return list(self.webhooks.endpoints.values())

    def hold_webhooks(self) -> None:
        """Keep new events from being delivered until :meth:`resume_webhooks` or :meth:`release_webhooks`."""
        self.webhooks.hold()

    def resume_webhooks(self) -> None:
        """Deliver automatically again, the held events first, in the order they were recorded."""
        self.webhooks.resume()

    def held_events(self) -> list[str]:
        return self.webhooks.held_events()

    async def release_webhooks(self, event_ids: Iterable[str] | None = None) -> list[Delivery]:
        """Deliver held events now: all, or the given ones in the given order (the others stay held)."""
        return await self.webhooks.release(event_ids)

    async def deliver_event(
        self,
        event_id: str,
        endpoint_id: str | None = None,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> list[Delivery]:
        """Deliver an event again (a duplicate), optionally signed with a wrong ``secret``, a stale
        ``timestamp`` or a literal ``signature`` header."""
        return await self.webhooks.deliver(
            event_id, endpoint_id, secret=secret, timestamp=timestamp, signature=signature
        )

    async def wait_for_webhooks(self, seconds: float = 10.0) -> None:
        """Wait until every queued delivery and scheduled retry has finished."""
        await self.webhooks.drain(seconds)

    @property
    def deliveries(self) -> list[Delivery]:
        return list(self.webhooks.deliveries)

    # -- what a customer or time does ------------------------------------------------------------------------
    def pay_checkout_session(self, session_id: str, email: str | None = None, name: str | None = None) -> Obj:
        """Complete a Checkout Session as the customer paying on the hosted page would."""
        return copy.deepcopy(self.billing.complete_checkout_session(session_id, email=email, name=name))

    def advance_subscription(self, subscription_id: str, fail: bool = False) -> Obj | None:
        """Start the subscription's next period: a ``subscription_cycle`` invoice is paid (``invoice.paid``)
        or, with ``fail``, declined (``invoice.payment_failed``, status ``past_due``). A subscription set to
        cancel at period end ends instead (``customer.subscription.deleted``) and None is returned."""
        invoice = self.billing.advance_subscription(subscription_id, fail=fail)
        return copy.deepcopy(invoice) if invoice is not None else None

    def pay_invoice(self, invoice_id: str, fail: bool = False) -> Obj:
        """Retry an open invoice's payment (the customer fixed their card), or decline it again with
        ``fail``."""
        return copy.deepcopy(self.billing.pay_invoice(invoice_id, fail=fail))

    # -- inspection ------------------------------------------------------------------------------------------
    def get(self, object_id: str) -> Obj:
        obj = self.store.find(object_id)
        if obj is None:
            raise KeyError(object_id)
        return copy.deepcopy(obj)

    def objects(self, object_type: str) -> list[Obj]:
        """Every object of a type (``"subscription"``, ``"checkout.session"``, ...), oldest first."""
        return [copy.deepcopy(o) for o in reversed(self.store.all(object_type))]

    def events(self, event_type: str | None = None) -> list[Obj]:
        """Recorded events, oldest first, optionally of one type."""
        return [e for e in self.objects("event") if event_type is None or e["type"] == event_type]

    @property
    def requests(self) -> list[RequestRecord]:
        """API requests (up to 100 000), oldest first."""
        return list(self.api.log)

    def request_counts(self) -> Counter[str]:
        """Requests per endpoint, keyed ``"METHOD /path"``."""
        return Counter(self.api.counts)

    def reset_log(self) -> None:
        self.api.clear_log()

    def fail_next(self, n: int = 1, status: int = 500, path: str | None = None) -> None:
        """Answer the next ``n`` API requests (optionally only those whose path contains ``path``) with
        Stripe's ``api_error`` and HTTP ``status``."""
        self.api.failures.extend(Failure(status, path) for _ in range(n))

    def info(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "api_key": self.api_key,
            "webhook_endpoints": [e.to_api(with_secret=True) for e in self.webhook_endpoints],
            "webhooks_held": self.webhooks.held,
        }
