"""The ``/v1`` API: authentication, form-encoded parameters, idempotency keys, routing, the request log and
fault injection."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.stripe import errors
from sandbox.stripe.billing import RequestContext
from sandbox.stripe.errors import StripeError
from sandbox.stripe.params import Params, check_known, decode, get_array, get_bool, get_str, metadata_update
from sandbox.stripe.store import Obj, created_filter

if TYPE_CHECKING:
    from sandbox.stripe.server import StripeEmulator

LOG_LIMIT = 100_000
IDEMPOTENCY_TTL = 24 * 3600
Handler = Callable[..., Obj]


@dataclass
class RequestRecord:
    """One request to the API and the answer it got."""

    method: str
    path: str
    query: str
    body: str
    request_id: str
    api_key: str | None = None
    idempotency_key: str | None = None
    stripe_version: str | None = None
    params: Params = field(default_factory=dict)
    status: int = 0
    response: str = ""
    replayed: bool = False
    at: float = field(default_factory=time.time)

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"

    def json(self) -> Any:
        return json.loads(self.response) if self.response else None

    def to_json(self) -> Obj:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "body": self.body,
            "params": self.params,
            "request_id": self.request_id,
            "idempotency_key": self.idempotency_key,
            "stripe_version": self.stripe_version,
            "status": self.status,
            "replayed": self.replayed,
            "at": self.at,
        }


@dataclass
class _Saved:
    endpoint: str
    params: Params
    status: int
    body: str
    request_id: str
    at: float


@dataclass
class Failure:
    status: int
    path: str | None


class ApiFrontend:
    """Serves ``/v1/...`` for the emulator."""

    def __init__(self, emulator: StripeEmulator) -> None:
        self.emu = emulator
        self.billing = emulator.billing
        self.store = emulator.store
        self.log: deque[RequestRecord] = deque(maxlen=LOG_LIMIT)
        self.counts: Counter[str] = Counter()
        self.failures: list[Failure] = []
        self._idempotency: dict[tuple[str, str], _Saved] = {}
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._build_routes()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/v1/{tail:.*}", self.handle)

    # -- routing ---------------------------------------------------------------------------------------------
    def _route(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
        self._routes.append((method, regex, handler))

    def _build_routes(self) -> None:
        b = self.billing
        get = self._getter
        r = self._route
        r("POST", "/v1/checkout/sessions", b.create_checkout_session)
        r("GET", "/v1/checkout/sessions", b.list_checkout_sessions)
        r("GET", "/v1/checkout/sessions/{id}", lambda p, id: _retrieve(p, b.get_checkout_session(id)))
        r("POST", "/v1/checkout/sessions/{id}", self._update_session)
        r("POST", "/v1/checkout/sessions/{id}/expire", lambda p, id: _plain(p, b.expire_checkout_session, id))
        r("GET", "/v1/checkout/sessions/{id}/line_items", lambda p, id: b.checkout_line_items(id, p))
        r("POST", "/v1/customers", b.create_customer)
        r("GET", "/v1/customers", b.list_customers)
        r("GET", "/v1/customers/{id}", get("customer"))
        r("POST", "/v1/customers/{id}", lambda p, id: b.update_customer(id, p))
        r("POST", "/v1/products", b.create_product)
        r("GET", "/v1/products", b.list_products)
        r("GET", "/v1/products/{id}", get("product"))
        r("POST", "/v1/products/{id}", lambda p, id: b.update_product(id, p))
        r("POST", "/v1/prices", b.create_price)
        r("GET", "/v1/prices", b.list_prices)
        r("GET", "/v1/prices/{id}", get("price", "price"))
        r("POST", "/v1/prices/{id}", lambda p, id: b.update_price(id, p))
        r("GET", "/v1/payment_intents", b.list_payment_intents)
        r("GET", "/v1/payment_intents/{id}", get("payment_intent", "intent"))
        r("GET", "/v1/charges", b.list_charges)
        r("GET", "/v1/charges/{id}", get("charge", "charge"))
        r("POST", "/v1/refunds", b.create_refund)
        r("GET", "/v1/refunds", b.list_refunds)
        r("GET", "/v1/refunds/{id}", get("refund", "refund"))
        r("GET", "/v1/subscriptions", b.list_subscriptions)
        r("GET", "/v1/subscriptions/{id}", lambda p, id: _retrieve(p, b.get_subscription(id)))
        r("POST", "/v1/subscriptions/{id}", lambda p, id: b.update_subscription(id, p))
        r("DELETE", "/v1/subscriptions/{id}", lambda p, id: b.cancel_subscription(id, p))
        r("GET", "/v1/subscription_items", b.list_subscription_items)
        r("GET", "/v1/invoices", b.list_invoices)
        r("GET", "/v1/invoices/{id}", get("invoice", "invoice"))
        r("GET", "/v1/invoices/{id}/lines", lambda p, id: b.invoice_lines(id, p))
        r("POST", "/v1/invoices/{id}/pay", lambda p, id: b.pay_invoice(id, p))
        r("GET", "/v1/events", b.list_events)
        r("GET", "/v1/events/{id}", get("event"))
        r("POST", "/v1/webhook_endpoints", self._create_endpoint)
        r("GET", "/v1/webhook_endpoints", self._list_endpoints)
        r("GET", "/v1/webhook_endpoints/{id}", lambda p, id: _retrieve(p, self._endpoint(id).to_api()))
        r("POST", "/v1/webhook_endpoints/{id}", self._update_endpoint)
        r("DELETE", "/v1/webhook_endpoints/{id}", self._delete_endpoint)

    def _getter(self, object_type: str, param: str = "id") -> Handler:
        def handler(params: Params, id: str) -> Obj:
            return _retrieve(params, self.store.get(id, object_type, param))

        return handler

    def _update_session(self, params: Params, id: str) -> Obj:
        session = self.billing.get_checkout_session(id)
        check_known(params, ("metadata", "expand"))
        session["metadata"] = metadata_update(session["metadata"], params)
        return session

    # -- webhook endpoints over the API ----------------------------------------------------------------------
    def _endpoint(self, endpoint_id: str) -> Any:
        endpoint = self.emu.webhooks.endpoints.get(endpoint_id)
        if endpoint is None:
            raise errors.no_such("webhook_endpoint", endpoint_id, "webhook_endpoint")
        return endpoint

    def _create_endpoint(self, params: Params) -> Obj:
        check_known(params, ("url", "enabled_events", "description", "metadata", "api_version", "expand"))
        url = _url(params)
        events = [str(e) for e in get_array(params, "enabled_events")]
        if not events:
            raise errors.missing_param("enabled_events")
        endpoint = self.emu.add_webhook_endpoint(url, enabled_events=events)
        endpoint.description = get_str(params, "description")
        endpoint.metadata = metadata_update({}, params)
        endpoint.api_version = get_str(params, "api_version")
        return endpoint.to_api(with_secret=True)

    def _list_endpoints(self, params: Params) -> Obj:
        check_known(params, ("limit", "starting_after", "ending_before", "expand"))
        items = sorted(self.emu.webhooks.endpoints.values(), key=lambda e: (e.created, e.id), reverse=True)
        return self.store.page(
            created_filter(params, [e.to_api() for e in items]), params, "/v1/webhook_endpoints"
        )

    def _update_endpoint(self, params: Params, id: str) -> Obj:
        endpoint = self._endpoint(id)
        check_known(params, ("url", "enabled_events", "description", "metadata", "disabled", "expand"))
        if "url" in params:
            endpoint.url = _url(params)
        if "enabled_events" in params:
            events = [str(e) for e in get_array(params, "enabled_events")]
            if not events:
                raise errors.missing_param("enabled_events")
            endpoint.enabled_events = events
        if "description" in params:
            endpoint.description = get_str(params, "description")
        disabled = get_bool(params, "disabled")
        if disabled is not None:
            endpoint.status = "disabled" if disabled else "enabled"
        endpoint.metadata = metadata_update(endpoint.metadata, params)
        return endpoint.to_api()

    def _delete_endpoint(self, params: Params, id: str) -> Obj:
        check_known(params, ())
        endpoint = self._endpoint(id)
        self.emu.remove_webhook_endpoint(endpoint.id)
        return {"id": endpoint.id, "object": "webhook_endpoint", "deleted": True}

    # -- request handling ------------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text() if request.body_exists else ""
        request_id = "req_" + self.store.new_id("x")[4:18]
        record = RequestRecord(
            request.method,
            request.path,
            request.query_string,
            body,
            request_id,
            idempotency_key=request.headers.get("Idempotency-Key"),
            stripe_version=request.headers.get("Stripe-Version"),
        )
        self.log.append(record)
        self.counts[record.endpoint] += 1
        status, text, original = self._serve(request, record, body)
        record.status, record.response, record.replayed = status, text, original is not None
        headers = {
            "Request-Id": request_id,
            "Stripe-Version": record.stripe_version or self.billing.api_version,
            "Access-Control-Allow-Origin": "*",
            "Cache-Control": "no-cache, no-store",
        }
        if record.idempotency_key and request.method == "POST":
            headers["Idempotency-Key"] = record.idempotency_key
        if original is not None:
            headers["Idempotent-Replayed"] = "true"
            headers["Original-Request"] = original
        if status >= 500:
            headers["Stripe-Should-Retry"] = "true"
        return web.Response(status=status, text=text, content_type="application/json", headers=headers)

    def _serve(self, request: web.Request, record: RequestRecord, body: str) -> tuple[int, str, str | None]:
        """The status and body of the answer, and the original request id when it is an idempotent replay."""
        try:
            failure = self._take_failure(request.path)
            if failure is not None:
                raise StripeError("An unknown error occurred", status=failure.status, type="api_error")
            record.api_key = self._authenticate(request)
            params = self._params(request, body)
            record.params = params
            handler, groups = self._match(request.method, request.path)
            key = record.idempotency_key if request.method == "POST" else None
            if key and len(key) > 255:
                raise StripeError(
                    f"Invalid Idempotency-Key: the key must be at most 255 characters long (got {len(key)})."
                )
            if key:
                saved = self._idempotent(record.api_key, key, record.endpoint, params)
                if saved is not None:
                    return saved.status, saved.body, saved.request_id
            self.billing.context = RequestContext(record.request_id, key)
            try:
                with self.store.atomic():
                    result = handler(params, **groups)
            finally:
                self.billing.context = RequestContext()
            text = _dumps(self.store.render(result, params))
            if key:
                self._idempotency[(record.api_key, key)] = _Saved(
                    record.endpoint, params, 200, text, record.request_id, time.time()
                )
            return 200, text, None
        except StripeError as exc:
            return exc.status, _dumps(exc.body(record.request_id)), None

    def _take_failure(self, path: str) -> Failure | None:
        for i, failure in enumerate(self.failures):
            if failure.path is None or failure.path in path:
                return self.failures.pop(i)
        return None

    def _authenticate(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "").strip()
        scheme, _, credentials = header.partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = credentials.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(credentials.strip()).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        if not key:
            raise errors.no_api_key()
        if key not in self.emu.api_keys:
            raise errors.invalid_api_key(key)
        return key

    def _params(self, request: web.Request, body: str) -> Params:
        params = decode(request.query_string)
        if request.method == "POST" and body:
            if request.content_type not in ("application/x-www-form-urlencoded", "", "text/plain"):
                raise StripeError(
                    f"Invalid request: unsupported Content-Type {request.content_type}. If error persists "
                    "and you need assistance, please contact support@stripe.com."
                )
            params.update(decode(body))
        return params

    def _match(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        path = path.rstrip("/") or path
        for route_method, regex, handler in self._routes:
            match = regex.match(path)
            if match is not None and route_method == method:
                return handler, match.groupdict()
        raise errors.unrecognized_url(method, path)

    def _idempotent(self, api_key: str, key: str, endpoint: str, params: Params) -> _Saved | None:
        now = time.time()
        for stale in [k for k, v in self._idempotency.items() if now - v.at > IDEMPOTENCY_TTL]:
            del self._idempotency[stale]
        saved = self._idempotency.get((api_key, key))
        if saved is None:
            return None
        if saved.endpoint != endpoint:
            raise errors.idempotency_endpoint(key, saved.endpoint.split(" ", 1)[1], endpoint.split(" ", 1)[1])
        if saved.params != params:
            raise errors.idempotency_params(key)
        return saved

    # -- log -------------------------------------------------------------------------------------------------
    def clear_log(self) -> None:
        self.log.clear()
        self.counts.clear()


def _retrieve(params: Params, obj: Obj) -> Obj:
    check_known(params, ("expand",))
    return obj


def _plain(params: Params, action: Callable[[str], Obj], object_id: str) -> Obj:
    check_known(params, ("expand",))
    return action(object_id)


def _url(params: Params) -> str:
    url = get_str(params, "url", required=True)
    assert url is not None
    if not url.startswith(("http://", "https://")):
        raise StripeError("Invalid URL: URL must be publicly accessible.", param="url")
    return url


def _dumps(payload: Any) -> str:
    return json.dumps(payload, indent=2)
