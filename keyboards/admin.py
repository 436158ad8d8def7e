"""Buttons of the admins' area."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from services.i18n import Translator


class StatusCB(CallbackData, prefix="adm"):
    action: str  # refresh


def status_keyboard(t: Translator) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=t("admin.status.refresh"), callback_data=StatusCB(action="refresh"))
    return builder.as_markup()
