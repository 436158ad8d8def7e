"""Buttons of AI signals: trade it (sized by the risk rules), the voters' reasons, a fresh signal."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from services.i18n import Translator


class SignalCB(CallbackData, prefix="sg"):
    symbol: str
    tf: str


class SignalActionCB(CallbackData, prefix="sa"):
    action: str  # trade | why
    signal_id: int


def signal_keyboard(
    t: Translator, signal_id: int, symbol: str, timeframe: str, tradable: bool
) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    if tradable:
        builder.button(
            text=t("consensus.buttons.trade"),
            callback_data=SignalActionCB(action="trade", signal_id=signal_id),
        )
    builder.button(
        text=t("consensus.buttons.why"), callback_data=SignalActionCB(action="why", signal_id=signal_id)
    )
    builder.button(text=t("consensus.buttons.refresh"), callback_data=SignalCB(symbol=symbol, tf=timeframe))
    builder.adjust(3)
    return builder.as_markup()
