"""Stripe Checkout end to end on both backends: the real stripe-python client against the local Stripe API,
which delivers signed webhooks over HTTP to the webhook route served on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import stripe
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.stripe_webhook import STRIPE_WEBHOOK_PATH, stripe_webhook_route
from db.engine import create_session_factory
from db.models import CreditEntry, PaymentEvent, Purchase, Subscription, User
from sandbox.stripe import StripeEmulator, WebhookEndpoint
from scheduler.billing import renewals_job
from services.billing import Catalogue, CreditsRequired, Entitlements
from services.billing.purchases import PurchaseService
from services.billing.renewals import RenewalService
from services.billing.stripe_checkout import StripeBilling, telegram_return_urls
from services.credits import CreditLedger
from tests.integration.billing_support import make_users

SECRET = "whsec_cryptouniverse_test"
CATALOGUE = Catalogue()


@dataclass
class Sent:
    telegram_id: int
    locale: str | None
    key: str
    params: dict[str, Any]


class RecordingNotifier:
    def __init__(self) -> None:
        self.sent: list[Sent] = []

    async def send(self, telegram_id: int, locale: str | None, key: str, **params: Any) -> bool:
        self.sent.append(Sent(telegram_id, locale, key, params))
        return True

    def sent_keys(self) -> list[str]:
        return [s.key for s in self.sent]


@pytest.fixture
def factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


@pytest.fixture
async def emulator() -> AsyncIterator[StripeEmulator]:
    emu = StripeEmulator(seed=7, webhook_retry_delays=(0.05, 0.1, 0.2))
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
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def billing(
    client: stripe.StripeClient, factory: async_sessionmaker[AsyncSession], notifier: RecordingNotifier
) -> StripeBilling:
    return StripeBilling(
        client_factory=lambda: client,
        session_factory=factory,
        catalogue=CATALOGUE,
        webhook_secret=SECRET,
        return_urls=telegram_return_urls("cryptouniverse_bot"),
        notifier=notifier,
    )


@pytest.fixture
async def endpoint(billing: StripeBilling, emulator: StripeEmulator) -> AsyncIterator[WebhookEndpoint]:
    app = web.Application()
    app.router.add_post(STRIPE_WEBHOOK_PATH, stripe_webhook_route(billing))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[-1][1]
    yield emulator.add_webhook_endpoint(f"http://127.0.0.1:{port}{STRIPE_WEBHOOK_PATH}", secret=SECRET)
    await runner.cleanup()


@dataclass
class Bought:
    user_id: int
    telegram_id: int
    purchase_id: int
    session_id: str
    url: str


async def checkout(
    factory: async_sessionmaker[AsyncSession],
    billing: StripeBilling,
    kind: str,
    item: str,
    user_id: int | None = None,
) -> Bought:
    if user_id is None:
        (user_id,) = await make_users(factory)
    async with factory() as session:
        user = await session.get(User, user_id)
        assert user is not None
        purchase = await PurchaseService(session, CATALOGUE).create(user_id, kind, item, "stripe")
        url = await billing.create_checkout(session, user, purchase)
        await session.commit()
        row = await session.get(Purchase, purchase.id)
        assert row is not None and row.provider_session_id is not None
        return Bought(user_id, user.telegram_id, purchase.id, row.provider_session_id, url)


async def buy(
    emulator: StripeEmulator,
    factory: async_sessionmaker[AsyncSession],
    billing: StripeBilling,
    kind: str,
    item: str,
    user_id: int | None = None,
) -> Bought:
    bought = await checkout(factory, billing, kind, item, user_id)
    emulator.pay_checkout_session(bought.session_id)
    await emulator.wait_for_webhooks()
    return bought


async def balance(factory: async_sessionmaker[AsyncSession], user_id: int) -> tuple[Decimal, Decimal]:
    async with factory() as session:
        current = await CreditLedger(session).balance(user_id)
        return current.balance, current.debt


async def plan_of(factory: async_sessionmaker[AsyncSession], user_id: int, at: datetime | None = None) -> str:
    async with factory() as session:
        when = at or datetime.now(UTC)
        return (await Entitlements(session, CATALOGUE, clock=lambda: when).plan(user_id)).code


async def purchase_row(factory: async_sessionmaker[AsyncSession], purchase_id: int) -> Purchase:
    async with factory() as session:
        row = await session.get(Purchase, purchase_id)
        assert row is not None
        return row


async def subscription_of(factory: async_sessionmaker[AsyncSession], user_id: int) -> Subscription:
    async with factory() as session:
        row = await session.scalar(
            select(Subscription).where(Subscription.user_id == user_id).order_by(Subscription.id.desc())
        )
        assert row is not None
        return row


async def entries(factory: async_sessionmaker[AsyncSession], user_id: int) -> list[tuple[str, Decimal]]:
    async with factory() as session:
        rows = await session.execute(
            select(CreditEntry.idempotency_key, CreditEntry.amount)
            .where(CreditEntry.user_id == user_id)
            .order_by(CreditEntry.id)
        )
        return [(key, Decimal(amount)) for key, amount in rows.all()]


def event_id(emulator: StripeEmulator, event_type: str) -> str:
    return str(emulator.events(event_type)[-1]["id"])


def stripe_time(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)


# ------------------------------------------------------------------------------------------------ tests


async def test_pack_purchase_grants_its_credits_once(
    emulator: StripeEmulator,
    client: stripe.StripeClient,
    factory: async_sessionmaker[AsyncSession],
    billing: StripeBilling,
    notifier: RecordingNotifier,
    endpoint: WebhookEndpoint,
) -> None:
    bought = await checkout(factory, billing, "pack", "credits_500")
    assert bought.url == f"{emulator.base_url}/checkout/{bought.session_id}"
    again = await checkout(factory, billing, "pack", "credits_100", user_id=bought.user_id)
    assert again.session_id != bought.session_id

    # a retried request for the same purchase makes no second session
    async with factory() as session:
        user = await session.get(User, bought.user_id)
        view = await PurchaseService(session, CATALOGUE).get(bought.purchase_id)
        assert user is not None and view is not None
        assert await billing.create_checkout(session, user, view) == bought.url
        await session.commit()
    assert len(emulator.objects("checkout.session")) == 2

    created = await client.v1.checkout.sessions.retrieve_async(bought.session_id)
    assert (created.mode, created.amount_total, created.currency) == ("payment", 5000, "usd")
    assert created.client_reference_id == str(bought.purchase_id)
    assert created.metadata is not None
    metadata = created.metadata.to_dict()
    assert metadata["purchase_id"] == str(bought.purchase_id)
    assert metadata["user_id"] == str(bought.user_id) and metadata["tenant_id"]
    assert created.success_url == f"https://t.me/cryptouniverse_bot?start=paid_{bought.purchase_id}"

    emulator.pay_checkout_session(bought.session_id)
    await emulator.wait_for_webhooks()

    assert await balance(factory, bought.user_id) == (Decimal(500), Decimal(0))
    row = await purchase_row(factory, bought.purchase_id)
    paid = emulator.get(bought.session_id)
    assert (row.status, row.provider_payment_id) == ("paid", paid["payment_intent"])
    assert [(s.telegram_id, s.key, s.params["credits"]) for s in notifier.sent] == [
        (bought.telegram_id, "billing.stripe.pack_paid", "500")
    ]
    assert all(delivery.ok for delivery in emulator.deliveries)
    assert (await purchase_row(factory, again.purchase_id)).status == "pending"


async def test_plan_purchase_activates_the_plan_with_its_monthly_credits(
    emulator: StripeEmulator,
    client: stripe.StripeClient,
    factory: async_sessionmaker[AsyncSession],
    billing: StripeBilling,
    notifier: RecordingNotifier,
    endpoint: WebhookEndpoint,
) -> None:
    assert await plan_of(factory, (await make_users(factory))[0]) == "free"
    bought = await checkout(factory, billing, "plan", "pro")
    created = await client.v1.checkout.sessions.retrieve_async(bought.session_id)
    assert (created.mode, created.amount_total) == ("subscription", 9900)

    done = emulator.pay_checkout_session(bought.session_id)
    await emulator.wait_for_webhooks()

    stripe_sub = emulator.get(done["subscription"])
    assert stripe_sub["metadata"]["purchase_id"] == str(bought.purchase_id)
    assert stripe_sub["items"]["data"][0]["price"]["recurring"]["interval"] == "month"
    assert await plan_of(factory, bought.user_id) == "pro"
    assert await balance(factory, bought.user_id) == (Decimal(500), Decimal(0))
    sub = await subscription_of(factory, bought.user_id)
    assert (sub.status, sub.provider, sub.plan) == ("active", "stripe", "pro")
    assert (sub.stripe_subscription_id, sub.stripe_customer_id) == (done["subscription"], done["customer"])
    assert sub.current_period_end == stripe_time(stripe_sub["current_period_end"])
    assert sub.purchase_id == bought.purchase_id
    row = await purchase_row(factory, bought.purchase_id)
    assert row.status == "paid"
    assert row.provider_payment_id == emulator.get(done["invoice"])["payment_intent"]
    assert notifier.sent_keys() == ["billing.stripe.plan_activated"]
    assert notifier.sent[0].params == {
        "plan": "Pro",
        "until": sub.current_period_end.strftime("%Y-%m-%d"),
        "credits": "500",
    }
    assert all(delivery.ok for delivery in emulator.deliveries)


async def test_the_same_event_five_times_grants_once(
    emulator: StripeEmulator,
    factory: async_sessionmaker[AsyncSession],
    billing: StripeBilling,
    notifier: RecordingNotifier,
    endpoint: WebhookEndpoint,
) -> None:
    bought = await buy(emulator, factory, billing, "pack", "credits_100")
    completed = event_id(emulator, "checkout.session.completed")

    for _ in range(5):
        (delivery,) = await emulator.deliver_event(completed)
        assert delivery.status == 200
        assert '"duplicate"' in delivery.response_body

    assert await balance(factory, bought.user_id) == (Decimal(100), Decimal(0))
    assert await entries(factory, bought.user_id) == [(f"purchase:{bought.purchase_id}", Decimal(100))]
    assert notifier.sent_keys() == ["billing.stripe.pack_paid"]
    async with factory() as session:
        recorded = await session.scalar(
            select(func.count()).select_from(PaymentEvent).where(PaymentEvent.event_id == completed)
        )
    assert recorded == 1


async def test_bad_signature_and_stale_timestamp_are_refused_and_change_nothing(
    emulator: StripeEmulator,
    factory: async_sessionmaker[AsyncSession],
    billing: StripeBilling,
    notifier: RecordingNotifier,
    endpoint: WebhookEndpoint,
) -> None:
    bought = await checkout(factory, billing, "pack", "credits_100")
    emulator.hold_webhooks()
    emulator.pay_checkout_session(bought.session_id)
    completed = event_id(emulator, "checkout.session.completed")

    (wrong,) = await emulator.deliver_event(completed, secret="whsec_someone_else")
    (stale,) = await emulator.deliver_event(completed, timestamp=int(time.time()) - 301)
    (garbage,) = await emulator.deliver_event(completed, signature="t=1,v1=deadbeef")
    assert (wrong.status, stale.status, garbage.status) == (400, 400, 400)

    assert (await purchase_row(factory, bought.purchase_id)).status == "pending"
    assert await balance(factory, bought.user_id) == (Decimal(0), Decimal(0))
    async with factory() as session:
        assert await session.scalar(select(func.count()).select_from(PaymentEvent)) == 0
    assert notifier.sent == []

    await emulator.release_webhooks()
    await emulator.wait_for_webhooks()
    assert (await purchase_row(factory, bought.purchase_id)).status == "paid"
    assert await balance(factory, bought.user_id) == (Decimal(100), Decimal(0))


@pytest.mark.parametrize("first", ["invoice.paid", "checkout.session.completed"])
async def test_first_invoice_and_checkout_in_either_order_grant_once(
    first: str,
    emulator: StripeEmulator,
    factory: async_sessionmaker[AsyncSession],
    billing: StripeBilling,
    notifier: RecordingNotifier,
    endpoint: WebhookEndpoint,
) -> None:
    bought = await checkout(factory, billing, "plan", "basic")
    emulator.hold_webhooks()
    emulator.pay_checkout_session(bought.session_id)
    second = "checkout.session.completed" if first == "invoice.paid" else "invoice.paid"
    await emulator.release_webhooks([event_id(emulator, first)])

    assert await plan_of(factory, bought.user_id) == "basic"
    assert await balance(factory, bought.user_id) == (Decimal(100), Decimal(0))

    await emulator.release_webhooks([event_id(emulator, second)])
    emulator.resume_webhooks()
    await emulator.wait_for_webhooks()

    assert await plan_of(factory, bought.user_id) == "basic"
    assert await entries(factory, bought.user_id) == [(f"plan:purchase:{bought.purchase_id}", Decimal(100))]
    assert notifier.sent_keys() == ["billing.stripe.plan_activated"]
    async with factory() as session:
        subs = (await session.scalars(select(Subscription))).all()
    assert [(s.plan, s.status) for s in subs] == [("basic", "active")]
    assert all(delivery.ok for delivery in emulator.deliveries)


async def test_renewal_extends_the_period_and_grants_the_next_month(
    emulator: StripeEmulator,
    client: stripe.StripeClient,
    factory: async_sessionmaker[AsyncSession],
    billing: StripeBilling,
    notifier: RecordingNotifier,
    endpoint: WebhookEndpoint,
) -> None:
    bought = await buy(emulator, factory, billing, "plan", "pro")
    first = await subscription_of(factory, bought.user_id)
    assert first.stripe_subscription_id is not None

    invoice = emulator.advance_subscription(first.stripe_subscription_id)
    await emulator.wait_for_webhooks()

    assert invoice is not None
    renewed = await subscription_of(factory, bought.user_id)
    stripe_sub = emulator.get(first.stripe_subscription_id)
    assert renewed.id == first.id
    assert renewed.current_period_start == first.current_period_end
    assert (
        renewed.current_period_end == stripe_time(stripe_sub["current_period_end"]) > first.current_period_end
    )
    assert await balance(factory, bought.user_id) == (Decimal(1000), Decimal(0))
    assert await plan_of(factory, bought.user_id, renewed.current_period_end - timedelta(hours=1)) == "pro"
    assert notifier.sent_keys() == ["billing.stripe.plan_activated", "billing.stripe.renewed"]
    assert notifier.sent[-1].params["credits"] == "500"

    # refunding the renewal takes that month's credits back
    await client.v1.refunds.create_async({"payment_intent": invoice["payment_intent"]})
    await emulator.wait_for_webhooks()
    assert await balance(factory, bought.user_id) == (Decimal(500), Decimal(0))
    assert (await purchase_row(factory, bought.purchase_id)).status == "paid"
    assert notifier.sent_keys()[-1] == "billing.stripe.refunded"
    assert all(delivery.ok for delivery in emulator.deliveries)


async def test_plan_change_and_payment_trouble_follow_stripe(
    emulator: StripeEmulator,
    client: stripe.StripeClient,
    factory: async_sessionmaker[AsyncSession],
    billing: StripeBilling,
    notifier: RecordingNotifier,
    endpoint: WebhookEndpoint,
) -> None:
    bought = await buy(emulator, factory, billing, "plan", "basic")
    sub_id = (await subscription_of(factory, bought.user_id)).stripe_subscription_id
    assert sub_id is not None
    product = await client.v1.products.create_async(
        {"name": "Enterprise", "metadata": {"plan": "enterprise"}}
    )
    price = await client.v1.prices.create_async(
        {"product": product.id, "unit_amount": 49900, "currency": "usd", "recurring": {"interval": "month"}}
    )
    item = emulator.get(sub_id)["items"]["data"][0]["id"]
    await client.v1.subscriptions.update_async(sub_id, {"items": [{"id": item, "price": price.id}]})
    await emulator.wait_for_webhooks()
    assert await plan_of(factory, bought.user_id) == "enterprise"
    assert notifier.sent[-1].key == "billing.stripe.plan_changed"
    assert notifier.sent[-1].params == {"old_plan": "Basic", "plan": "Enterprise"}

    failed = emulator.advance_subscription(sub_id, fail=True)
    await emulator.wait_for_webhooks()
    assert failed is not None
    assert (await subscription_of(factory, bought.user_id)).status == "past_due"
    assert "billing.stripe.past_due" in notifier.sent_keys()

    emulator.pay_invoice(failed["id"])
    await emulator.wait_for_webhooks()
    assert (await subscription_of(factory, bought.user_id)).status == "active"
    assert await plan_of(factory, bought.user_id) == "enterprise"
    assert await balance(factory, bought.user_id) == (Decimal(100 + 3000), Decimal(0))
    assert all(delivery.ok for delivery in emulator.deliveries)


async def test_cancel_at_period_end_keeps_the_plan_until_the_end_then_free(
    emulator: StripeEmulator,
    client: stripe.StripeClient,
    factory: async_sessionmaker[AsyncSession],
    billing: StripeBilling,
    notifier: RecordingNotifier,
    endpoint: WebhookEndpoint,
) -> None:
    bought = await buy(emulator, factory, billing, "plan", "pro")
    sub = await subscription_of(factory, bought.user_id)
    assert sub.stripe_subscription_id is not None

    await client.v1.subscriptions.update_async(sub.stripe_subscription_id, {"cancel_at_period_end": True})
    await emulator.wait_for_webhooks()

    scheduled = await subscription_of(factory, bought.user_id)
    assert (scheduled.status, scheduled.cancel_at_period_end) == ("active", True)
    end = scheduled.current_period_end
    assert await plan_of(factory, bought.user_id) == "pro"
    assert await plan_of(factory, bought.user_id, end - timedelta(seconds=1)) == "pro"
    assert await plan_of(factory, bought.user_id, end + timedelta(seconds=1)) == "free"
    assert notifier.sent[-1].key == "billing.stripe.cancel_scheduled"
    assert notifier.sent[-1].params["until"] == end.strftime("%Y-%m-%d")

    assert emulator.advance_subscription(sub.stripe_subscription_id) is None  # the period's end came
    await emulator.wait_for_webhooks()

    ended = await subscription_of(factory, bought.user_id)
    assert ended.status == "canceled"
    assert await plan_of(factory, bought.user_id) == "free"
    assert notifier.sent_keys() == [
        "billing.stripe.plan_activated",
        "billing.stripe.cancel_scheduled",
        "billing.stripe.subscription_ended",
    ]
    assert await balance(factory, bought.user_id) == (Decimal(500), Decimal(0))


async def test_refund_reverses_credits_and_debt_blocks_live_entries(
    emulator: StripeEmulator,
    client: stripe.StripeClient,
    factory: async_sessionmaker[AsyncSession],
    billing: StripeBilling,
    notifier: RecordingNotifier,
    endpoint: WebhookEndpoint,
) -> None:
    plan = await buy(emulator, factory, billing, "plan", "pro")
    pack = await buy(emulator, factory, billing, "pack", "credits_100", user_id=plan.user_id)
    user_id = plan.user_id
    assert await balance(factory, user_id) == (Decimal(600), Decimal(0))
    async with factory() as session:
        await CreditLedger(session).consume_profit(user_id, Decimal(550), "trade:1")
        await session.commit()
        allowed = await Entitlements(session, CATALOGUE).check(user_id, "live_entry")
    assert allowed.allowed

    intent = emulator.get(pack.session_id)["payment_intent"]
    await client.v1.refunds.create_async({"payment_intent": intent})
    await emulator.wait_for_webhooks()

    assert await balance(factory, user_id) == (Decimal(0), Decimal(50))
    assert (await purchase_row(factory, pack.purchase_id)).status == "refunded"
    assert await plan_of(factory, user_id) == "pro"
    async with factory() as session:
        refused = await Entitlements(session, CATALOGUE).check(user_id, "live_entry")
    assert not refused.allowed and isinstance(refused.error, CreditsRequired)
    assert notifier.sent[-1].key == "billing.stripe.refunded_debt"
    assert notifier.sent[-1].params == {"credits": "100", "balance": "0", "debt": "50"}

    # the refund event again changes nothing
    (delivery,) = await emulator.deliver_event(event_id(emulator, "charge.refunded"))
    assert delivery.status == 200
    assert await balance(factory, user_id) == (Decimal(0), Decimal(50))
    assert notifier.sent_keys().count("billing.stripe.refunded_debt") == 1

    # refunding the plan's first payment ends the plan and takes its credits back
    first_invoice = emulator.get(emulator.get(plan.session_id)["invoice"])
    await client.v1.refunds.create_async({"payment_intent": first_invoice["payment_intent"]})
    await emulator.wait_for_webhooks()
    assert (await purchase_row(factory, plan.purchase_id)).status == "refunded"
    assert await plan_of(factory, user_id) == "free"
    assert await balance(factory, user_id) == (Decimal(0), Decimal(550))
    assert all(delivery.ok for delivery in emulator.deliveries)


# ------------------------------------------------------------------------------------- renewal job

NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)


async def add_subscription(
    factory: async_sessionmaker[AsyncSession],
    user_id: int,
    *,
    plan: str = "pro",
    provider: str = "telegram_stars",
    ends: datetime,
    cancel_at_period_end: bool = False,
    status: str = "active",
) -> int:
    async with factory() as session:
        row = Subscription(
            user_id=user_id,
            plan=plan,
            status=status,
            provider=provider,
            current_period_start=ends - timedelta(days=30),
            current_period_end=ends,
            cancel_at_period_end=cancel_at_period_end,
            stripe_subscription_id=f"sub_{user_id}" if provider == "stripe" else None,
        )
        session.add(row)
        await session.commit()
        return row.id


async def status_of(factory: async_sessionmaker[AsyncSession], sub_id: int) -> str:
    async with factory() as session:
        row = await session.get(Subscription, sub_id)
        assert row is not None
        return row.status


async def test_renewal_job_expires_ended_plans(
    factory: async_sessionmaker[AsyncSession], notifier: RecordingNotifier
) -> None:
    stars, renewing, late, canceling, running = await make_users(factory, 5)
    ids = {
        "stars": await add_subscription(factory, stars, ends=NOW - timedelta(minutes=1)),
        "renewing": await add_subscription(
            factory, renewing, provider="stripe", ends=NOW - timedelta(days=1)
        ),
        "late": await add_subscription(factory, late, provider="stripe", ends=NOW - timedelta(days=4)),
        "canceling": await add_subscription(
            factory, canceling, provider="stripe", ends=NOW - timedelta(hours=1), cancel_at_period_end=True
        ),
        "running": await add_subscription(factory, running, ends=NOW + timedelta(days=10)),
    }
    renewals = RenewalService(factory, CATALOGUE, clock=lambda: NOW)

    assert await renewals_job(renewals, notifier) == 3

    statuses = {name: await status_of(factory, sub_id) for name, sub_id in ids.items()}
    assert statuses == {
        "stars": "expired",
        "renewing": "active",
        "late": "expired",
        "canceling": "expired",
        "running": "active",
    }
    async with factory() as session:
        telegram = {user.id: user.telegram_id for user in (await session.scalars(select(User))).all()}
    assert sorted((s.telegram_id, s.key) for s in notifier.sent) == sorted(
        (telegram[user], "billing.plan.expired") for user in (stars, late, canceling)
    )
    assert {s.params["current_plan"] for s in notifier.sent} == {"Free"}
    assert await plan_of(factory, stars, NOW) == "free"

    assert await renewals_job(renewals, notifier) == 0
    assert len(notifier.sent) == 3


async def test_renewal_job_reminds_once_three_days_before_a_plan_ends(
    factory: async_sessionmaker[AsyncSession], notifier: RecordingNotifier
) -> None:
    stars, renewing, canceling, later = await make_users(factory, 4)
    ends = NOW + timedelta(days=2, hours=20)
    stars_sub = await add_subscription(factory, stars, ends=ends)
    await add_subscription(factory, renewing, provider="stripe", ends=ends)
    await add_subscription(factory, canceling, provider="stripe", ends=ends, cancel_at_period_end=True)
    await add_subscription(factory, later, ends=NOW + timedelta(days=5))
    clock = [NOW]
    renewals = RenewalService(factory, CATALOGUE, clock=lambda: clock[0])

    assert await renewals_job(renewals, notifier) == 2
    assert [s.key for s in notifier.sent] == ["billing.plan.ending_soon"] * 2
    assert notifier.sent[0].params == {"plan": "Pro", "until": ends.strftime("%Y-%m-%d"), "count": 3}

    clock[0] = NOW + timedelta(days=1)
    assert await renewals_job(renewals, notifier) == 0

    # a new period is a new reminder
    async with factory() as session:
        row = await session.get(Subscription, stars_sub)
        assert row is not None
        row.current_period_end = ends + timedelta(days=30)
        await session.commit()
    clock[0] = ends + timedelta(days=28)
    assert await renewals_job(renewals, notifier) == 4  # the new period's reminder; the others ended
    assert sorted(s.key for s in notifier.sent[2:]) == [
        "billing.plan.ending_soon",
        *["billing.plan.expired"] * 3,
    ]
    assert await status_of(factory, stars_sub) == "active"


async def test_a_failure_while_handling_answers_500_and_the_retry_applies_it(
    emulator: StripeEmulator,
    factory: async_sessionmaker[AsyncSession],
    billing: StripeBilling,
    notifier: RecordingNotifier,
    endpoint: WebhookEndpoint,
) -> None:
    bought = await checkout(factory, billing, "pack", "credits_100")
    emulator.fail_next(1, status=500, path=f"/v1/checkout/sessions/{bought.session_id}")
    emulator.pay_checkout_session(bought.session_id)
    await emulator.wait_for_webhooks()

    completed = [d for d in emulator.deliveries if d.event_type == "checkout.session.completed"]
    assert [d.status for d in completed] == [500, 200]
    assert await balance(factory, bought.user_id) == (Decimal(100), Decimal(0))
    assert notifier.sent_keys() == ["billing.stripe.pack_paid"]
