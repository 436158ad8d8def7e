"""The control API (``/sandbox/api/...``): JSON over HTTP for tests and tools to act as customers, move time
forward and steer webhook delivery. Bodies are JSON objects or forms; GET takes query parameters."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.stripe.errors import StripeError
from sandbox.stripe.webhooks import summary

if TYPE_CHECKING:
    from sandbox.stripe.server import StripeEmulator

Action = Callable[[dict[str, Any], web.Request], Awaitable[Any]]
PREFIX = "/sandbox/api"


class ControlError(Exception):
    pass


async def _body(request: web.Request) -> dict[str, Any]:
    data: dict[str, Any] = dict(request.query)
    if request.method in ("POST", "DELETE") and request.body_exists:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise ControlError("the body is not valid JSON") from None
            if not isinstance(body, dict):
                raise ControlError("the body must be a JSON object")
            data.update(body)
        else:
            data.update((await request.post()).items())
    return data


def _flag(data: dict[str, Any], name: str) -> bool:
    value = data.get(name)
    if isinstance(value, bool):
        return value
    return str(value or "").lower() in ("1", "true", "yes", "on")


def _opt_int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ControlError(f"{name} must be an integer") from None


def _opt_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    return None if value is None or value == "" else str(value)


def _list(data: dict[str, Any], name: str) -> list[str] | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def setup_control_routes(app: web.Application, emu: StripeEmulator) -> None:
    def guarded(action: Action) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                result = await action(await _body(request), request)
            except (ControlError, StripeError) as exc:
                message = exc.message if isinstance(exc, StripeError) else str(exc)
                status = exc.status if isinstance(exc, StripeError) else 400
                return web.json_response({"ok": False, "error": message}, status=status)
            except KeyError as exc:
                return web.json_response(
                    {"ok": False, "error": str(exc.args[0]) if exc.args else "not found"}, status=404
                )
            return web.json_response({"ok": True, "result": result}, dumps=json.dumps)

        return handler

    async def info(data: dict[str, Any], request: web.Request) -> Any:
        return emu.info()

    async def add_api_key(data: dict[str, Any], request: web.Request) -> Any:
        key = _opt_str(data, "key")
        if key is None:
            raise ControlError("key is required")
        emu.add_api_key(key)
        return {"api_keys": sorted(emu.api_keys)}

    async def add_endpoint(data: dict[str, Any], request: web.Request) -> Any:
        url = _opt_str(data, "url")
        if url is None:
            raise ControlError("url is required")
        endpoint = emu.add_webhook_endpoint(
            url, _opt_str(data, "secret"), _list(data, "enabled_events") or ["*"]
        )
        return endpoint.to_api(with_secret=True)

    async def list_endpoints(data: dict[str, Any], request: web.Request) -> Any:
        return [e.to_api(with_secret=True) for e in emu.webhook_endpoints]

    async def remove_endpoint(data: dict[str, Any], request: web.Request) -> Any:
        emu.remove_webhook_endpoint(request.match_info["id"])
        return {"id": request.match_info["id"], "deleted": True}

    async def pay_session(data: dict[str, Any], request: web.Request) -> Any:
        return emu.pay_checkout_session(
            request.match_info["id"], _opt_str(data, "email"), _opt_str(data, "name")
        )

    async def advance(data: dict[str, Any], request: web.Request) -> Any:
        return {"invoice": emu.advance_subscription(request.match_info["id"], fail=_flag(data, "fail"))}

    async def pay_invoice(data: dict[str, Any], request: web.Request) -> Any:
        return emu.pay_invoice(request.match_info["id"], fail=_flag(data, "fail"))

    async def hold(data: dict[str, Any], request: web.Request) -> Any:
        emu.hold_webhooks()
        return {"held": emu.held_events()}

    async def resume(data: dict[str, Any], request: web.Request) -> Any:
        emu.resume_webhooks()
        return {"held": emu.held_events()}

    async def held(data: dict[str, Any], request: web.Request) -> Any:
        return {"holding": emu.webhooks.held, "held": emu.held_events()}

    async def release(data: dict[str, Any], request: web.Request) -> Any:
        return summary(await emu.release_webhooks(_list(data, "event_ids")))

    async def deliver(data: dict[str, Any], request: web.Request) -> Any:
        deliveries = await emu.deliver_event(
            request.match_info["id"],
            _opt_str(data, "endpoint_id"),
            secret=_opt_str(data, "secret"),
            timestamp=_opt_int(data, "timestamp"),
            signature=_opt_str(data, "signature"),
        )
        return summary(deliveries)

    async def deliveries(data: dict[str, Any], request: web.Request) -> Any:
        since = _opt_int(data, "since") or 0
        return summary(emu.deliveries[since:])

    async def events(data: dict[str, Any], request: web.Request) -> Any:
        return emu.events(_opt_str(data, "type"))

    async def get_object(data: dict[str, Any], request: web.Request) -> Any:
        return emu.get(request.match_info["id"])

    async def requests(data: dict[str, Any], request: web.Request) -> Any:
        since = _opt_int(data, "since") or 0
        return [r.to_json() for r in emu.requests[since:]]

    async def reset_log(data: dict[str, Any], request: web.Request) -> Any:
        emu.reset_log()
        return {}

    async def fail_next(data: dict[str, Any], request: web.Request) -> Any:
        emu.fail_next(_opt_int(data, "count") or 1, _opt_int(data, "status") or 500, _opt_str(data, "path"))
        return {}

    routes: list[tuple[str, str, Action]] = [
        ("GET", "/info", info),
        ("POST", "/api_keys", add_api_key),
        ("POST", "/webhook_endpoints", add_endpoint),
        ("GET", "/webhook_endpoints", list_endpoints),
        ("DELETE", "/webhook_endpoints/{id}", remove_endpoint),
        ("POST", "/checkout/sessions/{id}/pay", pay_session),
        ("POST", "/subscriptions/{id}/advance", advance),
        ("POST", "/invoices/{id}/pay", pay_invoice),
        ("POST", "/webhooks/hold", hold),
        ("POST", "/webhooks/resume", resume),
        ("GET", "/webhooks/held", held),
        ("POST", "/webhooks/release", release),
        ("POST", "/events/{id}/deliver", deliver),
        ("GET", "/deliveries", deliveries),
        ("GET", "/events", events),
        ("GET", "/objects/{id}", get_object),
        ("GET", "/requests", requests),
        ("POST", "/requests/reset", reset_log),
        ("POST", "/fail_next", fail_next),
    ]
    for method, path, action in routes:
        app.router.add_route(method, PREFIX + path, guarded(action))
