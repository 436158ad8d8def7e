"""Webhook delivery: signatures checked by stripe.Webhook.construct_event, duplicates, ordering, retries."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from sandbox.stripe import StripeEmulator, WebhookEndpoint, signature_header
from tests.sandbox_stripe.stripe_support import (
    WebhookReceiver,
    payment_session_params,
    subscription_session_params,
)

SECRET = "whsec_test_secret"


def verified_types(receiver: WebhookReceiver) -> list[str]:
    return [stripe.Webhook.construct_event(r.body, r.signature, SECRET).type for r in receiver.received]


async def test_events_are_delivered_signed_and_verify(
    emulator: StripeEmulator,
    client: stripe.StripeClient,
    receiver: WebhookReceiver,
    endpoint: WebhookEndpoint,
) -> None:
    session = await client.v1.checkout.sessions.create_async(payment_session_params())
    emulator.pay_checkout_session(session.id)
    await emulator.wait_for_webhooks()

    assert verified_types(receiver) == [
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    last = receiver.received[-1]
    assert last.headers["Content-Type"].startswith("application/json")
    assert last.headers["User-Agent"].startswith("Stripe/1.0")
    assert last.signature is not None and last.signature.startswith("t=")
    event = client.construct_event(last.body, last.signature, SECRET)
    assert event.type == "checkout.session.completed"
    completed = event.data.object
    assert completed["id"] == session.id and completed["payment_status"] == "paid"
    assert completed["metadata"]["user_id"] == "5" and completed["client_reference_id"] == "5"
    stored = await client.v1.events.retrieve_async(event.id)
    assert stored.pending_webhooks == 0
    assert [d.ok for d in emulator.deliveries] == [True, True, True]


async def test_tampered_wrong_secret_and_stale_signatures_are_rejected(
    emulator: StripeEmulator,
    client: stripe.StripeClient,
    receiver: WebhookReceiver,
    endpoint: WebhookEndpoint,
) -> None:
    session = await client.v1.checkout.sessions.create_async(payment_session_params())
    emulator.pay_checkout_session(session.id)
    await emulator.wait_for_webhooks()
    genuine = receiver.received[-1]
    assert genuine.signature is not None

    tampered = genuine.body.replace(b'"paid"', b'"unpaid"', 1)
    assert tampered != genuine.body
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(tampered, genuine.signature, SECRET)

    event_id = json.loads(genuine.body)["id"]
    await emulator.deliver_event(event_id, secret="whsec_someone_else")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(receiver.received[-1].body, receiver.received[-1].signature, SECRET)

    await emulator.deliver_event(event_id, timestamp=int(time.time()) - 3600)
    stale = receiver.received[-1]
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.Webhook.construct_event(stale.body, stale.signature, SECRET)
    assert stripe.Webhook.construct_event(stale.body, stale.signature, SECRET, tolerance=7200).id == event_id

    payload = genuine.body.decode()
    forged = signature_header(payload, SECRET, int(time.time()))
    await emulator.deliver_event(event_id, signature=forged.replace("v1=", "v1=00"))
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(receiver.received[-1].body, receiver.received[-1].signature, SECRET)


async def test_duplicate_delivery_carries_the_same_event(
    emulator: StripeEmulator,
    client: stripe.StripeClient,
    receiver: WebhookReceiver,
    endpoint: WebhookEndpoint,
) -> None:
    session = await client.v1.checkout.sessions.create_async(payment_session_params())
    emulator.pay_checkout_session(session.id)
    await emulator.wait_for_webhooks()
    completed = emulator.events("checkout.session.completed")[0]["id"]

    deliveries = await emulator.deliver_event(completed)
    assert [(d.event_id, d.status, d.manual) for d in deliveries] == [(completed, 200, True)]
    ids = [stripe.Webhook.construct_event(r.body, r.signature, SECRET).id for r in receiver.received]
    assert ids.count(completed) == 2

    emulator.hold_webhooks()
    await client.v1.checkout.sessions.expire_async(
        (await client.v1.checkout.sessions.create_async(payment_session_params())).id
    )
    (expired,) = emulator.held_events()
    await emulator.deliver_event(expired)
    await emulator.release_webhooks()
    ids = [json.loads(r.body)["id"] for r in receiver.received]
    assert ids[-2:] == [expired, expired]
    assert emulator.get(expired)["pending_webhooks"] == 0


async def test_held_events_are_released_in_a_chosen_order(
    emulator: StripeEmulator,
    client: stripe.StripeClient,
    receiver: WebhookReceiver,
    endpoint: WebhookEndpoint,
) -> None:
    emulator.hold_webhooks()
    session = await client.v1.checkout.sessions.create_async(subscription_session_params())
    emulator.pay_checkout_session(session.id)
    sub_id = emulator.get(session.id)["subscription"]
    await emulator.wait_for_webhooks()
    assert receiver.received == []
    held = emulator.held_events()
    assert len(held) == 9

    by_type = {emulator.get(e)["type"]: e for e in held}
    first = [
        by_type["checkout.session.completed"],
        by_type["invoice.paid"],
        by_type["customer.subscription.created"],
    ]
    deliveries = await emulator.release_webhooks(first)
    assert [d.event_type for d in deliveries] == [
        "checkout.session.completed",
        "invoice.paid",
        "customer.subscription.created",
    ]
    assert verified_types(receiver) == [d.event_type for d in deliveries]
    assert len(emulator.held_events()) == 6

    emulator.advance_subscription(sub_id)
    assert len(emulator.held_events()) > 6
    emulator.resume_webhooks()
    await emulator.wait_for_webhooks()
    assert emulator.held_events() == []
    types = verified_types(receiver)
    assert types[3:] == [e["type"] for e in emulator.events() if e["id"] not in first]
    assert types[3] == "customer.created" and len(types) == len(emulator.events())
    cycle = [
        stripe.Webhook.construct_event(r.body, r.signature, SECRET).data.object
        for r in receiver.received
        if json.loads(r.body)["type"] == "invoice.paid"
    ]
    assert [o["billing_reason"] for o in cycle] == ["subscription_create", "subscription_cycle"]


async def test_failed_deliveries_are_retried(
    emulator: StripeEmulator,
    client: stripe.StripeClient,
    receiver: WebhookReceiver,
    endpoint: WebhookEndpoint,
) -> None:
    receiver.script = [500, 503]
    session = await client.v1.checkout.sessions.create_async(payment_session_params())
    expired = await client.v1.checkout.sessions.expire_async(session.id)
    await emulator.wait_for_webhooks()
    attempts = [(d.attempt, d.status) for d in emulator.deliveries]
    assert attempts == [(1, 500), (2, 503), (3, 200)]
    assert len({r.body for r in receiver.received}) == 1
    event = emulator.events("checkout.session.expired")[0]
    assert event["pending_webhooks"] == 0 and event["data"]["object"]["id"] == expired.id

    listed = await client.v1.events.list_async({"delivery_success": True})
    assert [e.id for e in listed.data] == [event["id"]]


async def test_unreachable_endpoint_is_recorded(
    emulator: StripeEmulator, client: stripe.StripeClient
) -> None:
    emulator.add_webhook_endpoint("http://127.0.0.1:9/unreachable", secret=SECRET)
    session = await client.v1.checkout.sessions.create_async(payment_session_params())
    await client.v1.checkout.sessions.expire_async(session.id)
    await emulator.wait_for_webhooks()
    assert len(emulator.deliveries) == 4
    assert all(d.status is None and d.error for d in emulator.deliveries)
    assert emulator.events()[0]["pending_webhooks"] == 1


async def test_enabled_events_and_endpoints_created_over_the_api(
    emulator: StripeEmulator, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    created = await client.v1.webhook_endpoints.create_async(
        {"url": receiver.url, "enabled_events": ["checkout.session.completed", "invoice.paid"]}
    )
    assert created.id.startswith("we_") and created.secret is not None and created.secret.startswith("whsec_")
    assert [e.id for e in (await client.v1.webhook_endpoints.list_async()).data] == [created.id]

    session = await client.v1.checkout.sessions.create_async(subscription_session_params())
    emulator.pay_checkout_session(session.id)
    await emulator.wait_for_webhooks()
    types = [
        stripe.Webhook.construct_event(r.body, r.signature, created.secret).type for r in receiver.received
    ]
    assert types == ["invoice.paid", "checkout.session.completed"]

    deleted = await client.v1.webhook_endpoints.delete_async(created.id)
    assert deleted.deleted is True
    assert emulator.webhook_endpoints == []
