"""The one aiohttp server: Telegram webhook, /healthz and /metrics."""

from __future__ import annotations

import hmac
import json

import structlog
from aiohttp import web

from bot.health import HealthChecker
from bot.inbox import InboxProcessor, InvalidUpdate
from bot.metrics import Metrics

log = structlog.get_logger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
MAX_UPDATE_BYTES = 1024 * 1024

INBOX_KEY = web.AppKey("inbox", InboxProcessor)
HEALTH_KEY = web.AppKey("health", HealthChecker)
METRICS_KEY = web.AppKey("metrics", Metrics)
SECRET_KEY = web.AppKey("webhook_secret", str)


async def telegram_webhook(request: web.Request) -> web.Response:
    metrics = request.app[METRICS_KEY]
    expected = request.app[SECRET_KEY]
    given = request.headers.get(SECRET_HEADER, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        metrics.updates_rejected.labels("secret").inc()
        log.warning("webhook.bad_secret", remote=request.remote)
        return web.json_response({"ok": False, "error": "unauthorized"}, status=401)
    if request.content_length is not None and request.content_length > MAX_UPDATE_BYTES:
        metrics.updates_rejected.labels("too_large").inc()
        return web.json_response({"ok": False, "error": "too large"}, status=413)
    body = await request.read()
    try:
        payload = json.loads(body)
        accepted = await request.app[INBOX_KEY].receive(payload, source="webhook")
    except (ValueError, InvalidUpdate) as exc:
        # The content is never logged: it may hold a user's private messages.
        metrics.updates_rejected.labels("malformed").inc()
        log.warning("webhook.malformed", size=len(body), reason=type(exc).__name__)
        return web.json_response({"ok": False, "error": "malformed update"}, status=400)
    return web.json_response({"ok": True, "duplicate": not accepted})


async def healthz(request: web.Request) -> web.Response:
    report = await request.app[HEALTH_KEY].report()
    return web.json_response(report, status=200 if report["status"] == "ok" else 503)


async def metrics_view(request: web.Request) -> web.Response:
    metrics = request.app[METRICS_KEY]
    return web.Response(body=metrics.render(), headers={"Content-Type": metrics.content_type})


def create_web_app(
    *, inbox: InboxProcessor, health: HealthChecker, metrics: Metrics, webhook_secret: str | None
) -> web.Application:
    app = web.Application(client_max_size=MAX_UPDATE_BYTES)
    app[INBOX_KEY] = inbox
    app[HEALTH_KEY] = health
    app[METRICS_KEY] = metrics
    app[SECRET_KEY] = webhook_secret or ""
    app.router.add_post(WEBHOOK_PATH, telegram_webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    return app
