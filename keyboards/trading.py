from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from keyboards.menu import MenuCB
from services.i18n import Translator


class OrderCB(CallbackData, prefix="ord"):
    action: str  # confirm | cancel
    token: str


class ViewCB(CallbackData, prefix="pf"):
    view: str  # balance | positions | pnl


def confirm_keyboard(t: Translator, token: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=t("trade.buttons.confirm"), callback_data=OrderCB(action="confirm", token=token))
    builder.button(text=t("trade.buttons.cancel"), callback_data=OrderCB(action="cancel", token=token))
    builder.adjust(2)
    return builder.as_markup()


def portfolio_keyboard(t: Translator, current: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=t("trade.buttons.refresh"), callback_data=ViewCB(view=current))
    for view in ("balance", "positions", "pnl"):
        if view != current:
            builder.button(text=t(f"trade.buttons.{view}"), callback_data=ViewCB(view=view))
    builder.button(text=t("menu.back"), callback_data=MenuCB(section="home"))
    builder.adjust(3, 1)
    return builder.as_markup()


def trade_menu_keyboard(t: Translator) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for view in ("balance", "positions", "pnl"):
        builder.button(text=t(f"trade.buttons.{view}"), callback_data=ViewCB(view=view))
    builder.button(text=t("menu.back"), callback_data=MenuCB(section="home"))
    builder.adjust(3, 1)
    return builder.as_markup()


class CloseCB(CallbackData, prefix="cls"):
    action: str  # confirm | cancel
    token: str


def close_keyboard(t: Translator, token: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=t("trade.buttons.confirm"), callback_data=CloseCB(action="confirm", token=token))
    builder.button(text=t("trade.buttons.cancel"), callback_data=CloseCB(action="cancel", token=token))
    builder.adjust(2)
    return builder.as_markup()
