"""Telegram Payments: invoices, pre-checkout queries, payments and refunds (records and validation).

The Bot API methods live in ``api_payments.py``; what a paying user does lives in ``actions.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError, bad_request
from .params import Params

Json = dict[str, Any]

STARS = "XTR"
SUBSCRIPTION_PERIOD = 2_592_000  # 30 days, the only period Telegram accepts
MAX_STARS_AMOUNT = 10_000
MAX_STARS_SUBSCRIPTION_AMOUNT = 10_000
MAX_CURRENCY_AMOUNT = 9_999_999_999_999  # TDLib's check_currency_amount
_PROVIDER_TOKEN_RE = re.compile(r"^\d{5,}:(TEST|LIVE):\S+$")

# Currencies Telegram accepts for payments with a provider (ISO 4217), see core.telegram.org/bots/payments
FIAT_CURRENCIES = frozenset(
    {
        "AED", "AFN", "ALL", "AMD", "ARS", "AUD", "AZN", "BAM", "BDT", "BGN", "BHD", "BND", "BOB", "BRL",
        "BYN", "CAD", "CHF", "CLP", "CNY", "COP", "CRC", "CZK", "DKK", "DOP", "DZD", "EGP", "ETB", "EUR",
        "GBP", "GEL", "GHS", "GTQ", "HKD", "HNL", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
        "JOD", "JPY", "KES", "KGS", "KRW", "KZT", "LBP", "LKR", "MAD", "MDL", "MMK", "MNT", "MOP", "MUR",
        "MVR", "MXN", "MYR", "MZN", "NGN", "NIO", "NOK", "NPR", "NZD", "PAB", "PEN", "PHP", "PKR", "PLN",
        "PYG", "QAR", "RON", "RSD", "RUB", "SAR", "SEK", "SGD", "SYP", "THB", "TJS", "TRY", "TTD", "TWD",
        "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VND", "YER", "ZAR",
    }
)  # fmt: skip
# (min, max) total in the smallest units for the major currencies (about US$1 to US$10,000)
CURRENCY_LIMITS = {
    "USD": (100, 1_000_000),
    "EUR": (100, 1_000_000),
    "GBP": (100, 1_000_000),
}

PAYMENT_PROVIDER_INVALID = "PAYMENT_PROVIDER_INVALID"
STARS_INVOICE_INVALID = "STARS_INVOICE_INVALID"
CURRENCY_INVALID = "CURRENCY_INVALID"
CURRENCY_TOTAL_AMOUNT_INVALID = "CURRENCY_TOTAL_AMOUNT_INVALID"
INVOICE_PAYLOAD_INVALID = "INVOICE_PAYLOAD_INVALID"
REPLY_MARKUP_BUY_EMPTY = "REPLY_MARKUP_BUY_EMPTY"
CHARGE_ALREADY_REFUNDED = "CHARGE_ALREADY_REFUNDED"
CHARGE_NOT_FOUND = "CHARGE_NOT_FOUND"
SUBSCRIPTION_PERIOD_INVALID = "SUBSCRIPTION_PERIOD_INVALID"


@dataclass
class InvoiceRecord:
    """Everything a bot put into an invoice (what the user sees is only part of it)."""

    bot_id: int
    title: str
    description: str
    payload: str
    currency: str
    prices: list[Json]
    provider_token: str = ""
    start_parameter: str = ""
    provider_data: str | None = None
    max_tip_amount: int = 0
    suggested_tip_amounts: list[int] = field(default_factory=list)
    photo_url: str | None = None
    need_name: bool = False
    need_phone_number: bool = False
    need_email: bool = False
    need_shipping_address: bool = False
    is_flexible: bool = False
    subscription_period: int | None = None
    chat_id: int | None = None  # where the invoice message is (None for invoice links)
    message_id: int | None = None
    link: str | None = None  # the invoice link (createInvoiceLink)

    @property
    def total_amount(self) -> int:
        return sum(int(price["amount"]) for price in self.prices)

    @property
    def is_stars(self) -> bool:
        return self.currency == STARS

    def message_field(self) -> Json:
        """The ``invoice`` field of the Message (Bot API ``Invoice``)."""
        return {
            "title": self.title,
            "description": self.description,
            "start_parameter": self.start_parameter,
            "currency": self.currency,
            "total_amount": self.total_amount,
        }

    def to_control(self) -> Json:
        data = {
            **self.message_field(),
            "payload": self.payload,
            "prices": self.prices,
            "max_tip_amount": self.max_tip_amount,
            "suggested_tip_amounts": self.suggested_tip_amounts,
            "photo_url": self.photo_url,
            "need_name": self.need_name,
            "need_phone_number": self.need_phone_number,
            "need_email": self.need_email,
            "need_shipping_address": self.need_shipping_address,
            "is_flexible": self.is_flexible,
            "subscription_period": self.subscription_period,
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "link": self.link,
        }
        return data


@dataclass
class PreCheckoutRecord:
    """One pre-checkout query: sent to the bot, answered (or not) within the timeout."""

    id: str
    bot_id: int
    user_id: int
    invoice: InvoiceRecord
    total_amount: int
    created: float  # monotonic
    date: int  # Unix time
    update_id: int | None = None
    order_info: Json | None = None
    status: str = "pending"  # pending, approved, declined, timeout, cancelled
    answered: bool = False
    ok: bool | None = None
    error_message: str | None = None
    answered_at: float | None = None  # monotonic
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def answer_seconds(self) -> float | None:
        """How long the bot took to answer (None while unanswered)."""
        return None if self.answered_at is None else self.answered_at - self.created

    def to_control(self) -> Json:
        return {
            "pre_checkout_query_id": self.id,
            "user_id": self.user_id,
            "update_id": self.update_id,
            "currency": self.invoice.currency,
            "total_amount": self.total_amount,
            "invoice_payload": self.invoice.payload,
            "invoice_message_id": self.invoice.message_id,
            "invoice_link": self.invoice.link,
            "status": self.status,
            "answered": self.answered,
            "ok": self.ok,
            "error_message": self.error_message,
            "answer_seconds": self.answer_seconds,
        }


@dataclass
class PaymentRecord:
    """A successful payment (possibly refunded later)."""

    telegram_payment_charge_id: str
    provider_payment_charge_id: str
    bot_id: int
    user_id: int
    invoice: InvoiceRecord
    total_amount: int
    date: int
    pre_checkout_query_id: str
    successful_payment: Json  # the SuccessfulPayment object
    message: Json  # the service message that carried it
    update: Json | None  # the update the bot got (None if allowed_updates dropped it)
    status: str = "paid"  # paid, refunded
    refunded_date: int | None = None
    refund_update_id: int | None = None

    @property
    def currency(self) -> str:
        return self.invoice.currency

    def to_control(self) -> Json:
        return {
            "telegram_payment_charge_id": self.telegram_payment_charge_id,
            "provider_payment_charge_id": self.provider_payment_charge_id,
            "user_id": self.user_id,
            "currency": self.currency,
            "total_amount": self.total_amount,
            "invoice_payload": self.invoice.payload,
            "invoice_message_id": self.invoice.message_id,
            "invoice_link": self.invoice.link,
            "date": self.date,
            "status": self.status,
            "refunded_date": self.refunded_date,
            "pre_checkout_query_id": self.pre_checkout_query_id,
            "update_id": self.update["update_id"] if self.update else None,
            "message_id": self.message["message_id"],
        }


@dataclass
class PaymentLedger:
    """One bot's invoices, pre-checkout queries and payments."""

    invoices: dict[tuple[int, int], InvoiceRecord] = field(default_factory=dict)  # (chat_id, message_id)
    links: dict[str, InvoiceRecord] = field(default_factory=dict)  # slug -> invoice
    queries: dict[str, PreCheckoutRecord] = field(default_factory=dict)
    payments: dict[str, PaymentRecord] = field(default_factory=dict)  # charge id -> payment, in order
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_number(self) -> int:
        return next(self._numbers)

    def stars_transactions(self) -> list[Json]:
        """StarTransaction objects in chronological order (payments in, refunds out)."""
        entries: list[tuple[int, int, Json]] = []
        for order, payment in enumerate(self.payments.values()):
            if not payment.invoice.is_stars:
                continue
            partner = {
                "type": "user",
                "transaction_type": "invoice_payment",
                "user": payment.message["from"],
                "invoice_payload": payment.invoice.payload,
            }
            if payment.invoice.subscription_period:
                partner["subscription_period"] = payment.invoice.subscription_period
            charge = payment.telegram_payment_charge_id
            incoming = {"id": charge, "amount": payment.total_amount, "date": payment.date, "source": partner}
            entries.append((payment.date, 2 * order, incoming))
            if payment.refunded_date is not None:
                outgoing = {
                    "id": charge,
                    "amount": payment.total_amount,
                    "date": payment.refunded_date,
                    "receiver": partner,
                }
                entries.append((payment.refunded_date, 2 * order + 1, outgoing))
        entries.sort(key=lambda entry: (entry[0], entry[1]))
        return [entry[2] for entry in entries]

    def stars_balance(self) -> int:
        return sum(
            p.total_amount for p in self.payments.values() if p.invoice.is_stars and p.status == "paid"
        )


# ------------------------------------------------------------------------------------------------ parsing


def _required(p: Params, name: str) -> str:
    value = p.string(name)
    if value is None or value == "":
        raise bad_request(f'parameter "{name}" is required')
    return value


def _prices(p: Params) -> list[Json]:
    if p.string("prices") in (None, ""):
        raise bad_request('parameter "prices" is required')
    raw = p.json("prices", "prices")
    if not isinstance(raw, list):
        raise bad_request("expected an Array of labeled prices")
    prices: list[Json] = []
    for item in raw:
        if not isinstance(item, dict):
            raise bad_request("can't parse labeled price: LabeledPrice must be an Object")
        label = item.get("label")
        if "label" not in item:
            raise bad_request("can't parse labeled price: Can't find field \"label\"")
        if not isinstance(label, str):
            raise bad_request('can\'t parse labeled price: Field "label" must be of type String')
        if not label:
            raise bad_request("can't parse labeled price: LabeledPrice label must be non-empty")
        if "amount" not in item:
            raise bad_request("can't parse labeled price: Can't find field \"amount\"")
        amount = item["amount"]
        if isinstance(amount, bool) or not isinstance(amount, int | str):
            raise bad_request('can\'t parse labeled price: Field "amount" must be a valid Number')
        try:
            number = int(amount)
        except ValueError:
            raise bad_request('can\'t parse labeled price: Field "amount" must be a valid Number') from None
        prices.append({"label": label, "amount": number})
    if not prices:
        raise bad_request("there must be at least one price")
    return prices


def _tips(p: Params) -> tuple[int, list[int]]:
    max_tip = 0
    raw_max = p.string("max_tip_amount")
    if raw_max not in (None, ""):
        try:
            max_tip = int(str(raw_max))
        except ValueError:
            raise bad_request('can\'t parse "max_tip_amount" as Number') from None
    suggested: list[int] = []
    if p.string("suggested_tip_amounts") not in (None, ""):
        raw = p.json("suggested_tip_amounts", "suggested_tip_amounts")
        if not isinstance(raw, list):
            raise bad_request("expected an Array of suggested tip amounts")
        for value in raw:
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise bad_request("suggested tip amount must be of type Number or String")
            try:
                suggested.append(int(value))
            except ValueError:
                raise bad_request("can't parse suggested tip amount as Number") from None
    return max_tip, suggested


def parse_invoice(p: Params, bot_id: int) -> InvoiceRecord:
    """The invoice parameters of sendInvoice / createInvoiceLink, checked as the Bot API front end does."""
    title = _required(p, "title")
    description = _required(p, "description")
    payload = _required(p, "payload")
    currency = _required(p, "currency")
    prices = _prices(p)
    max_tip, suggested = _tips(p)
    return InvoiceRecord(
        bot_id=bot_id,
        title=title,
        description=description,
        payload=payload,
        currency=currency,
        prices=prices,
        provider_token=p.string("provider_token") or "",
        start_parameter=p.string("start_parameter") or "",
        provider_data=p.string("provider_data") or None,
        max_tip_amount=max_tip,
        suggested_tip_amounts=suggested,
        photo_url=p.string("photo_url") or None,
        need_name=p.flag("need_name"),
        need_phone_number=p.flag("need_phone_number") or p.flag("send_phone_number_to_provider"),
        need_email=p.flag("need_email") or p.flag("send_email_to_provider"),
        need_shipping_address=p.flag("need_shipping_address") or p.flag("is_flexible"),
        is_flexible=p.flag("is_flexible"),
    )


def check_invoice(invoice: InvoiceRecord) -> None:
    """What TDLib and Telegram's servers check before an invoice is accepted."""
    for price in invoice.prices:
        if abs(price["amount"]) > MAX_CURRENCY_AMOUNT:
            raise bad_request("too big amount of the currency specified")
    total = invoice.total_amount
    if total <= 0:
        raise bad_request("total price must be positive")
    if total > MAX_CURRENCY_AMOUNT:
        raise bad_request("total price is too big")
    if invoice.max_tip_amount < 0 or invoice.max_tip_amount > MAX_CURRENCY_AMOUNT:
        raise bad_request("invalid max_tip_amount of the currency specified")
    previous = 0
    for tip in invoice.suggested_tip_amounts:
        if tip <= 0:
            raise bad_request("suggested tip amount must be positive")
        if tip > invoice.max_tip_amount:
            raise bad_request("suggested tip amount can't be bigger than max_tip_amount")
        if tip <= previous:
            raise bad_request("SUGGESTED_TIP_AMOUNTS_INVALID")
        previous = tip
    if len(invoice.suggested_tip_amounts) > 4:
        raise bad_request("there can be at most 4 suggested tip amounts")
    if not 1 <= len(invoice.title) <= 32:
        raise bad_request("INVOICE_TITLE_INVALID")
    if not 1 <= len(invoice.description) <= 255:
        raise bad_request("INVOICE_DESCRIPTION_INVALID")
    if not 1 <= len(invoice.payload.encode("utf-8")) <= 128:
        raise bad_request(INVOICE_PAYLOAD_INVALID)
    if invoice.is_stars:
        if invoice.provider_token or len(invoice.prices) != 1 or invoice.max_tip_amount:
            raise bad_request(STARS_INVOICE_INVALID)
        if total > MAX_STARS_AMOUNT:
            raise bad_request(CURRENCY_TOTAL_AMOUNT_INVALID)
        return
    if not _PROVIDER_TOKEN_RE.match(invoice.provider_token):
        raise bad_request(PAYMENT_PROVIDER_INVALID)
    if invoice.currency not in FIAT_CURRENCIES:
        raise bad_request(CURRENCY_INVALID)
    low, high = CURRENCY_LIMITS.get(invoice.currency, (1, MAX_CURRENCY_AMOUNT))
    if not low <= total <= high:
        raise bad_request(CURRENCY_TOTAL_AMOUNT_INVALID)


def check_subscription(invoice: InvoiceRecord, period: int | None) -> None:
    if period is None:
        return
    if not invoice.is_stars:
        raise bad_request(STARS_INVOICE_INVALID)
    if period != SUBSCRIPTION_PERIOD:
        raise bad_request(SUBSCRIPTION_PERIOD_INVALID)
    if invoice.total_amount > MAX_STARS_SUBSCRIPTION_AMOUNT:
        raise bad_request(CURRENCY_TOTAL_AMOUNT_INVALID)
    invoice.subscription_period = period


def check_pay_button(markup: Json | None) -> None:
    """An invoice's inline keyboard must start with a pay button."""
    if markup is None:
        return
    rows = markup.get("inline_keyboard") or []
    first = rows[0][0] if rows and rows[0] else None
    if not first or first.get("pay") is not True:
        raise bad_request(REPLY_MARKUP_BUY_EMPTY)


def invoice_slug() -> str:
    return secrets.token_urlsafe(12).replace("-", "A").replace("_", "B")


def link_slug(link: str) -> str:
    """The slug of an invoice link (``https://t.me/$slug``, ``t.me/invoice/slug`` or the bare slug)."""
    text = link.strip()
    for prefix in ("https://", "http://", "tg://"):
        text = text.removeprefix(prefix)
    text = text.removeprefix("t.me/").removeprefix("telegram.me/")
    text = text.removeprefix("invoice/").removeprefix("invoice?slug=")
    return text.removeprefix("$")


def charge_ids(invoice: InvoiceRecord, number: int) -> tuple[str, str]:
    """(telegram_payment_charge_id, provider_payment_charge_id) of a new payment."""
    if invoice.is_stars:
        return f"stx{secrets.token_urlsafe(36)}", ""
    telegram = f"{invoice.bot_id}_{number}_{secrets.token_hex(8)}"
    return telegram, f"ch_{secrets.token_urlsafe(18)}"


def too_old() -> ApiError:
    return bad_request("query is too old and response timeout expired or query ID is invalid")
