"""Purchases of credit packs and plans, whatever the payment provider.

A purchase is created `pending` with its price fixed (amount, currency, credits); the provider's
confirmation marks it `paid` exactly once and fulfils it in the same transaction: a pack's credits (ledger
key ``purchase:<id>``) or a plan period with its monthly credits (ledger key ``plan:<subscription>:<period
start>``). Each provider event is recorded once in `payment_events` (unique per provider and event id), so
a redelivered update or webhook changes nothing. A refund reverses the credits; what the balance no longer
holds becomes debt, which blocks new live entries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import PaymentEvent, Purchase, Subscription
from db.types import utcnow
from services.billing.plans import Catalogue, Plan
from services.credits.ledger import CreditLedger
from services.errors import NotFoundError, ValidationError

STARS = "XTR"
USD = "USD"
PROVIDERS = ("telegram_stars", "telegram_fiat", "stripe")
#: Telegram caps what one Stars invoice may ask for
MAX_STARS_PER_INVOICE = 10_000


@dataclass(frozen=True, slots=True)
class PurchaseView:
    id: int
    user_id: int
    kind: str  # pack | plan
    item_code: str
    amount: Decimal
    currency: str
    credits: Decimal | None
    provider: str
    status: str

    @property
    def minor_amount(self) -> int:
        """The amount as payment APIs take it: Stars as they are, USD in cents."""
        return int(self.amount) if self.currency == STARS else int(self.amount * 100)


@dataclass(frozen=True, slots=True)
class Fulfilment:
    purchase: PurchaseView
    credits: Decimal  # credits granted by this payment
    plan: str | None  # the plan activated or renewed
    period_end: datetime | None
    replayed: bool  # the payment had been recorded already: nothing changed now


@dataclass(frozen=True, slots=True)
class Refund:
    purchase: PurchaseView
    credits_reversed: Decimal
    debt: Decimal
    replayed: bool


def _view(row: Purchase) -> PurchaseView:
    return PurchaseView(
        row.id,
        row.user_id,
        row.kind,
        row.item_code,
        row.amount,
        row.currency,
        row.credits,
        row.provider,
        row.status,
    )


class PurchaseService:
    def __init__(
        self, session: AsyncSession, catalogue: Catalogue, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.session = session
        self.catalogue = catalogue
        self.ledger = CreditLedger(session, clock=clock)
        self.clock = clock

    # ------------------------------------------------------------------------------------- creating

    async def create(self, user_id: int, kind: str, item_code: str, provider: str) -> PurchaseView:
        """A pending purchase at today's price (the price is kept with it)."""
        if provider not in PROVIDERS:
            raise ValueError(f"unknown payment provider {provider!r}")
        if kind == "pack":
            pack = self.catalogue.pack(item_code)
            stars, usd, credits = pack.stars_price, pack.price_usd, pack.credits
        elif kind == "plan":
            plan = self.catalogue.plan(item_code)
            if plan.is_free:
                raise ValidationError("billing.errors.free_plan")
            stars, usd, credits = plan.stars_price, plan.price_usd, plan.monthly_credits
        else:
            raise ValueError(f"unknown purchase kind {kind!r}")
        if provider == "telegram_stars":
            if stars > MAX_STARS_PER_INVOICE:
                raise ValidationError("billing.errors.stars_too_large", limit=MAX_STARS_PER_INVOICE)
            amount, currency = Decimal(stars), STARS
        else:
            amount, currency = usd, USD
        now = self.clock()
        row = Purchase(
            user_id=user_id,
            kind=kind,
            item_code=item_code,
            amount=amount,
            currency=currency,
            credits=credits,
            provider=provider,
            status="pending",
            created_at=now,
            updated_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        return _view(row)

    async def get(self, purchase_id: int) -> PurchaseView | None:
        row = await self.session.get(Purchase, purchase_id)
        return _view(row) if row is not None else None

    async def set_session(self, purchase_id: int, session_id: str) -> None:
        row = await self._locked(purchase_id)
        row.provider_session_id, row.updated_at = session_id, self.clock()
        await self.session.flush()

    async def by_session(self, session_id: str) -> PurchaseView | None:
        row = await self.session.scalar(select(Purchase).where(Purchase.provider_session_id == session_id))
        return _view(row) if row is not None else None

    async def by_payment(self, payment_id: str) -> PurchaseView | None:
        row = await self.session.scalar(
            select(Purchase).where(
                (Purchase.provider_payment_id == payment_id) | (Purchase.provider_charge_id == payment_id)
            )
        )
        return _view(row) if row is not None else None

    # ---------------------------------------------------------------------------------- confirming

    async def check_payable(self, purchase_id: int, user_id: int, currency: str, total_minor: int) -> None:
        """What Telegram's pre-checkout asks: the purchase exists, is this user's, is still pending and the
        amount and currency are the ones it was created with. Raises a ValidationError with the reason."""
        row = await self.session.get(Purchase, purchase_id)
        if row is None or row.user_id != user_id:
            raise NotFoundError("billing.errors.purchase_unknown")
        if row.status != "pending":
            raise ValidationError(
                "billing.errors.already_paid" if row.status == "paid" else "billing.errors.not_payable"
            )
        if row.currency != currency or _view(row).minor_amount != total_minor:
            raise ValidationError("billing.errors.amount_mismatch")

    async def record_event(
        self, provider: str, event_id: str, event_type: str, payload: dict[str, Any] | None = None
    ) -> bool:
        """Record a provider event once; False when it was recorded before (a redelivery)."""
        try:
            async with self.session.begin_nested():
                self.session.add(
                    PaymentEvent(
                        provider=provider,
                        event_id=event_id,
                        event_type=event_type,
                        payload=payload,
                        received_at=self.clock(),
                    )
                )
        except IntegrityError:
            return False
        return True

    async def mark_event_processed(
        self, provider: str, event_id: str, purchase_id: int | None = None
    ) -> None:
        row = await self.session.scalar(
            select(PaymentEvent).where(PaymentEvent.provider == provider, PaymentEvent.event_id == event_id)
        )
        if row is not None:
            row.processed_at = self.clock()
            row.purchase_id = purchase_id
            await self.session.flush()

    async def pay(
        self,
        purchase_id: int,
        *,
        charge_id: str | None = None,
        payment_id: str | None = None,
        period_start: datetime | None = None,
        period_end: datetime | None = None,
        stripe_customer_id: str | None = None,
        stripe_subscription_id: str | None = None,
    ) -> Fulfilment:
        """Mark a purchase paid and fulfil it, once. Calling it again for a paid purchase changes nothing and
        returns a replayed fulfilment. The caller commits."""
        row = await self._locked(purchase_id)
        if row.status != "pending":
            return Fulfilment(
                _view(row), Decimal(0), row.item_code if row.kind == "plan" else None, None, True
            )
        now = self.clock()
        row.status, row.paid_at, row.updated_at = "paid", now, now
        row.provider_charge_id = charge_id or row.provider_charge_id
        row.provider_payment_id = payment_id or row.provider_payment_id
        await self.session.flush()
        if row.kind == "pack":
            credits = row.credits or Decimal(0)
            await self.ledger.grant(
                row.user_id, credits, "purchase", f"purchase:{row.id}", reference=f"purchase:{row.id}"
            )
            return Fulfilment(_view(row), credits, None, None, False)
        plan = self.catalogue.plan(row.item_code)
        sub = await self.activate_plan(
            row.user_id,
            plan,
            provider=row.provider,
            purchase_id=row.id,
            period_start=period_start or now,
            period_end=period_end,
            telegram_charge_id=charge_id if row.provider.startswith("telegram") else None,
            stripe_customer_id=stripe_customer_id,
            stripe_subscription_id=stripe_subscription_id,
        )
        credits = await self.grant_period_credits(sub, plan, key=f"purchase:{row.id}")
        return Fulfilment(_view(row), credits, plan.code, sub.current_period_end, False)

    async def activate_plan(
        self,
        user_id: int,
        plan: Plan,
        *,
        provider: str,
        purchase_id: int | None,
        period_start: datetime,
        period_end: datetime | None = None,
        telegram_charge_id: str | None = None,
        stripe_customer_id: str | None = None,
        stripe_subscription_id: str | None = None,
    ) -> Subscription:
        """Start or renew a plan. The same plan bought again extends its period; another plan replaces the
        current one at once (an upgrade, or a downgrade bought explicitly)."""
        now = self.clock()
        current = await self.current_subscription(user_id)
        end = period_end
        if current is not None and current.plan == plan.code and current.provider == provider:
            base = max(current.current_period_end, period_start)
            current.current_period_end = end or base + timedelta(days=plan.period_days)
            current.status, current.updated_at = "active", now
            current.telegram_charge_id = telegram_charge_id or current.telegram_charge_id
            current.purchase_id = purchase_id or current.purchase_id
            current.cancel_at_period_end = False
            await self.session.flush()
            return current
        if current is not None:
            current.status, current.canceled_at, current.updated_at = "canceled", now, now
        sub = Subscription(
            user_id=user_id,
            plan=plan.code,
            status="active",
            provider=provider,
            current_period_start=period_start,
            current_period_end=end or period_start + timedelta(days=plan.period_days),
            cancel_at_period_end=False,
            stripe_customer_id=stripe_customer_id,
            stripe_subscription_id=stripe_subscription_id,
            telegram_charge_id=telegram_charge_id,
            purchase_id=purchase_id,
            created_at=now,
            updated_at=now,
        )
        self.session.add(sub)
        await self.session.flush()
        return sub

    async def grant_period_credits(self, sub: Subscription, plan: Plan, *, key: str) -> Decimal:
        """A plan period's credits, once per `key` (a purchase, an invoice)."""
        if plan.monthly_credits <= 0:
            return Decimal(0)
        result = await self.ledger.grant(
            sub.user_id, plan.monthly_credits, "grant", f"plan:{key}", reference=f"subscription:{sub.id}"
        )
        return Decimal(0) if result.replayed else plan.monthly_credits

    async def current_subscription(self, user_id: int) -> Subscription | None:
        now = self.clock()
        return await self.session.scalar(
            select(Subscription)
            .where(
                Subscription.user_id == user_id,
                Subscription.status.in_(("active", "trialing", "past_due")),
                Subscription.current_period_end > now,
            )
            .order_by(Subscription.id.desc())
            .limit(1)
        )

    # ---------------------------------------------------------------------------------- refunds

    async def refund(self, purchase_id: int) -> Refund:
        """Reverse a paid purchase: its credits come back out (debt where they were spent) and a plan
        bought with it ends now. Refunding again changes nothing."""
        row = await self._locked(purchase_id)
        if row.status == "refunded":
            balance = await self.ledger.balance(row.user_id)
            return Refund(_view(row), Decimal(0), balance.debt, True)
        if row.status != "paid":
            raise ValidationError("billing.errors.not_refundable", id=purchase_id)
        now = self.clock()
        row.status, row.refunded_at, row.updated_at = "refunded", now, now
        key = f"purchase:{row.id}" if row.kind == "pack" else f"plan:purchase:{row.id}"
        reversed_credits = Decimal(0)
        if await self.ledger.entry(key) is not None:
            result = await self.ledger.reverse(key, f"refund:{row.id}")
            reversed_credits = -result.entry.amount if not result.replayed else Decimal(0)
        if row.kind == "plan":
            sub = await self.session.scalar(
                select(Subscription)
                .where(Subscription.purchase_id == row.id)
                .order_by(Subscription.id.desc())
            )
            if sub is not None and sub.status in ("active", "trialing", "past_due"):
                sub.status, sub.canceled_at, sub.updated_at = "canceled", now, now
                sub.current_period_end = min(sub.current_period_end, now)
        await self.session.flush()
        balance = await self.ledger.balance(row.user_id)
        return Refund(_view(row), reversed_credits, balance.debt, False)

    async def _locked(self, purchase_id: int) -> Purchase:
        stmt = select(Purchase).where(Purchase.id == purchase_id).with_for_update()
        row = await self.session.scalar(stmt.execution_options(populate_existing=True))
        if row is None:
            raise NotFoundError("billing.errors.purchase_unknown")
        return row


__all__ = ["MAX_STARS_PER_INVOICE", "STARS", "USD", "Fulfilment", "PurchaseService", "PurchaseView", "Refund"]
