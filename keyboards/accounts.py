"""Keyboards of exchange accounts: the connect wizard, the accounts list and its confirmation cards."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from keyboards.menu import MenuCB
from services.exchanges.types import EXCHANGES
from services.i18n import Translator
from services.trading.accounts import AccountView

CANCEL = "cancel"


class ConnectCB(CallbackData, prefix="accx"):
    exchange: str  # an exchange id, or "cancel"


class AccountCB(CallbackData, prefix="acc"):
    action: str  # list | connect | use | remove | remove_yes
    account_id: int = 0


class SwitchCB(CallbackData, prefix="accs"):
    action: str  # confirm | cancel
    token: str


def exchange_name(t: Translator, exchange: str) -> str:
    return t(f"accounts.exchanges.{exchange}")


def account_label(t: Translator, account: AccountView) -> str:
    if account.is_paper:
        return t("accounts.paper_label")
    return t("accounts.live_label", exchange=exchange_name(t, account.exchange), hint=account.key_hint)


def exchanges_keyboard(t: Translator) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for exchange in EXCHANGES:
        builder.button(text=exchange_name(t, exchange), callback_data=ConnectCB(exchange=exchange))
    builder.button(text=t("accounts.buttons.cancel"), callback_data=ConnectCB(exchange=CANCEL))
    builder.adjust(len(EXCHANGES), 1)
    return builder.as_markup()


def wizard_cancel_keyboard(t: Translator) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=t("accounts.buttons.cancel"), callback_data=ConnectCB(exchange=CANCEL))
    return builder.as_markup()


def accounts_keyboard(t: Translator, accounts: Sequence[AccountView]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    rows: list[int] = []
    for account in accounts:
        if not account.active:
            builder.button(
                text=t("accounts.buttons.use", account=account_label(t, account)),
                callback_data=AccountCB(action="use", account_id=account.id),
            )
            rows.append(1)
    for account in accounts:
        if not account.is_paper:
            builder.button(
                text=t("accounts.buttons.remove", account=account_label(t, account)),
                callback_data=AccountCB(action="remove", account_id=account.id),
            )
            rows.append(1)
    builder.button(text=t("accounts.buttons.connect"), callback_data=AccountCB(action="connect"))
    builder.button(text=t("menu.back"), callback_data=MenuCB(section="home"))
    builder.adjust(*rows, 1, 1)
    return builder.as_markup()


def switch_keyboard(t: Translator, token: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=t("accounts.buttons.confirm"), callback_data=SwitchCB(action="confirm", token=token))
    builder.button(text=t("accounts.buttons.cancel"), callback_data=SwitchCB(action="cancel", token=token))
    builder.adjust(2)
    return builder.as_markup()


def remove_keyboard(t: Translator, account_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=t("accounts.buttons.remove_yes"),
        callback_data=AccountCB(action="remove_yes", account_id=account_id),
    )
    builder.button(text=t("accounts.buttons.keep"), callback_data=AccountCB(action="list"))
    builder.adjust(2)
    return builder.as_markup()


def after_connect_keyboard(t: Translator, account_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=t("accounts.buttons.use_new"), callback_data=AccountCB(action="use", account_id=account_id)
    )
    builder.button(text=t("accounts.buttons.list"), callback_data=AccountCB(action="list"))
    builder.adjust(1)
    return builder.as_markup()


def list_keyboard(t: Translator) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=t("accounts.buttons.list"), callback_data=AccountCB(action="list"))
    return builder.as_markup()
