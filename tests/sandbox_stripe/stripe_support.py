"""A webhook receiver for the Stripe emulator tests, and request payloads used across them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from stripe.params.checkout import SessionCreateParams


@dataclass
class Received:
    body: bytes
    signature: str | None
    headers: dict[str, str]


class WebhookReceiver:
    """A local HTTP endpoint that records what is POSTed to it and answers ``status`` (or each of
    ``script`` in turn, then ``status``)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status = 200
        self.script: list[int] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/stripe/webhook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[-1][1]
        self.url = f"http://127.0.0.1:{port}/stripe/webhook"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        async with self._changed:
            self.received.append(
                Received(body, request.headers.get("Stripe-Signature"), dict(request.headers))
            )
            self._changed.notify_all()
        status = self.script.pop(0) if self.script else self.status
        return web.json_response({"received": True}, status=status)

    async def wait_for(self, predicate: Callable[[list[Received]], bool], seconds: float = 5.0) -> None:
        async def check() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self.received))

        await asyncio.wait_for(check(), seconds)

    async def wait_count(self, n: int, seconds: float = 5.0) -> None:
        await self.wait_for(lambda r: len(r) >= n, seconds)


def raw_payment_params(**extra: Any) -> dict[str, Any]:
    """A payment-mode Checkout Session request as a plain dict (for requests that are meant to fail)."""
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 500,
                    "product_data": {"name": "100 credits"},
                },
                "quantity": 2,
            }
        ],
        "client_reference_id": "5",
        "metadata": {"user_id": "5", "pack": "credits_100"},
        "success_url": "https://t.me/cryptouniverse_bot?start=paid_{CHECKOUT_SESSION_ID}",
        "cancel_url": "https://t.me/cryptouniverse_bot?start=cancel",
    }
    params.update(extra)
    return params


def payment_session_params(**extra: Any) -> SessionCreateParams:
    return cast(SessionCreateParams, raw_payment_params(**extra))


def subscription_session_params(**extra: Any) -> SessionCreateParams:
    params: dict[str, Any] = {
        "mode": "subscription",
        "line_items": [
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 1999,
                    "product_data": {"name": "Pro plan"},
                    "recurring": {"interval": "month"},
                },
                "quantity": 1,
            }
        ],
        "customer_email": "trader@example.com",
        "client_reference_id": "7",
        "metadata": {"user_id": "7", "plan": "pro"},
        "subscription_data": {"metadata": {"user_id": "7", "plan": "pro"}},
        "success_url": "https://t.me/cryptouniverse_bot?start=subscribed",
    }
    params.update(extra)
    return cast(SessionCreateParams, params)
