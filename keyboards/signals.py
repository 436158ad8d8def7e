"""Buttons of AI signals: trade a signal (amounts), and the signal button under a chart."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from services.i18n import Translator

BUY_AMOUNTS = (50, 100, 250)  # in the quote currency
SELL_PERCENTS = (50, 100)


class SignalCB(CallbackData, prefix="sg"):
    symbol: str
    tf: str


class SignalTradeCB(CallbackData, prefix="st"):
    signal_id: int
    amount: int  # quote amount for a buy, percent of the holding for a sell


def signal_keyboard(
    t: Translator, signal_id: int, side: str | None, quote: str
) -> InlineKeyboardMarkup | None:
    if side is None:
        return None
    builder = InlineKeyboardBuilder()
    if side == "buy":
        for amount in BUY_AMOUNTS:
            builder.button(
                text=t("consensus.buttons.buy", amount=amount, quote=quote),
                callback_data=SignalTradeCB(signal_id=signal_id, amount=amount),
            )
    else:
        for percent in SELL_PERCENTS:
            builder.button(
                text=t("consensus.buttons.sell", percent=percent),
                callback_data=SignalTradeCB(signal_id=signal_id, amount=percent),
            )
    builder.adjust(3)
    return builder.as_markup()
