"""Buttons of price alerts and the scanner."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from services.i18n import Translator


class AlertCB(CallbackData, prefix="al"):
    action: str  # delete
    id: int


class ScanCB(CallbackData, prefix="sc"):
    action: str  # subscribe | unsubscribe | refresh


def alerts_keyboard(t: Translator, alert_ids: list[int]) -> InlineKeyboardMarkup | None:
    if not alert_ids:
        return None
    builder = InlineKeyboardBuilder()
    for alert_id in alert_ids:
        builder.button(
            text=t("alerts.delete_button", id=alert_id), callback_data=AlertCB(action="delete", id=alert_id)
        )
    builder.adjust(3)
    return builder.as_markup()


def scan_keyboard(t: Translator, subscribed: bool) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=t("scan.buttons.refresh"), callback_data=ScanCB(action="refresh"))
    if subscribed:
        builder.button(text=t("scan.buttons.unsubscribe"), callback_data=ScanCB(action="unsubscribe"))
    else:
        builder.button(text=t("scan.buttons.subscribe"), callback_data=ScanCB(action="subscribe"))
    builder.adjust(2)
    return builder.as_markup()
