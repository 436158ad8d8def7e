"""Payment, subscription and refund flows driven through the real stripe-python client (async methods)."""

from __future__ import annotations

import datetime as dt

import pytest
import stripe

from sandbox.stripe import StripeEmulator, StripeError
from tests.sandbox_stripe.stripe_support import payment_session_params, subscription_session_params


def _types(emulator: StripeEmulator) -> list[str]:
    return [event["type"] for event in emulator.events()]


async def test_payment_session_is_created_paid_and_recorded(
    emulator: StripeEmulator, client: stripe.StripeClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(payment_session_params())

    assert session.object == "checkout.session"
    assert session.id.startswith("cs_test_")
    assert session.url == f"{emulator.base_url}/checkout/{session.id}"
    assert (session.status, session.payment_status, session.mode) == ("open", "unpaid", "payment")
    assert (session.amount_total, session.currency) == (1000, "usd")
    assert session.client_reference_id == "5"
    assert session.metadata is not None
    assert session.metadata.to_dict() == {"user_id": "5", "pack": "credits_100"}
    assert session.payment_intent is None
    assert session.created <= session.expires_at - 23 * 3600
    body = emulator.requests[-1].body
    assert "line_items[0][price_data][product_data][name]=100+credits" in body
    assert "metadata[user_id]=5" in body

    emulator.pay_checkout_session(session.id, email="buyer@example.com")

    paid = await client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["payment_intent.latest_charge", "line_items"]}
    )
    assert (paid.status, paid.payment_status, paid.url) == ("complete", "paid", None)
    assert paid.customer_details is not None and paid.customer_details.email == "buyer@example.com"
    intent = paid.payment_intent
    assert isinstance(intent, stripe.PaymentIntent)
    assert intent.id.startswith("pi_") and intent.status == "succeeded" and intent.amount_received == 1000
    charge = intent.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert charge.id.startswith("ch_") and charge.paid and charge.status == "succeeded"
    assert paid.line_items is not None
    assert [(i.description, i.quantity, i.amount_total) for i in paid.line_items.data] == [
        ("100 credits", 2, 1000)
    ]

    assert _types(emulator) == ["charge.succeeded", "payment_intent.succeeded", "checkout.session.completed"]
    completed = emulator.events("checkout.session.completed")[0]
    assert completed["data"]["object"]["metadata"] == {"user_id": "5", "pack": "credits_100"}
    assert completed["id"].startswith("evt_") and completed["request"]["id"] is None


async def test_payment_with_a_stored_price_and_its_line_items(client: stripe.StripeClient) -> None:
    product = await client.v1.products.create_async({"name": "500 credits", "metadata": {"credits": "500"}})
    price = await client.v1.prices.create_async(
        {"product": product.id, "unit_amount": 2000, "currency": "eur"}
    )
    assert product.id.startswith("prod_") and price.id.startswith("price_")
    assert (price.type, price.recurring) == ("one_time", None)

    session = await client.v1.checkout.sessions.create_async(
        {
            "mode": "payment",
            "line_items": [{"price": price.id, "quantity": 3}],
            "success_url": "https://x.test/",
        }
    )
    assert (session.amount_total, session.currency) == (6000, "eur")
    items = await client.v1.checkout.sessions.line_items.list_async(session.id)
    assert items.data[0].price is not None and items.data[0].price.id == price.id
    assert (items.data[0].description, items.data[0].quantity) == ("500 credits", 3)

    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.checkout.sessions.create_async(
            {"mode": "payment", "line_items": [{"price": "price_missing", "quantity": 1}]}
        )
    assert error.value.http_status == 404
    assert error.value.code == "resource_missing"
    assert error.value.param == "line_items[0][price]"


async def test_subscription_checkout_creates_customer_subscription_and_paid_invoice(
    emulator: StripeEmulator, client: stripe.StripeClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(subscription_session_params())
    assert session.mode == "subscription" and session.subscription is None

    emulator.pay_checkout_session(session.id)

    done = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert done.status == "complete" and done.payment_status == "paid"
    assert isinstance(done.subscription, str) and done.subscription.startswith("sub_")
    assert isinstance(done.customer, str) and done.customer.startswith("cus_")
    assert isinstance(done.invoice, str) and done.invoice.startswith("in_")

    customer = await client.v1.customers.retrieve_async(done.customer)
    assert customer.email == "trader@example.com"

    sub = await client.v1.subscriptions.retrieve_async(done.subscription)
    assert (sub.status, sub.customer, sub.cancel_at_period_end) == ("active", customer.id, False)
    assert sub.metadata is not None and sub.metadata.to_dict() == {"user_id": "7", "plan": "pro"}
    item = sub["items"].data[0]
    start = dt.datetime.fromtimestamp(item.current_period_start, dt.UTC)
    end = dt.datetime.fromtimestamp(item.current_period_end, dt.UTC)
    assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == 1
    assert item.price.unit_amount == 1999 and item.price.recurring is not None
    assert item.price.recurring.interval == "month" and item.quantity == 1
    assert (sub["current_period_start"], sub["current_period_end"]) == (
        item.current_period_start,
        item.current_period_end,
    )

    invoice = await client.v1.invoices.retrieve_async(done.invoice)
    assert (invoice.status, invoice.billing_reason) == ("paid", "subscription_create")
    assert (invoice.amount_paid, invoice.amount_due, invoice.currency) == (1999, 1999, "usd")
    assert invoice["subscription"] == sub.id
    assert invoice.parent is not None and invoice.parent.subscription_details is not None
    details = invoice.parent.subscription_details
    assert details.metadata is not None and details.metadata.to_dict() == {"user_id": "7", "plan": "pro"}
    line = invoice.lines.data[0]
    assert line.amount == 1999 and line.period.start == item.current_period_start
    assert invoice.hosted_invoice_url == f"{emulator.base_url}/invoices/{invoice.id}"

    assert _types(emulator) == [
        "customer.created",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "charge.succeeded",
        "payment_intent.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        "checkout.session.completed",
    ]
    assert emulator.events("invoice.created")[0]["data"]["object"]["status"] == "draft"


async def test_subscription_with_a_one_time_setup_fee(
    emulator: StripeEmulator, client: stripe.StripeClient
) -> None:
    params = subscription_session_params()
    params["line_items"] = [
        *params["line_items"],
        {
            "price_data": {"currency": "usd", "unit_amount": 500, "product_data": {"name": "Setup"}},
            "quantity": 1,
        },
    ]
    session = await client.v1.checkout.sessions.create_async(params)
    assert session.amount_total == 2499
    done = emulator.pay_checkout_session(session.id)
    sub = await client.v1.subscriptions.retrieve_async(done["subscription"])
    assert [i.price.unit_amount for i in sub["items"].data] == [1999]
    first = await client.v1.invoices.retrieve_async(done["invoice"])
    assert first.amount_paid == 2499
    assert [(line.description, line.amount) for line in first.lines.data][-1] == ("Setup", 500)
    renewal = emulator.advance_subscription(sub.id)
    assert renewal is not None and renewal["amount_paid"] == 1999


async def test_renewal_price_change_and_cancellation(
    emulator: StripeEmulator, client: stripe.StripeClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(subscription_session_params())
    sub_id = emulator.pay_checkout_session(session.id)["subscription"]
    first = await client.v1.subscriptions.retrieve_async(sub_id)

    renewal = emulator.advance_subscription(sub_id)
    assert renewal is not None
    assert (renewal["billing_reason"], renewal["status"], renewal["amount_paid"]) == (
        "subscription_cycle",
        "paid",
        1999,
    )
    renewed = await client.v1.subscriptions.retrieve_async(sub_id)
    assert renewed["current_period_start"] == first["current_period_end"]
    assert renewed.latest_invoice == renewal["id"]
    paid_events = emulator.events("invoice.paid")
    assert [e["data"]["object"]["billing_reason"] for e in paid_events] == [
        "subscription_create",
        "subscription_cycle",
    ]
    updated = emulator.events("customer.subscription.updated")[-1]
    assert updated["data"]["previous_attributes"]["current_period_start"] == first["current_period_start"]

    product = await client.v1.products.create_async({"name": "Elite plan"})
    elite = await client.v1.prices.create_async(
        {"product": product.id, "unit_amount": 4999, "currency": "usd", "recurring": {"interval": "month"}}
    )
    item_id = renewed["items"].data[0].id
    changed = await client.v1.subscriptions.update_async(
        sub_id, {"items": [{"id": item_id, "price": elite.id}], "proration_behavior": "none"}
    )
    assert changed["items"].data[0].price.id == elite.id and changed["items"].data[0].id == item_id
    change_event = emulator.events("customer.subscription.updated")[-1]
    assert change_event["data"]["previous_attributes"]["items"]["data"][0]["price"]["unit_amount"] == 1999
    next_invoice = emulator.advance_subscription(sub_id)
    assert next_invoice is not None and next_invoice["amount_paid"] == 4999

    pending = await client.v1.subscriptions.update_async(sub_id, {"cancel_at_period_end": True})
    assert pending.cancel_at_period_end and pending.cancel_at == pending["current_period_end"]
    assert pending.status == "active"
    assert emulator.advance_subscription(sub_id) is None
    ended = await client.v1.subscriptions.retrieve_async(sub_id)
    assert ended.status == "canceled" and ended.ended_at == pending["current_period_end"]
    assert _types(emulator)[-1] == "customer.subscription.deleted"

    customer_id = emulator.get(sub_id)["customer"]
    listed = await client.v1.subscriptions.list_async({"customer": customer_id})
    assert listed.data == []
    listed = await client.v1.subscriptions.list_async({"customer": customer_id, "status": "all"})
    assert [s.id for s in listed.data] == [sub_id]


async def test_cancel_immediately(emulator: StripeEmulator, client: stripe.StripeClient) -> None:
    session = await client.v1.checkout.sessions.create_async(subscription_session_params())
    sub_id = emulator.pay_checkout_session(session.id)["subscription"]
    canceled = await client.v1.subscriptions.cancel_async(sub_id)
    assert canceled.status == "canceled" and canceled.canceled_at is not None
    assert emulator.requests[-1].endpoint == f"DELETE /v1/subscriptions/{sub_id}"
    assert emulator.events()[-1]["type"] == "customer.subscription.deleted"
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.subscriptions.cancel_async(sub_id)
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.subscriptions.retrieve_async("sub_missing")
    assert error.value.http_status == 404


async def test_failed_renewal_then_paid_invoice(
    emulator: StripeEmulator, client: stripe.StripeClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(subscription_session_params())
    sub_id = emulator.pay_checkout_session(session.id)["subscription"]

    failed = emulator.advance_subscription(sub_id, fail=True)
    assert failed is not None and failed["status"] == "open" and failed["amount_remaining"] == 1999
    sub = await client.v1.subscriptions.retrieve_async(sub_id)
    assert sub.status == "past_due"
    assert "invoice.payment_failed" in _types(emulator)
    intent = await client.v1.payment_intents.retrieve_async(failed["payment_intent"])
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error is not None and intent.last_payment_error.code == "card_declined"

    paid = await client.v1.invoices.pay_async(failed["id"])
    assert paid.status == "paid" and paid.amount_paid == 1999
    sub = await client.v1.subscriptions.retrieve_async(sub_id)
    assert sub.status == "active"
    assert _types(emulator)[-3:] == [
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ]
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.invoices.pay_async(failed["id"])
    assert error.value.code == "invoice_already_paid"


async def test_refunds_partial_then_rest(emulator: StripeEmulator, client: stripe.StripeClient) -> None:
    session = await client.v1.checkout.sessions.create_async(payment_session_params())
    intent_id = emulator.pay_checkout_session(session.id)["payment_intent"]
    intent = await client.v1.payment_intents.retrieve_async(intent_id)
    assert isinstance(intent.latest_charge, str)

    partial = await client.v1.refunds.create_async(
        {"charge": intent.latest_charge, "amount": 300, "reason": "requested_by_customer"}
    )
    assert partial.id.startswith("re_") and partial.object == "refund"
    assert (partial.amount, partial.status, partial.payment_intent) == (300, "succeeded", intent_id)
    charge = await client.v1.charges.retrieve_async(intent.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (300, False)

    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.refunds.create_async({"payment_intent": intent_id, "amount": 800})
    assert (error.value.code, error.value.param) == ("amount_too_large", "amount")

    rest = await client.v1.refunds.create_async({"payment_intent": intent_id})
    assert rest.amount == 700
    charge = await client.v1.charges.retrieve_async(intent.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (1000, True)
    assert (await client.v1.refunds.retrieve_async(rest.id)).charge == charge.id
    listed = await client.v1.refunds.list_async({"charge": charge.id})
    assert [r.id for r in listed.data] == [rest.id, partial.id]

    refunded = emulator.events("charge.refunded")
    assert [e["data"]["object"]["amount_refunded"] for e in refunded] == [300, 1000]
    assert refunded[-1]["data"]["previous_attributes"] == {"amount_refunded": 300, "refunded": False}
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.refunds.create_async({"charge": charge.id})
    assert error.value.code == "charge_already_refunded"


async def test_expire_session(emulator: StripeEmulator, client: stripe.StripeClient) -> None:
    session = await client.v1.checkout.sessions.create_async(payment_session_params())
    expired = await client.v1.checkout.sessions.expire_async(session.id)
    assert (expired.status, expired.url) == ("expired", None)
    assert _types(emulator) == ["checkout.session.expired"]
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.checkout.sessions.expire_async(session.id)
    with pytest.raises(StripeError, match="expired"):
        emulator.pay_checkout_session(session.id)


async def test_session_expires_when_its_time_passes() -> None:
    now = [1_700_000_000.0]
    async with StripeEmulator(clock=lambda: now[0]) as emu:
        http = stripe.AIOHTTPClient()
        local = stripe.StripeClient(emu.api_key, base_addresses={"api": emu.base_url}, http_client=http)
        try:
            session = await local.v1.checkout.sessions.create_async(payment_session_params())
            assert session.created == 1_700_000_000 and session.expires_at == 1_700_000_000 + 24 * 3600
            now[0] += 24 * 3600
            again = await local.v1.checkout.sessions.retrieve_async(session.id)
            assert again.status == "expired"
            assert [e["type"] for e in emu.events()] == ["checkout.session.expired"]
        finally:
            await http.close_async()
