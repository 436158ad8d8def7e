"""``POST /stripe/webhook``: Stripe's signed events, handed to `StripeBilling` as the raw bytes received.

400 when the signature or timestamp does not verify (nothing changed), 200 when the event was applied, was
a redelivery or is of a type we do not act on, 500 on anything unexpected so that Stripe delivers it again.
The body is never logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from services.billing.stripe_checkout import InvalidWebhook, StripeBilling

log = structlog.get_logger(__name__)

STRIPE_WEBHOOK_PATH = "/stripe/webhook"
SIGNATURE_HEADER = "Stripe-Signature"
MAX_EVENT_BYTES = 512 * 1024

Handler = Callable[[web.Request], Awaitable[web.Response]]


def stripe_webhook_route(billing: StripeBilling) -> Handler:
    async def stripe_webhook(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_EVENT_BYTES:
            return web.json_response({"ok": False, "error": "too large"}, status=413)
        body = await request.read()
        try:
            outcome = await billing.handle_webhook(body, request.headers.get(SIGNATURE_HEADER))
        except InvalidWebhook as exc:
            log.warning("stripe.webhook_rejected", reason=str(exc), size=len(body), remote=request.remote)
            return web.json_response({"ok": False, "error": "invalid signature"}, status=400)
        except Exception:
            log.exception("stripe.webhook_failed", size=len(body))
            return web.json_response({"ok": False, "error": "internal error"}, status=500)
        return web.json_response({"ok": True, "status": outcome.status})

    return stripe_webhook


__all__ = ["STRIPE_WEBHOOK_PATH", "stripe_webhook_route"]
