"""Wire protocol: authentication, error bodies, idempotency keys, form encoding, lists, expand and events."""

from __future__ import annotations

import asyncio
import base64
from typing import Any, cast

import aiohttp
import pytest
import stripe

from sandbox.stripe import StripeEmulator
from sandbox.stripe.params import decode
from tests.sandbox_stripe.stripe_support import (
    SessionCreateParams,
    payment_session_params,
    raw_payment_params,
    subscription_session_params,
)


async def raw(
    method: str, url: str, data: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=data, headers=headers) as resp,
    ):
        return resp.status, await resp.json(content_type=None), dict(resp.headers)


def error_body(error: stripe.StripeError) -> dict[str, Any]:
    assert isinstance(error.json_body, dict)
    return cast(dict[str, Any], error.json_body["error"])


def test_form_decoding_matches_stripe_encoding() -> None:
    params = decode(
        "line_items[0][price_data][currency]=usd&line_items[0][quantity]=2&line_items[1][price]=price_1"
        "&metadata[user_id]=5&metadata[0]=zero&expand[]=a&expand[]=b.c&empty="
    )
    assert params == {
        "line_items": [{"price_data": {"currency": "usd"}, "quantity": "2"}, {"price": "price_1"}],
        "metadata": {"user_id": "5", "0": "zero"},
        "expand": ["a", "b.c"],
        "empty": "",
    }


async def test_wrong_or_missing_api_key_is_401(emulator: StripeEmulator) -> None:
    http = stripe.AIOHTTPClient()
    bad = stripe.StripeClient(
        "sk_test_wrong_key_1234",
        base_addresses={"api": emulator.base_url},
        http_client=http,
        max_network_retries=0,
    )
    try:
        with pytest.raises(stripe.AuthenticationError) as error:
            await bad.v1.customers.list_async()
    finally:
        await http.close_async()
    assert error.value.http_status == 401
    body = error_body(error.value)
    assert body["type"] == "invalid_request_error"
    assert body["message"].startswith("Invalid API Key provided: sk_test_")
    assert "wrong_key" not in body["message"]

    status, body, _ = await raw("GET", emulator.base_url + "/v1/customers")
    assert status == 401
    assert body["error"]["type"] == "invalid_request_error"
    assert "You did not provide an API key" in body["error"]["message"]

    basic = base64.b64encode(f"{emulator.api_key}:".encode()).decode()
    status, body, headers = await raw(
        "GET", emulator.base_url + "/v1/customers", headers={"Authorization": f"Basic {basic}"}
    )
    assert status == 200 and body == {"object": "list", "data": [], "has_more": False, "url": "/v1/customers"}
    assert headers["Request-Id"].startswith("req_")


async def test_error_shapes(emulator: StripeEmulator, client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.checkout.sessions.retrieve_async("cs_test_missing")
    assert error.value.http_status == 404
    assert error_body(error.value) == {
        "code": "resource_missing",
        "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
        "message": "No such checkout.session: 'cs_test_missing'",
        "param": "session",
        "request_log_url": error_body(error.value)["request_log_url"],
        "type": "invalid_request_error",
    }

    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.checkout.sessions.create_async(payment_session_params(colour="red"))
    assert (error.value.http_status, error.value.param) == (400, "colour")
    assert error.value.user_message == "Received unknown parameter: colour"

    params = raw_payment_params()
    del params["mode"]
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.checkout.sessions.create_async(cast(SessionCreateParams, params))
    assert (error.value.param, error.value.code) == ("mode", "parameter_missing")

    params = raw_payment_params()
    params["line_items"][0]["price_data"]["unit_amount"] = "ten"
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.checkout.sessions.create_async(cast(SessionCreateParams, params))
    assert error.value.param == "line_items[0][price_data][unit_amount]"

    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.checkout.sessions.create_async(
            subscription_session_params(mode="payment", subscription_data=None)
        )
    assert "recurring price" in str(error.value.user_message)

    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.checkout.sessions.create_async(payment_session_params(mode="subscription"))
    assert "at least one recurring price" in str(error.value.user_message)

    status, body, _ = await raw(
        "GET", emulator.base_url + "/v1/nothing_here", headers={"Authorization": f"Bearer {emulator.api_key}"}
    )
    assert status == 404
    assert body["error"]["message"].startswith("Unrecognized request URL (GET: /v1/nothing_here)")


async def test_idempotency_keys(emulator: StripeEmulator, client: stripe.StripeClient) -> None:
    params = payment_session_params()
    first = await client.v1.checkout.sessions.create_async(params, {"idempotency_key": "order-42"})
    again = await client.v1.checkout.sessions.create_async(params, {"idempotency_key": "order-42"})
    assert again.id == first.id
    assert len(emulator.objects("checkout.session")) == 1
    assert [r.replayed for r in emulator.requests] == [False, True]
    assert emulator.requests[-1].idempotency_key == "order-42"

    with pytest.raises(stripe.IdempotencyError) as error:
        await client.v1.checkout.sessions.create_async(
            payment_session_params(client_reference_id="6"), {"idempotency_key": "order-42"}
        )
    assert error.value.http_status == 400
    assert error_body(error.value)["type"] == "idempotency_error"

    with pytest.raises(stripe.IdempotencyError):
        await client.v1.customers.create_async({"email": "x@example.com"}, {"idempotency_key": "order-42"})

    other = await client.v1.checkout.sessions.create_async(params, {"idempotency_key": "order-43"})
    assert other.id != first.id
    plain_one = await client.v1.checkout.sessions.create_async(params)
    plain_two = await client.v1.checkout.sessions.create_async(params)
    assert plain_one.id != plain_two.id  # stripe-python sends a fresh key per call

    _, _, headers = await raw(
        "POST",
        emulator.base_url + "/v1/customers",
        data="email=a%40b.c",
        headers={
            "Authorization": f"Bearer {emulator.api_key}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Idempotency-Key": "k1",
        },
    )
    _, _, replay = await raw(
        "POST",
        emulator.base_url + "/v1/customers",
        data="email=a%40b.c",
        headers={
            "Authorization": f"Bearer {emulator.api_key}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Idempotency-Key": "k1",
        },
    )
    assert "Idempotent-Replayed" not in headers and replay["Idempotent-Replayed"] == "true"
    assert replay["Request-Id"] != headers["Request-Id"]
    assert replay["Original-Request"] == headers["Request-Id"]


async def test_lists_filters_and_pagination(emulator: StripeEmulator, client: stripe.StripeClient) -> None:
    created = []
    for user in range(5):
        session = await client.v1.checkout.sessions.create_async(
            payment_session_params(client_reference_id=str(user))
        )
        created.append(session.id)
    emulator.pay_checkout_session(created[1])
    emulator.pay_checkout_session(created[3])

    page = await client.v1.checkout.sessions.list_async({"limit": 2})
    assert [s.id for s in page.data] == [created[4], created[3]] and page.has_more
    every = [s.id async for s in page.auto_paging_iter()]
    assert every == list(reversed(created))

    complete = await client.v1.checkout.sessions.list_async({"status": "complete"})
    assert [s.id for s in complete.data] == [created[3], created[1]]
    intent = emulator.get(created[1])["payment_intent"]
    by_intent = await client.v1.checkout.sessions.list_async({"payment_intent": intent})
    assert [s.id for s in by_intent.data] == [created[1]]
    before = await client.v1.checkout.sessions.list_async({"ending_before": created[2], "limit": 1})
    assert [s.id for s in before.data] == [created[3]] and before.has_more

    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.checkout.sessions.list_async({"limit": 101})
    assert error.value.param == "limit"


async def test_events_are_listed_and_retrieved(emulator: StripeEmulator, client: stripe.StripeClient) -> None:
    session = await client.v1.checkout.sessions.create_async(
        subscription_session_params(), {"idempotency_key": "sub-7"}
    )
    emulator.pay_checkout_session(session.id)
    refund_target = emulator.get(emulator.get(session.id)["invoice"])["charge"]
    refund = await client.v1.refunds.create_async({"charge": refund_target}, {"idempotency_key": "refund-1"})

    events = await client.v1.events.list_async({"limit": 100})
    types = [e.type for e in events.data]
    assert types[:2] == ["charge.refunded", "refund.created"]
    assert types[-1] == "customer.created"
    assert all(e.id.startswith("evt_") and e.object == "event" for e in events.data)

    refunded = await client.v1.events.list_async({"type": "charge.refunded"})
    assert len(refunded.data) == 1
    event = await client.v1.events.retrieve_async(refunded.data[0].id)
    assert event.data.object["id"] == refund_target and event.data.object["refunded"] is True
    assert event.request is not None and event.request.idempotency_key == "refund-1"
    refund_request = next(r for r in emulator.requests if r.endpoint == "POST /v1/refunds")
    assert event.request.id == refund_request.request_id
    assert refund.charge == refund_target

    invoices = await client.v1.events.list_async({"types": ["invoice.paid", "invoice.payment_succeeded"]})
    assert [e.type for e in invoices.data] == ["invoice.payment_succeeded", "invoice.paid"]
    wildcard = await client.v1.events.list_async({"type": "customer.subscription.*"})
    assert [e.type for e in wildcard.data] == ["customer.subscription.created"]


async def test_expand_nested_objects(emulator: StripeEmulator, client: stripe.StripeClient) -> None:
    session = await client.v1.checkout.sessions.create_async(subscription_session_params())
    emulator.pay_checkout_session(session.id)
    full = await client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["subscription.latest_invoice", "customer"]}
    )
    assert isinstance(full.subscription, stripe.Subscription)
    assert isinstance(full.subscription.latest_invoice, stripe.Invoice)
    assert full.subscription.latest_invoice.status == "paid"
    assert isinstance(full.customer, stripe.Customer)
    listed = await client.v1.checkout.sessions.list_async({"expand": ["data.subscription"]})
    assert isinstance(listed.data[0].subscription, stripe.Subscription)
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.checkout.sessions.retrieve_async(session.id, {"expand": ["amount_total"]})
    assert error.value.param == "expand"


async def test_global_configuration_with_the_default_client(
    emulator: StripeEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stripe, "api_key", emulator.api_key)
    monkeypatch.setattr(stripe, "api_base", emulator.base_url)
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    session = await asyncio.to_thread(stripe.checkout.Session.create, **payment_session_params())
    assert session.id.startswith("cs_test_")
    emulator.pay_checkout_session(session.id)
    fetched = await asyncio.to_thread(stripe.checkout.Session.retrieve, session.id)
    assert fetched.status == "complete"


async def test_server_errors_are_retried_by_the_client(emulator: StripeEmulator) -> None:
    http = stripe.AIOHTTPClient()
    retrying = stripe.StripeClient(
        emulator.api_key, base_addresses={"api": emulator.base_url}, http_client=http, max_network_retries=2
    )
    emulator.fail_next(1, status=500, path="/v1/checkout/sessions")
    try:
        session = await retrying.v1.checkout.sessions.create_async(payment_session_params())
    finally:
        await http.close_async()
    first, second = emulator.requests
    assert (first.status, second.status) == (500, 200)
    assert first.idempotency_key == second.idempotency_key
    assert len(emulator.objects("checkout.session")) == 1 and session.id.startswith("cs_test_")
    assert emulator.request_counts()["POST /v1/checkout/sessions"] == 2


async def test_refused_requests_change_nothing(emulator: StripeEmulator, client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.prices.create_async(
            {
                "currency": "usd",
                "unit_amount": 100,
                "product_data": {"name": "Pro"},
                "recurring": {"interval": cast(Any, "fortnight")},
            }
        )
    assert error.value.param == "recurring[interval]"
    params = raw_payment_params()
    params["line_items"] = [*params["line_items"], {"price": "price_missing", "quantity": 1}]
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.checkout.sessions.create_async(cast(SessionCreateParams, params))
    assert emulator.objects("product") == [] and emulator.objects("price") == []
    assert emulator.events() == []

    session = await client.v1.checkout.sessions.create_async(subscription_session_params())
    sub_id = emulator.pay_checkout_session(session.id)["subscription"]
    before = emulator.get(sub_id)
    events = len(emulator.events())
    product = await client.v1.products.create_async({"name": "Elite"})
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.subscriptions.update_async(
            sub_id,
            {
                "items": [
                    {
                        "id": before["items"]["data"][0]["id"],
                        "price_data": {
                            "currency": "usd",
                            "product": product.id,
                            "unit_amount": 4999,
                            "recurring": {"interval": "month"},
                        },
                    }
                ],
                "metadata": {"x" * 41: "too long a key"},
            },
        )
    assert error.value.param == f"metadata[{'x' * 41}]"
    assert emulator.get(sub_id) == before
    assert [e["type"] for e in emulator.events()[events:]] == ["product.created"]
    assert len(emulator.objects("price")) == 1
