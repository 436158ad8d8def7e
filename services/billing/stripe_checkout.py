"""Stripe Checkout for credit packs (one-time payment) and plans (a monthly subscription), and the webhook
that fulfils them.

Creating: a pending `Purchase` (provider ``stripe``) becomes a Checkout Session whose metadata, client
reference and subscription metadata name the purchase, the user and the tenant. The request carries an
idempotency key derived from the purchase, so a retried request makes one session.

Webhooks: the body is verified against ``Stripe-Signature`` (`stripe.Webhook.construct_event`, tolerance
300 s); anything that does not verify raises `InvalidWebhook` and changes nothing. Each event id is recorded
once in ``payment_events`` (provider ``stripe``): a redelivery is answered and ignored. Events arrive out of
order, so each handler re-reads the objects it acts on from Stripe's API (the session, the subscription,
the invoice, the charge) and applies the state it finds there. All database work for one event is one
transaction; users are told after it commits.

Credits granted, by ledger key (see `PurchaseService`):

* a pack: ``purchase:<purchase id>``;
* a plan's first period: ``plan:purchase:<purchase id>``, granted by `PurchaseService.pay`, which runs on
  whichever of ``checkout.session.completed`` and ``invoice.paid`` (``subscription_create``) comes first
  and is a no-op for the other;
* every renewal: ``plan:invoice:<invoice id>`` on ``invoice.paid`` (``subscription_cycle``).

A refunded charge reverses the purchase it paid for (`PurchaseService.refund`) or the renewal it paid for;
what the balance no longer holds becomes debt, which blocks new live entries.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol, cast

import stripe
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from stripe.params.checkout import SessionCreateParams

from db.models import PaymentEvent, Subscription, User
from db.types import utcnow
from services.billing.plans import Catalogue, Plan
from services.billing.purchases import USD, PurchaseService, PurchaseView
from services.errors import ValidationError
from services.notify import Notifier

log = structlog.get_logger(__name__)

PROVIDER = "stripe"
DEFAULT_TOLERANCE = 300  # seconds
PAYMENT_EVENT_PREFIX = "payment:"  # payment_events row mapping a renewal's payment intent to its invoice

#: Stripe's subscription statuses as ours (``incomplete`` is not a state we act on).
STATUSES = {
    "active": "active",
    "trialing": "trialing",
    "past_due": "past_due",
    "unpaid": "past_due",
    "paused": "past_due",
    "canceled": "canceled",
    "incomplete_expired": "canceled",
}
RUNNING = ("active", "trialing", "past_due")
ENDED = ("canceled", "expired")


class InvalidWebhook(Exception):
    """The webhook's signature, timestamp or body did not verify; nothing was changed."""


class BillingUser(Protocol):
    """Who buys: a user profile or row."""

    @property
    def id(self) -> int: ...

    @property
    def tenant_id(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ReturnUrls:
    success_url: str
    cancel_url: str


ReturnUrlBuilder = Callable[[PurchaseView], ReturnUrls]


def telegram_return_urls(bot_username: str) -> ReturnUrlBuilder:
    """Back to the bot after paying or cancelling: ``https://t.me/<bot>?start=paid_<id>`` (or
    ``cancel_<id>``)."""

    def build(purchase: PurchaseView) -> ReturnUrls:
        base = f"https://t.me/{bot_username.lstrip('@')}?start="
        return ReturnUrls(f"{base}paid_{purchase.id}", f"{base}cancel_{purchase.id}")

    return build


@dataclass(frozen=True, slots=True)
class Notice:
    """A message for a user, sent after the transaction that caused it has committed."""

    telegram_id: int
    locale: str | None
    key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    event_id: str
    event_type: str
    status: str  # processed | duplicate | ignored
    purchase_id: int | None = None
    notices: tuple[Notice, ...] = ()

    @property
    def duplicate(self) -> bool:
        return self.status == "duplicate"


@dataclass
class _Fetched:
    """The objects an event is about, as Stripe's API has them now."""

    session: stripe.checkout.Session | None = None
    subscription: stripe.Subscription | None = None
    invoice: stripe.Invoice | None = None
    charge: stripe.Charge | None = None


@dataclass
class _Result:
    status: str = "processed"
    purchase_id: int | None = None
    notices: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)  # (user id, key, params)

    def tell(self, user_id: int, key: str, **params: Any) -> None:
        self.notices.append((user_id, key, params))


def _id(value: Any) -> str | None:
    """An expandable field's id, whether it came expanded or not."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return cast(str | None, getattr(value, "id", None))


def _when(timestamp: int | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, UTC) if timestamp is not None else None


def _day(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d") if moment is not None else ""


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _get(obj: Any, name: str) -> Any:
    """A field of a Stripe object (or a plain mapping), None when it is absent; also for fields its typed
    class does not declare (older or newer API versions)."""
    if obj is None or isinstance(obj, str):
        return None
    try:
        return obj[name]
    except KeyError:
        return None


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _meta(obj: Any) -> dict[str, str]:
    metadata = _get(obj, "metadata")
    if not metadata:
        return {}
    plain = metadata.to_dict() if isinstance(metadata, stripe.StripeObject) else dict(metadata)
    return {str(k): str(v) for k, v in plain.items()}


def _first_item(sub: stripe.Subscription) -> Any:
    data = _get(_get(sub, "items"), "data") or []
    return data[0] if data else None


def _period(sub: stripe.Subscription) -> tuple[datetime | None, datetime | None]:
    """The subscription's current period (kept on its items by the current API, on the object before)."""
    item = _first_item(sub)
    start = _get(item, "current_period_start")
    end = _get(item, "current_period_end")
    start = start if start is not None else _get(sub, "current_period_start")
    end = end if end is not None else _get(sub, "current_period_end")
    return _when(start), _when(end)


def _invoice_subscription(invoice: Any) -> str | None:
    details = _get(_get(invoice, "parent"), "subscription_details")
    return _id(_get(details, "subscription")) or _id(_get(invoice, "subscription"))


class StripeBilling:
    """Checkout links and the Stripe webhook. Needs no aiogram: users are told through the `Notifier`."""

    def __init__(
        self,
        *,
        client_factory: Callable[[], stripe.StripeClient],
        session_factory: async_sessionmaker[AsyncSession],
        catalogue: Catalogue,
        webhook_secret: str,
        return_urls: ReturnUrlBuilder,
        notifier: Notifier,
        clock: Callable[[], datetime] = utcnow,
        tolerance: int = DEFAULT_TOLERANCE,
        idempotency_prefix: str = "cryptouniverse",
    ) -> None:
        self._client_factory = client_factory
        self._client: stripe.StripeClient | None = None
        self.session_factory = session_factory
        self.catalogue = catalogue
        self.webhook_secret = webhook_secret
        self.return_urls = return_urls
        self.notifier = notifier
        self.clock = clock
        self.tolerance = tolerance
        self.idempotency_prefix = idempotency_prefix  # one per database sharing a Stripe account

    @property
    def client(self) -> stripe.StripeClient:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def purchases(self, session: AsyncSession) -> PurchaseService:
        return PurchaseService(session, self.catalogue, clock=self.clock)

    # ------------------------------------------------------------------------------------ checkout

    async def create_checkout(self, session: AsyncSession, user: BillingUser, purchase: PurchaseView) -> str:
        """A Checkout Session for a pending Stripe purchase; returns the URL to pay at. The session id is
        stored on the purchase in `session` (the caller commits)."""
        if purchase.provider != PROVIDER or purchase.currency != USD or purchase.user_id != user.id:
            raise ValueError(f"purchase {purchase.id} is not this user's Stripe purchase")
        if purchase.status != "pending":
            raise ValidationError(
                "billing.errors.already_paid" if purchase.status == "paid" else "billing.errors.not_payable"
            )
        metadata = {
            "purchase_id": str(purchase.id),
            "user_id": str(user.id),
            "tenant_id": str(user.tenant_id),
            "item": purchase.item_code,
        }
        urls = self.return_urls(purchase)
        price_data: dict[str, Any] = {
            "currency": "usd",
            "unit_amount": purchase.minor_amount,
            "product_data": {
                "name": self._product_name(purchase),
                "metadata": {"kind": purchase.kind, "item": purchase.item_code},
            },
        }
        params: dict[str, Any] = {
            "line_items": [{"price_data": price_data, "quantity": 1}],
            "client_reference_id": str(purchase.id),
            "metadata": metadata,
            "success_url": urls.success_url,
            "cancel_url": urls.cancel_url,
        }
        if purchase.kind == "plan":
            price_data["recurring"] = {"interval": "month"}
            price_data["product_data"]["metadata"]["plan"] = purchase.item_code
            params["mode"] = "subscription"
            params["subscription_data"] = {"metadata": dict(metadata, plan=purchase.item_code)}
        else:
            params["mode"] = "payment"
            params["payment_intent_data"] = {"metadata": metadata}
        checkout = await self.client.v1.checkout.sessions.create_async(
            cast(SessionCreateParams, params),
            {"idempotency_key": f"{self.idempotency_prefix}-checkout-{purchase.id}"},
        )
        await self.purchases(session).set_session(purchase.id, checkout.id)
        if not checkout.url:
            raise RuntimeError(f"checkout session {checkout.id} has no URL")
        log.info("stripe.checkout_created", purchase_id=purchase.id, session_id=checkout.id)
        return checkout.url

    def _product_name(self, purchase: PurchaseView) -> str:
        if purchase.kind == "plan":
            return f"CryptoUniverse {self.catalogue.plan(purchase.item_code).name}"
        return f"{_number(purchase.credits or Decimal(0))} credits"

    # ------------------------------------------------------------------------------------- webhook

    async def handle_webhook(self, raw_body: bytes, signature_header: str | None) -> WebhookOutcome:
        """Verify, record once, apply, commit, then tell the users. Raises `InvalidWebhook` (nothing
        changed) when the signature or timestamp does not verify."""
        if not signature_header:
            raise InvalidWebhook("no signature")
        try:
            event = stripe.Webhook.construct_event(
                raw_body, signature_header, self.webhook_secret, tolerance=self.tolerance
            )
        except stripe.SignatureVerificationError as exc:
            raise InvalidWebhook(str(exc)) from None
        except ValueError:
            raise InvalidWebhook("malformed body") from None
        event_id, event_type = str(event.id), str(event.type)
        if await self._seen(event_id):
            log.info("stripe.webhook_duplicate", event_id=event_id, type=event_type)
            return WebhookOutcome(event_id, event_type, "duplicate")
        try:
            fetched = await self._fetch(event_type, event.data.object)
        except stripe.InvalidRequestError as exc:
            if exc.http_status != 404:
                raise
            log.warning("stripe.webhook_object_missing", event_id=event_id, type=event_type)
            fetched = _Fetched()
        async with self.session_factory() as session:
            service = self.purchases(session)
            summary = {"type": event_type, "object": _id(event.data.object), "created": event.created}
            if not await service.record_event(PROVIDER, event_id, event_type, summary):
                await session.rollback()
                return WebhookOutcome(event_id, event_type, "duplicate")
            result = await self._apply(service, event_type, fetched)
            await service.mark_event_processed(PROVIDER, event_id, result.purchase_id)
            notices = await self._resolve(session, result.notices)
            await session.commit()
        log.info(
            "stripe.webhook_processed",
            event_id=event_id,
            type=event_type,
            status=result.status,
            purchase_id=result.purchase_id,
        )
        await self._send(notices)
        return WebhookOutcome(event_id, event_type, result.status, result.purchase_id, tuple(notices))

    async def _seen(self, event_id: str) -> bool:
        async with self.session_factory() as session:
            found = await session.scalar(
                select(PaymentEvent.id).where(
                    PaymentEvent.provider == PROVIDER, PaymentEvent.event_id == event_id
                )
            )
            return found is not None

    async def _fetch(self, event_type: str, obj: Any) -> _Fetched:
        """Re-read what the event is about: its payload may be older than what Stripe knows now."""
        api = self.client.v1
        fetched = _Fetched()
        object_id = _id(obj)
        if object_id is None:
            return fetched
        if event_type in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
            fetched.session = await api.checkout.sessions.retrieve_async(object_id)
            if fetched.session.mode == "subscription":
                sub_id = _id(fetched.session.subscription)
                invoice_id = _id(fetched.session.invoice)
                if sub_id:
                    fetched.subscription = await self._subscription(sub_id)
                if invoice_id:
                    fetched.invoice = await api.invoices.retrieve_async(invoice_id)
        elif event_type == "invoice.paid":
            fetched.invoice = await api.invoices.retrieve_async(object_id)
            sub_id = _invoice_subscription(fetched.invoice)
            if sub_id:
                fetched.subscription = await self._subscription(sub_id)
        elif event_type in ("customer.subscription.updated", "customer.subscription.deleted"):
            fetched.subscription = await self._subscription(object_id)
        elif event_type == "charge.refunded":
            fetched.charge = await api.charges.retrieve_async(object_id)
        return fetched

    async def _subscription(self, sub_id: str) -> stripe.Subscription:
        return await self.client.v1.subscriptions.retrieve_async(
            sub_id, {"expand": ["items.data.price.product"]}
        )

    async def _apply(self, service: PurchaseService, event_type: str, fetched: _Fetched) -> _Result:
        if fetched.session is not None:
            return await self._checkout_completed(service, fetched)
        if event_type == "invoice.paid" and fetched.invoice is not None:
            return await self._invoice_paid(service, fetched.invoice, fetched.subscription)
        if fetched.subscription is not None and event_type.startswith("customer.subscription."):
            return await self._subscription_changed(service, fetched.subscription)
        if fetched.charge is not None:
            return await self._charge_refunded(service, fetched.charge)
        return _Result(status="ignored")

    # ---------------------------------------------------------------------------------- handlers

    async def _checkout_completed(self, service: PurchaseService, fetched: _Fetched) -> _Result:
        checkout = fetched.session
        assert checkout is not None
        result = _Result()
        purchase = await self._purchase_of(service, _meta(checkout), checkout.client_reference_id)
        if purchase is None:
            return _Result(status="ignored")
        result.purchase_id = purchase.id
        if checkout.payment_status not in ("paid", "no_payment_required"):
            result.status = "ignored"  # an asynchronous payment method: its own event follows
            return result
        if checkout.amount_total != purchase.minor_amount or (checkout.currency or "").upper() != USD:
            log.error(
                "stripe.amount_mismatch",
                purchase_id=purchase.id,
                session_id=checkout.id,
                amount=checkout.amount_total,
                currency=checkout.currency,
            )
            result.status = "ignored"
            return result
        if purchase.kind == "pack":
            paid = await service.pay(purchase.id, payment_id=_id(checkout.payment_intent))
            if not paid.replayed:
                balance = await service.ledger.balance(purchase.user_id)
                result.tell(
                    purchase.user_id,
                    "billing.stripe.pack_paid",
                    credits=_number(paid.credits),
                    balance=_number(balance.balance),
                    debt=_number(balance.debt),
                )
            return result
        if fetched.subscription is None:
            log.error("stripe.subscription_missing", purchase_id=purchase.id, session_id=checkout.id)
            result.status = "ignored"
            return result
        payment = _id(_get(fetched.invoice, "payment_intent")) if fetched.invoice is not None else None
        await self._activate(service, purchase, fetched.subscription, payment, result)
        return result

    async def _invoice_paid(
        self, service: PurchaseService, invoice: stripe.Invoice, sub: stripe.Subscription | None
    ) -> _Result:
        result = _Result()
        if sub is None:
            result.status = "ignored"  # not a subscription's invoice
            return result
        payment = _id(_get(invoice, "payment_intent"))
        local = await self._local(service.session, sub.id)
        if local is None or invoice.billing_reason == "subscription_create":
            purchase = await self._purchase_of(service, _meta(sub), None)
            if purchase is None:
                log.warning("stripe.unknown_subscription", subscription_id=sub.id, invoice_id=invoice.id)
                result.status = "ignored"
                return result
            result.purchase_id = purchase.id
            local = await self._activate(service, purchase, sub, payment, result)
            if invoice.billing_reason == "subscription_create" or local is None:
                return result
        if invoice.billing_reason != "subscription_cycle":
            await self._sync(service, local, sub, result)
            return result
        result.purchase_id = local.purchase_id
        plan = self._plan_of(sub, local)
        start, end = _period(sub)
        renewed = False
        if end is not None and end > local.current_period_end:
            local.current_period_start, local.current_period_end = start, end
            renewed = True
        if local.status != "active" and STATUSES.get(str(sub.status)) == "active":
            local.status, local.canceled_at = "active", None
            renewed = True
        if plan.code != local.plan:
            local.plan = plan.code
        local.updated_at = self.clock()
        await service.session.flush()
        credits = await service.grant_period_credits(local, plan, key=f"invoice:{invoice.id}")
        if payment:
            await service.record_event(
                PROVIDER,
                f"{PAYMENT_EVENT_PREFIX}{payment}",
                "invoice.payment",
                {"invoice": invoice.id, "subscription": sub.id, "user_id": local.user_id},
            )
        if credits > 0 or renewed:
            result.tell(
                local.user_id,
                "billing.stripe.renewed",
                plan=plan.name,
                until=_day(local.current_period_end),
                credits=_number(credits),
            )
        return result

    async def _subscription_changed(self, service: PurchaseService, sub: stripe.Subscription) -> _Result:
        result = _Result()
        local = await self._local(service.session, sub.id)
        if local is None:
            result.status = "ignored"  # not linked yet: checkout or the first invoice will read it whole
            return result
        result.purchase_id = local.purchase_id
        await self._sync(service, local, sub, result)
        return result

    async def _charge_refunded(self, service: PurchaseService, charge: stripe.Charge) -> _Result:
        result = _Result()
        if not charge.refunded:
            result.status = "ignored"  # a partial refund keeps what was granted
            log.info("stripe.partial_refund", charge_id=charge.id, refunded=charge.amount_refunded)
            return result
        payment = _id(charge.payment_intent)
        purchase = None
        for reference in (payment, charge.id):
            if reference and purchase is None:
                purchase = await service.by_payment(reference)
        if purchase is not None:
            result.purchase_id = purchase.id
            if purchase.status != "paid":
                result.status = "ignored"
                return result
            refund = await service.refund(purchase.id)
            if not refund.replayed:
                await self._tell_refund(service, result, purchase.user_id, refund.credits_reversed)
            return result
        invoice_id = await self._invoice_of_payment(service.session, payment) or _id(_get(charge, "invoice"))
        key = f"plan:invoice:{invoice_id}" if invoice_id else None
        if key is None or await service.ledger.entry(key) is None:
            log.warning("stripe.refund_unmatched", charge_id=charge.id, payment_intent=payment)
            result.status = "ignored"
            return result
        reversal = await service.ledger.reverse(key, f"refund:invoice:{invoice_id}")
        if not reversal.replayed:
            await self._tell_refund(service, result, reversal.entry.user_id, -reversal.entry.amount)
        return result

    # ---------------------------------------------------------------------------------- helpers

    async def _purchase_of(
        self, service: PurchaseService, metadata: dict[str, str], reference: str | None
    ) -> PurchaseView | None:
        purchase_id = _int(metadata.get("purchase_id")) or _int(reference)
        purchase = await service.get(purchase_id) if purchase_id is not None else None
        if purchase is None or purchase.provider != PROVIDER:
            log.warning("stripe.unknown_purchase", purchase_id=purchase_id)
            return None
        claimed_user = _int(metadata.get("user_id"))
        if claimed_user is not None and claimed_user != purchase.user_id:
            log.error("stripe.purchase_user_mismatch", purchase_id=purchase.id)
            return None
        return purchase

    async def _activate(
        self,
        service: PurchaseService,
        purchase: PurchaseView,
        sub: stripe.Subscription,
        payment: str | None,
        result: _Result,
    ) -> Subscription | None:
        """Pay a plan purchase with its Stripe subscription (once: the first period's credits are keyed by
        the purchase) and link our subscription row to Stripe's, with the state Stripe has now."""
        status = STATUSES.get(str(sub.status))
        if purchase.status == "pending" and status in ("canceled", None):
            result.status = "ignored"  # never got going (incomplete) or ended before we heard of it
            return None
        start, end = _period(sub)
        paid = await service.pay(
            purchase.id,
            payment_id=payment,
            period_start=start,
            period_end=end,
            stripe_customer_id=_id(sub.customer),
            stripe_subscription_id=sub.id,
        )
        local = await self._local(service.session, sub.id)
        if local is None:
            local = await service.session.scalar(
                select(Subscription)
                .where(Subscription.purchase_id == purchase.id)
                .order_by(Subscription.id.desc())
                .limit(1)
            )
            if local is None:
                return None
            local.stripe_subscription_id, local.stripe_customer_id = sub.id, _id(sub.customer)
            await service.session.flush()
        if not paid.replayed:
            result.tell(
                purchase.user_id,
                "billing.stripe.plan_activated",
                plan=self.catalogue.plan(purchase.item_code).name,
                until=_day(end or local.current_period_end),
                credits=_number(paid.credits),
            )
        await self._sync(service, local, sub, result, quiet_plan=not paid.replayed)
        return local

    async def _sync(
        self,
        service: PurchaseService,
        local: Subscription,
        sub: stripe.Subscription,
        result: _Result,
        *,
        quiet_plan: bool = False,
    ) -> None:
        """Bring our row to Stripe's current state and tell the user what changed."""
        now = self.clock()
        status = STATUSES.get(str(sub.status))
        user = local.user_id
        if status == "canceled":
            if local.status not in ENDED:
                ended = _when(sub.ended_at) or now
                local.status, local.canceled_at, local.updated_at = "canceled", now, now
                local.current_period_end = min(local.current_period_end, max(ended, now))
                local.cancel_at_period_end = False
                await service.session.flush()
                result.tell(user, "billing.stripe.subscription_ended", plan=self._plan_name(local.plan))
            return
        if local.status in ENDED:
            return  # ended here (a refund); only a paid renewal brings it back
        plan = self._plan_of(sub, local)
        if plan.code != local.plan:
            old = local.plan
            local.plan = plan.code
            if not quiet_plan:
                result.tell(
                    user,
                    "billing.stripe.plan_changed",
                    old_plan=self._plan_name(old),
                    plan=plan.name,
                )
        start, end = _period(sub)
        if end is not None and end > local.current_period_end:
            local.current_period_start, local.current_period_end = start, end
        if status is not None and status != local.status:
            old_status, local.status = local.status, status
            if status == "past_due":
                result.tell(user, "billing.stripe.past_due", plan=plan.name)
            elif old_status == "past_due":
                result.tell(user, "billing.stripe.reactivated", plan=plan.name, until=_day(end))
        if bool(sub.cancel_at_period_end) != local.cancel_at_period_end:
            local.cancel_at_period_end = bool(sub.cancel_at_period_end)
            scheduled = local.cancel_at_period_end
            key = "billing.stripe.cancel_scheduled" if scheduled else "billing.stripe.resumed"
            result.tell(user, key, plan=plan.name, until=_day(local.current_period_end))
        local.updated_at = now
        await service.session.flush()

    async def _tell_refund(
        self, service: PurchaseService, result: _Result, user_id: int, credits: Decimal
    ) -> None:
        balance = await service.ledger.balance(user_id)
        key = "billing.stripe.refunded_debt" if balance.debt > 0 else "billing.stripe.refunded"
        result.tell(
            user_id,
            key,
            credits=_number(credits),
            balance=_number(balance.balance),
            debt=_number(balance.debt),
        )

    def _plan_of(self, sub: stripe.Subscription, local: Subscription | None) -> Plan:
        """The plan a Stripe subscription's price stands for: the price's or product's metadata, its lookup
        key, a price that only one plan has, else the subscription's metadata or our row's plan."""
        item = _first_item(sub)
        price = _get(item, "price")
        candidates: list[str | None] = []
        if price is not None:
            candidates += [
                _meta(price).get("plan"),
                _meta(_get(price, "product")).get("plan"),
                _get(price, "lookup_key"),
            ]
            amount = _get(price, "unit_amount")
            matching = [p for p in self.catalogue.paid_plans() if p.price_usd_cents == amount]
            if len(matching) == 1:
                candidates.append(matching[0].code)
        candidates += [_meta(sub).get("plan"), local.plan if local is not None else None]
        for code in candidates:
            plan = self.catalogue.find_plan(code) if code else None
            if plan is not None and not plan.is_free:
                return plan
        raise ValueError(f"no plan for Stripe subscription {sub.id}")

    def _plan_name(self, code: str) -> str:
        plan = self.catalogue.find_plan(code)
        return plan.name if plan is not None else code

    @staticmethod
    async def _local(session: AsyncSession, stripe_subscription_id: str) -> Subscription | None:
        return await session.scalar(
            select(Subscription)
            .where(Subscription.stripe_subscription_id == stripe_subscription_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    @staticmethod
    async def _invoice_of_payment(session: AsyncSession, payment: str | None) -> str | None:
        if not payment:
            return None
        payload = await session.scalar(
            select(PaymentEvent.payload).where(
                PaymentEvent.provider == PROVIDER,
                PaymentEvent.event_id == f"{PAYMENT_EVENT_PREFIX}{payment}",
            )
        )
        if isinstance(payload, str):
            payload = json.loads(payload)
        return str(payload["invoice"]) if isinstance(payload, dict) and payload.get("invoice") else None

    @staticmethod
    async def _resolve(
        session: AsyncSession, notices: Iterable[tuple[int, str, dict[str, Any]]]
    ) -> list[Notice]:
        resolved: list[Notice] = []
        for user_id, key, params in notices:
            user = await session.get(User, user_id)
            if user is not None:
                resolved.append(Notice(user.telegram_id, user.locale or user.language_code, key, params))
        return resolved

    async def _send(self, notices: Iterable[Notice]) -> None:
        for notice in notices:
            try:
                await self.notifier.send(notice.telegram_id, notice.locale, notice.key, **notice.params)
            except Exception:  # the change is committed; a failed message must not make Stripe retry it
                log.exception("stripe.notify_failed", key=notice.key)


__all__ = [
    "DEFAULT_TOLERANCE",
    "BillingUser",
    "InvalidWebhook",
    "Notice",
    "ReturnUrlBuilder",
    "ReturnUrls",
    "StripeBilling",
    "WebhookOutcome",
    "telegram_return_urls",
]
