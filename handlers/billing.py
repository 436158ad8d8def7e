"""Credits, plans and payments: /credits, /plans, /plan, /buy_credits, Telegram Stars (and card) invoices,
the pre-checkout check, successful payments, and the admin's /refund."""

from __future__ import annotations

from typing import Any

import structlog
from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, LabeledPrice, Message, PreCheckoutQuery
from aiogram.utils.keyboard import InlineKeyboardBuilder
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import format as fmt
from handlers.errors import describe
from handlers.filters import PRIVATE
from handlers.render import plain, show
from keyboards.billing import BillingCB, BuyCB, billing_menu, packs_keyboard, plans_keyboard
from keyboards.menu import MenuCB
from services.billing.entitlements import Entitlements, Feature
from services.billing.plans import Catalogue
from services.billing.purchases import STARS, PurchaseService, PurchaseView
from services.billing.refunds import stars_refund_target
from services.credits.ledger import CreditLedger
from services.errors import AppError, ValidationError
from services.i18n import Html, I18n, Translator
from services.users import UserProfile

log = structlog.get_logger(__name__)
PAYLOAD_PREFIX = "purchase:"


def build_router() -> Router:
    router = Router(name="billing")
    router.message.filter(PRIVATE)
    router.message.register(cmd_credits, Command("credits"))
    router.message.register(cmd_plans, Command("plans"))
    router.message.register(cmd_plan, Command("plan"))
    router.message.register(cmd_buy_credits, Command("buy_credits"))
    router.message.register(cmd_refund, Command("refund"))
    router.message.register(on_successful_payment, F.successful_payment)
    router.message.register(on_refunded_payment, F.refunded_payment)
    router.pre_checkout_query.register(on_pre_checkout)
    router.callback_query.register(on_billing_menu, MenuCB.filter(F.section == "billing"))
    router.callback_query.register(on_view, BillingCB.filter())
    router.callback_query.register(on_buy, BuyCB.filter())
    return router


def _fiat(token: SecretStr | None) -> bool:
    return token is not None


# ------------------------------------------------------------------------------------------ views


async def credits_text(t: Translator, session: AsyncSession, catalogue: Catalogue, user: UserProfile) -> str:
    statement = await CreditLedger(session).statement(user.id, limit=8)
    plan = await Entitlements(session, catalogue).plan(user.id)
    lines = [
        t(
            "billing.entry",
            date=e.created_at.strftime("%m-%d %H:%M"),
            kind=t(f"billing.kinds.{e.kind.value}"),
            amount=fmt.signed(e.amount),
        )
        for e in statement.entries
    ]
    return t(
        "billing.credits",
        balance=fmt.amount(statement.balance, 2),
        debt=fmt.amount(statement.debt, 2),
        plan=plan.name,
        price=f"{catalogue.credit_price_usd:.2f}",
        entries=Html("\n".join(lines)) if lines else t("billing.no_entries"),
        status=t("billing.live_ok" if statement.allows_live_entries else "billing.live_blocked"),
    )


def plans_text(t: Translator, catalogue: Catalogue) -> str:
    blocks = []
    for plan in catalogue.plans():
        limits = plan.limits
        signals = t("billing.unlimited") if limits.ai_signals_per_day is None else limits.ai_signals_per_day
        exchanges = t("billing.unlimited") if limits.live_exchanges is None else limits.live_exchanges
        blocks.append(
            t(
                "billing.plan_line",
                name=plan.name,
                price=f"{plan.price_usd:.0f}",
                credits=fmt.amount(plan.monthly_credits, 0),
                signals=signals,
                exchanges=exchanges,
            )
        )
    return t("billing.plans", lines=Html("\n\n".join(blocks)))


async def cmd_credits(
    message: Message, user: UserProfile, i18n: Translator, session: AsyncSession, catalogue: Catalogue
) -> None:
    await message.answer(await credits_text(i18n, session, catalogue, user), reply_markup=billing_menu(i18n))


async def cmd_plans(
    message: Message,
    i18n: Translator,
    catalogue: Catalogue,
    payments_token: SecretStr | None = None,
    stripe_billing: Any = None,
) -> None:
    markup = plans_keyboard(i18n, catalogue, fiat=_fiat(payments_token), stripe=stripe_billing is not None)
    await message.answer(plans_text(i18n, catalogue), reply_markup=markup)


async def cmd_plan(
    message: Message, user: UserProfile, i18n: Translator, session: AsyncSession, catalogue: Catalogue
) -> None:
    rights = Entitlements(session, catalogue)
    plan = await rights.plan(user.id)
    sub = await PurchaseService(session, catalogue).current_subscription(user.id)
    used = await rights.usage_today(user.id, Feature.AI_SIGNAL)
    live = await rights.check(user.id, Feature.LIVE_TRADING)
    balance = await CreditLedger(session).balance(user.id)
    limit = plan.limits.ai_signals_per_day
    await message.answer(
        i18n(
            "billing.plan",
            name=plan.name,
            until=sub.current_period_end.strftime("%Y-%m-%d") if sub is not None else "—",
            renews=i18n("billing.ends" if sub is not None and sub.cancel_at_period_end else "billing.renews")
            if sub is not None
            else "",
            signals_used=used,
            signals_limit=i18n("billing.unlimited") if limit is None else limit,
            exchanges_used=live.used or 0,
            exchanges_limit=i18n("billing.unlimited")
            if plan.limits.live_exchanges is None
            else plan.limits.live_exchanges,
            credits=fmt.amount(balance.balance, 2),
            debt=fmt.amount(balance.debt, 2),
        ),
        reply_markup=billing_menu(i18n),
    )


async def cmd_buy_credits(
    message: Message,
    i18n: Translator,
    catalogue: Catalogue,
    payments_token: SecretStr | None = None,
    stripe_billing: Any = None,
) -> None:
    markup = packs_keyboard(i18n, catalogue, fiat=_fiat(payments_token), stripe=stripe_billing is not None)
    await message.answer(
        i18n("billing.packs", price=f"{catalogue.credit_price_usd:.2f}"), reply_markup=markup
    )


async def on_billing_menu(
    query: CallbackQuery, user: UserProfile, i18n: Translator, session: AsyncSession, catalogue: Catalogue
) -> None:
    await show(query, await credits_text(i18n, session, catalogue, user), billing_menu(i18n))


async def on_view(
    query: CallbackQuery,
    callback_data: BillingCB,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    catalogue: Catalogue,
    payments_token: SecretStr | None = None,
    stripe_billing: Any = None,
) -> None:
    stripe = stripe_billing is not None
    if callback_data.view == "plans":
        await show(
            query,
            plans_text(i18n, catalogue),
            plans_keyboard(i18n, catalogue, fiat=_fiat(payments_token), stripe=stripe),
        )
    elif callback_data.view == "packs":
        markup = packs_keyboard(i18n, catalogue, fiat=_fiat(payments_token), stripe=stripe)
        await show(query, i18n("billing.packs", price=f"{catalogue.credit_price_usd:.2f}"), markup)
    else:
        await show(query, await credits_text(i18n, session, catalogue, user), billing_menu(i18n))


# ------------------------------------------------------------------------------------------ buying


def _title(t: Translator, purchase: PurchaseView, catalogue: Catalogue) -> tuple[str, str]:
    if purchase.kind == "pack":
        credits = int(purchase.credits or 0)
        return t("billing.invoice.pack_title", credits=credits), t(
            "billing.invoice.pack_description", credits=credits
        )
    plan = catalogue.plan(purchase.item_code)
    return (
        t("billing.invoice.plan_title", name=plan.name),
        t(
            "billing.invoice.plan_description",
            name=plan.name,
            days=plan.period_days,
            credits=fmt.amount(plan.monthly_credits, 0),
        ),
    )


async def on_buy(
    query: CallbackQuery,
    callback_data: BuyCB,
    bot: Bot,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    catalogue: Catalogue,
    payments_token: SecretStr | None = None,
    stripe_billing: Any = None,
) -> None:
    provider = {"stars": "telegram_stars", "fiat": "telegram_fiat", "stripe": "stripe"}.get(
        callback_data.provider
    )
    if provider is None or (provider == "telegram_fiat" and not _fiat(payments_token)):
        await query.answer(plain(i18n("billing.errors.provider_unavailable")), show_alert=True)
        return
    if provider == "stripe" and stripe_billing is None:
        await query.answer(plain(i18n("billing.errors.provider_unavailable")), show_alert=True)
        return
    service = PurchaseService(session, catalogue)
    purchase = await service.create(user.id, callback_data.kind, callback_data.code, provider)
    await session.commit()
    title, description = _title(i18n, purchase, catalogue)
    await query.answer()
    if provider == "stripe":
        url = await stripe_billing.create_checkout(session, user, purchase)
        builder = InlineKeyboardBuilder()
        builder.button(text=i18n("billing.buttons.open_checkout", usd=f"{purchase.amount:.2f}"), url=url)
        await bot.send_message(
            user.telegram_id, i18n("billing.checkout", title=title), reply_markup=builder.as_markup()
        )
        return
    token = "" if provider == "telegram_stars" else payments_token.get_secret_value()  # type: ignore[union-attr]
    await bot.send_invoice(
        chat_id=user.telegram_id,
        title=title,
        description=description,
        payload=f"{PAYLOAD_PREFIX}{purchase.id}",
        provider_token=token,
        currency=purchase.currency,
        prices=[LabeledPrice(label=title, amount=purchase.minor_amount)],
    )


def _purchase_id(payload: str) -> int | None:
    if not payload.startswith(PAYLOAD_PREFIX):
        return None
    tail = payload[len(PAYLOAD_PREFIX) :]
    return int(tail) if tail.isdigit() else None


async def on_pre_checkout(
    query: PreCheckoutQuery, user: UserProfile, i18n: Translator, session: AsyncSession, catalogue: Catalogue
) -> None:
    """Answered at once (Telegram waits 10 s at most): the purchase must exist, be this user's, unpaid,
    and the amount and currency must be the ones it was created with."""
    purchase_id = _purchase_id(query.invoice_payload)
    try:
        if purchase_id is None:
            raise ValidationError("billing.errors.purchase_unknown")
        await PurchaseService(session, catalogue).check_payable(
            purchase_id, user.id, query.currency, query.total_amount
        )
    except AppError as exc:
        await query.answer(ok=False, error_message=plain(describe(i18n, exc), 200))
        return
    await query.answer(ok=True)


async def on_successful_payment(
    message: Message, user: UserProfile, i18n: Translator, session: AsyncSession, catalogue: Catalogue
) -> None:
    """Granted exactly once per `telegram_payment_charge_id`, however often the update comes."""
    payment = message.successful_payment
    assert payment is not None
    purchase_id = _purchase_id(payment.invoice_payload)
    service = PurchaseService(session, catalogue)
    provider = "telegram_stars" if payment.currency == STARS else "telegram_fiat"
    if not await service.record_event(provider, payment.telegram_payment_charge_id, "successful_payment"):
        await session.rollback()
        return  # seen before
    if purchase_id is None:
        log.error("payment.unknown_payload", charge=payment.telegram_payment_charge_id)
        await session.commit()
        return
    done = await service.pay(
        purchase_id,
        charge_id=payment.telegram_payment_charge_id,
        payment_id=payment.provider_payment_charge_id or None,
    )
    await service.mark_event_processed(provider, payment.telegram_payment_charge_id, purchase_id)
    await session.commit()
    if done.replayed:
        return
    if done.plan is not None and done.period_end is not None:
        plan = catalogue.plan(done.plan)
        text = i18n(
            "billing.paid_plan",
            name=plan.name,
            until=done.period_end.strftime("%Y-%m-%d"),
            credits=fmt.amount(done.credits, 0),
        )
    else:
        text = i18n("billing.paid_pack", credits=fmt.amount(done.credits, 0))
    balance = await CreditLedger(session).balance(user.id)
    await message.answer(
        text
        + "\n"
        + i18n(
            "billing.balance_now", balance=fmt.amount(balance.balance, 2), debt=fmt.amount(balance.debt, 2)
        )
    )


async def cmd_refund(
    message: Message,
    command: CommandObject,
    bot: Bot,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    catalogue: Catalogue,
    i18n_hub: I18n,
) -> None:
    """Admins: refund a Stars purchase on Telegram, then reverse what it granted."""
    if not user.is_admin:
        await message.answer(i18n("billing.errors.admins_only"))
        return
    arg = (command.args or "").strip().lstrip("#")
    if not arg.isdigit():
        await message.answer(i18n("billing.refund_usage"))
        return
    target = await stars_refund_target(session, int(arg))
    await session.commit()
    await bot.refund_star_payment(user_id=target.telegram_id, telegram_payment_charge_id=target.charge_id)
    refund = await PurchaseService(session, catalogue).refund(target.purchase_id)
    await session.commit()
    await message.answer(
        i18n(
            "billing.refunded_admin",
            id=target.purchase_id,
            credits=fmt.amount(refund.credits_reversed, 2),
            debt=fmt.amount(refund.debt, 2),
        )
    )
    if refund.replayed:
        return  # Telegram's refund notice got there first and told the payer
    payer_t = i18n_hub.translator(i18n_hub.resolve(target.locale, target.locale))
    await bot.send_message(
        target.telegram_id,
        payer_t(
            "billing.refunded",
            credits=fmt.amount(refund.credits_reversed, 2),
            debt=fmt.amount(refund.debt, 2),
        ),
    )


async def on_refunded_payment(
    message: Message, user: UserProfile, i18n: Translator, session: AsyncSession, catalogue: Catalogue
) -> None:
    """Telegram refunded a Stars payment (ours, or through Telegram's support): what it granted is
    reversed once."""
    refunded = message.refunded_payment
    assert refunded is not None
    service = PurchaseService(session, catalogue)
    if not await service.record_event(
        "telegram", f"refund:{refunded.telegram_payment_charge_id}", "refunded_payment"
    ):
        await session.rollback()
        return
    purchase = await service.by_payment(refunded.telegram_payment_charge_id)
    if purchase is None or purchase.user_id != user.id:
        await session.commit()
        return
    refund = await service.refund(purchase.id)
    await session.commit()
    if not refund.replayed:
        await message.answer(
            i18n(
                "billing.refunded",
                credits=fmt.amount(refund.credits_reversed, 2),
                debt=fmt.amount(refund.debt, 2),
            )
        )
