"""Bot API: payments (invoices, invoice links, pre-checkout answers, Telegram Stars refunds, transactions)."""

from __future__ import annotations

from .api import (
    ApiContext,
    extra_fields,
    method,
    reply_fields,
    reply_markup,
    target_conversation,
)
from .errors import bad_request
from .params import Params
from .payments import (
    CHARGE_ALREADY_REFUNDED,
    CHARGE_NOT_FOUND,
    check_invoice,
    check_pay_button,
    check_subscription,
    invoice_slug,
    parse_invoice,
    too_old,
)
from .state import Bot, Json


@method("sendInvoice")
async def send_invoice(ctx: ApiContext, bot: Bot, p: Params) -> Json:
    invoice = parse_invoice(p, bot.id)
    inline, _ = reply_markup(p, inline_only=True)
    conv = target_conversation(ctx, bot, p)
    fields = reply_fields(conv, p)
    check_invoice(invoice)
    check_pay_button(inline)
    fields["invoice"] = invoice.message_field()
    fields.update(extra_fields(p))
    if inline is not None:
        fields["reply_markup"] = inline
    message = ctx.state.store_message(conv, bot.user, fields)
    invoice.chat_id = conv.chat.id
    invoice.message_id = int(message["message_id"])
    bot.payments.invoices[(invoice.chat_id, invoice.message_id)] = invoice
    return message


@method("createInvoiceLink")
async def create_invoice_link(ctx: ApiContext, bot: Bot, p: Params) -> str:
    invoice = parse_invoice(p, bot.id)
    check_invoice(invoice)
    check_subscription(invoice, p.integer("subscription_period"))
    slug = invoice_slug()
    invoice.link = f"https://t.me/${slug}"
    bot.payments.links[slug] = invoice
    return invoice.link


@method("answerPreCheckoutQuery")
async def answer_pre_checkout_query(ctx: ApiContext, bot: Bot, p: Params) -> bool:
    query_id = p.string("pre_checkout_query_id") or ""
    ok = p.flag("ok")
    error_message = p.string("error_message") or ""
    if not ok and not error_message:
        raise bad_request("error_message must be non-empty")
    record = bot.payments.queries.get(query_id)
    if record is None or record.answered or record.status != "pending":
        raise too_old()
    if ctx.now_monotonic() - record.created > ctx.settings.pre_checkout_timeout:
        raise too_old()
    record.answered = True
    record.answered_at = ctx.now_monotonic()
    record.ok = ok
    record.error_message = None if ok else error_message
    record.done.set()
    return True


@method("refundStarPayment")
async def refund_star_payment(ctx: ApiContext, bot: Bot, p: Params) -> bool:
    user_id = p.integer("user_id")
    if user_id is None or user_id <= 0:
        raise bad_request("invalid user_id specified")
    charge_id = p.string("telegram_payment_charge_id") or ""
    if not charge_id:
        raise bad_request('parameter "telegram_payment_charge_id" is required')
    if user_id not in ctx.state.users:
        raise bad_request("USER_ID_INVALID")
    payment = bot.payments.payments.get(charge_id)
    if payment is None or payment.user_id != user_id or not payment.invoice.is_stars:
        raise bad_request(CHARGE_NOT_FOUND)
    if payment.status == "refunded":
        raise bad_request(CHARGE_ALREADY_REFUNDED)
    refunded: Json = {
        "currency": payment.currency,
        "total_amount": payment.total_amount,
        "invoice_payload": payment.invoice.payload,
        "telegram_payment_charge_id": payment.telegram_payment_charge_id,
    }
    payment.status = "refunded"
    payment.refunded_date = ctx.state.now()
    conv = ctx.state.conversation(bot, user_id)
    if conv is not None:
        user = ctx.state.users[user_id]
        message = ctx.state.store_message(conv, user, {"refunded_payment": refunded})
        payment.refund_update_id = ctx.state.enqueue_update(bot, "message", message)
        ctx.state.emit(
            conv,
            "payment",
            status="refunded",
            telegram_payment_charge_id=payment.telegram_payment_charge_id,
            currency=payment.currency,
            total_amount=payment.total_amount,
            invoice_message_id=payment.invoice.message_id,
        )
    return True


@method("getStarTransactions")
async def get_star_transactions(ctx: ApiContext, bot: Bot, p: Params) -> Json:
    offset = max(p.integer("offset") or 0, 0)
    limit = min(max(p.integer("limit") or 100, 1), 100)
    transactions = bot.payments.stars_transactions()
    return {"transactions": transactions[offset : offset + limit]}


@method("getMyStarBalance")
async def get_my_star_balance(ctx: ApiContext, bot: Bot, p: Params) -> Json:
    return {"amount": bot.payments.stars_balance()}
