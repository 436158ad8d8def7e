"""Buttons of credits, plans and payments."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from keyboards.menu import MenuCB
from services.billing.plans import Catalogue
from services.billing.purchases import MAX_STARS_PER_INVOICE
from services.i18n import Translator


class BillingCB(CallbackData, prefix="bl"):
    view: str  # credits | plans | packs


class BuyCB(CallbackData, prefix="buy"):
    kind: str  # pack | plan
    code: str
    provider: str  # stars | fiat | stripe


def billing_menu(t: Translator) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=t("billing.buttons.buy_credits"), callback_data=BillingCB(view="packs"))
    builder.button(text=t("billing.buttons.plans"), callback_data=BillingCB(view="plans"))
    builder.button(text=t("menu.back"), callback_data=MenuCB(section="home"))
    builder.adjust(2, 1)
    return builder.as_markup()


def _providers(fiat: bool, stripe: bool, stars_price: int) -> list[str]:
    providers = ["stars"] if 0 < stars_price <= MAX_STARS_PER_INVOICE else []
    if fiat:
        providers.append("fiat")
    if stripe:
        providers.append("stripe")
    return providers


def packs_keyboard(t: Translator, catalogue: Catalogue, *, fiat: bool, stripe: bool) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    rows: list[int] = []
    for pack in catalogue.packs():
        providers = _providers(fiat, stripe, pack.stars_price)
        for provider in providers:
            builder.button(
                text=t(
                    f"billing.buttons.pay_{provider}",
                    what=t("billing.pack_name", credits=int(pack.credits)),
                    stars=pack.stars_price,
                    usd=f"{pack.price_usd:.2f}",
                ),
                callback_data=BuyCB(kind="pack", code=pack.code, provider=provider),
            )
        rows.append(len(providers))
    builder.button(text=t("billing.buttons.back"), callback_data=BillingCB(view="credits"))
    builder.adjust(*[r for r in rows if r], 1)
    return builder.as_markup()


def plans_keyboard(t: Translator, catalogue: Catalogue, *, fiat: bool, stripe: bool) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    rows: list[int] = []
    for plan in catalogue.paid_plans():
        providers = _providers(fiat, stripe, plan.stars_price)
        for provider in providers:
            builder.button(
                text=t(
                    f"billing.buttons.pay_{provider}",
                    what=plan.name,
                    stars=plan.stars_price,
                    usd=f"{plan.price_usd:.2f}",
                ),
                callback_data=BuyCB(kind="plan", code=plan.code, provider=provider),
            )
        rows.append(len(providers))
    builder.button(text=t("billing.buttons.back"), callback_data=BillingCB(view="credits"))
    builder.adjust(*[r for r in rows if r], 1)
    return builder.as_markup()


def buy_credits_button(t: Translator) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=t("billing.buttons.buy_credits"), callback_data=BillingCB(view="packs"))
    return builder.as_markup()


def see_plans_button(t: Translator) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=t("billing.buttons.plans"), callback_data=BillingCB(view="plans"))
    return builder.as_markup()
