"""The hosted Checkout and invoice pages, the control HTTP API and ``python -m sandbox.stripe``."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp
import stripe

from sandbox.stripe import StripeEmulator, WebhookEndpoint
from tests.sandbox_stripe.stripe_support import (
    WebhookReceiver,
    payment_session_params,
    subscription_session_params,
)

SECRET = "whsec_test_secret"


async def control(
    emulator: StripeEmulator, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{emulator.base_url}/sandbox/api{path}", json=body) as response,
    ):
        payload = await response.json()
        assert response.status == 200, payload
        assert payload["ok"] is True
        return payload["result"]


async def test_checkout_page_pays_and_redirects_to_success_url(
    emulator: StripeEmulator, client: stripe.StripeClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(payment_session_params())
    assert session.url is not None
    async with aiohttp.ClientSession() as http:
        async with http.get(session.url) as response:
            page = await response.text()
        assert response.status == 200
        assert 'id="pay"' in page and "$10.00" in page and "100 credits × 2" in page
        assert 'href="https://t.me/cryptouniverse_bot?start=cancel"' in page

        async with http.post(
            f"{session.url}/pay", data={"email": "page@example.com", "name": "Ada"}, allow_redirects=False
        ) as response:
            assert response.status == 303
            assert response.headers["Location"] == f"https://t.me/cryptouniverse_bot?start=paid_{session.id}"

        async with http.get(session.url) as response:
            assert "Payment complete" in await response.text()
        async with http.get(f"{emulator.base_url}/checkout/cs_test_unknown") as response:
            assert response.status == 404

    paid = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert paid.status == "complete" and paid.customer_details is not None
    assert (paid.customer_details.email, paid.customer_details.name) == ("page@example.com", "Ada")


async def test_hosted_invoice_page_pays_an_open_invoice(
    emulator: StripeEmulator, client: stripe.StripeClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(subscription_session_params())
    sub_id = emulator.pay_checkout_session(session.id)["subscription"]
    invoice = emulator.advance_subscription(sub_id, fail=True)
    assert invoice is not None
    async with aiohttp.ClientSession() as http:
        async with http.get(invoice["hosted_invoice_url"]) as response:
            page = await response.text()
        assert "Due" in page and 'id="pay"' in page
        async with http.post(invoice["hosted_invoice_url"] + "/pay") as response:
            assert "Paid" in await response.text()
    assert (await client.v1.invoices.retrieve_async(invoice["id"])).status == "paid"
    assert (await client.v1.subscriptions.retrieve_async(sub_id)).status == "active"


async def test_control_api_drives_payments_and_webhooks(
    emulator: StripeEmulator, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    endpoint = await control(
        emulator,
        "POST",
        "/webhook_endpoints",
        {"url": receiver.url, "secret": SECRET, "enabled_events": ["*"]},
    )
    assert endpoint["secret"] == SECRET
    held = await control(emulator, "POST", "/webhooks/hold")
    assert held == {"held": []}

    session = await client.v1.checkout.sessions.create_async(subscription_session_params())
    completed = await control(
        emulator, "POST", f"/checkout/sessions/{session.id}/pay", {"email": "c@example.com"}
    )
    assert completed["status"] == "complete"
    renewal = await control(emulator, "POST", f"/subscriptions/{completed['subscription']}/advance")
    assert renewal["invoice"]["billing_reason"] == "subscription_cycle"

    state = await control(emulator, "GET", "/webhooks/held")
    assert state["holding"] is True and len(state["held"]) > 9
    events = await control(emulator, "GET", "/events?type=invoice.paid")
    last_paid = events[-1]["id"]
    released = await control(emulator, "POST", "/webhooks/release", {"event_ids": [last_paid]})
    assert [(d["event_id"], d["ok"]) for d in released] == [(last_paid, True)]
    event = stripe.Webhook.construct_event(receiver.received[0].body, receiver.received[0].signature, SECRET)
    assert event.data.object["billing_reason"] == "subscription_cycle"

    wrong = await control(emulator, "POST", f"/events/{last_paid}/deliver", {"secret": "whsec_wrong"})
    assert wrong[0]["manual"] is True
    stale = await control(emulator, "POST", f"/events/{last_paid}/deliver", {"timestamp": 1_600_000_000})
    assert stale[0]["timestamp"] == 1_600_000_000

    await control(emulator, "POST", "/webhooks/resume")
    await emulator.wait_for_webhooks()
    deliveries = await control(emulator, "GET", "/deliveries")
    assert len(deliveries) == len(await control(emulator, "GET", "/events")) + 2

    requests = await control(emulator, "GET", "/requests")
    assert requests[0]["path"] == "/v1/checkout/sessions" and requests[0]["params"]["mode"] == "subscription"
    obj = await control(emulator, "GET", f"/objects/{completed['subscription']}")
    assert obj["object"] == "subscription"
    await control(emulator, "POST", "/fail_next", {"count": 1, "status": 502})
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{emulator.base_url}/v1/customers", headers={"Authorization": f"Bearer {emulator.api_key}"}
        ) as response,
    ):
        assert response.status == 502
        assert (await response.json())["error"]["type"] == "api_error"

    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{emulator.base_url}/sandbox/api/checkout/sessions/cs_test_nope/pay") as response,
    ):
        assert response.status == 404
        assert (await response.json())["ok"] is False


async def test_control_api_adds_api_keys(emulator: StripeEmulator) -> None:
    await control(emulator, "POST", "/api_keys", {"key": "sk_test_second"})
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{emulator.base_url}/v1/events", headers={"Authorization": "Bearer sk_test_second"}
        ) as response,
    ):
        assert response.status == 200
    info = await control(emulator, "GET", "/info")
    assert info["base_url"] == emulator.base_url and info["api_key"] == emulator.api_key


async def test_endpoint_fixture_and_emulator_agree(
    emulator: StripeEmulator, endpoint: WebhookEndpoint
) -> None:
    listed = await control(emulator, "GET", "/webhook_endpoints")
    assert [(e["id"], e["url"], e["secret"]) for e in listed] == [(endpoint.id, endpoint.url, SECRET)]
    await control(emulator, "DELETE", f"/webhook_endpoints/{endpoint.id}")
    assert emulator.webhook_endpoints == []


async def test_module_runs_standalone(receiver: WebhookReceiver) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox.stripe",
        "--api-key",
        "sk_test_cli",
        "--webhook-url",
        receiver.url,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        info = json.loads(line)
        assert info["api_key"] == "sk_test_cli" and info["webhook_secret"].startswith("whsec_")
        http = stripe.AIOHTTPClient()
        cli = stripe.StripeClient("sk_test_cli", base_addresses={"api": info["base_url"]}, http_client=http)
        try:
            session = await cli.v1.checkout.sessions.create_async(payment_session_params())
            await cli.v1.checkout.sessions.expire_async(session.id)
        finally:
            await http.close_async()
        await receiver.wait_count(1, seconds=10)
        event = stripe.Webhook.construct_event(
            receiver.received[0].body, receiver.received[0].signature, info["webhook_secret"]
        )
        assert event.type == "checkout.session.expired"
    finally:
        process.terminate()
        await process.wait()
