"""Fixtures: a Stripe emulator, the real stripe-python client (aiohttp transport) pointed at it, and a webhook
receiver registered as its endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import stripe

from sandbox.stripe import StripeEmulator, WebhookEndpoint
from tests.sandbox_stripe.stripe_support import WebhookReceiver


@pytest.fixture
async def emulator() -> AsyncIterator[StripeEmulator]:
    emu = StripeEmulator(seed=11, webhook_retry_delays=(0.05, 0.1, 0.2))
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
async def client(emulator: StripeEmulator) -> AsyncIterator[stripe.StripeClient]:
    http_client = stripe.AIOHTTPClient()
    yield stripe.StripeClient(
        emulator.api_key,
        base_addresses={"api": emulator.base_url},
        http_client=http_client,
        max_network_retries=0,
    )
    await http_client.close_async()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    server = WebhookReceiver()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def endpoint(emulator: StripeEmulator, receiver: WebhookReceiver) -> WebhookEndpoint:
    return emulator.add_webhook_endpoint(receiver.url, secret="whsec_test_secret")
