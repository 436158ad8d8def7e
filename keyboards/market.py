"""Buttons of the market area: quick analyses and other timeframes of a chart."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from keyboards.menu import MenuCB
from keyboards.signals import SignalCB
from services.i18n import Translator

CHART_TIMEFRAMES = ("15m", "1h", "4h", "1d")
QUICK_SYMBOLS = ("BTC", "ETH", "SOL", "BNB")


class AnalyzeCB(CallbackData, prefix="an"):
    symbol: str  # e.g. BTC/USDT
    tf: str


def report_keyboard(t: Translator, symbol: str, current: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for tf in CHART_TIMEFRAMES:
        label = f"• {tf} •" if tf == current else tf
        builder.button(text=label, callback_data=AnalyzeCB(symbol=symbol, tf=tf))
    builder.button(text=t("market.signal_button"), callback_data=SignalCB(symbol=symbol, tf=current))
    builder.adjust(len(CHART_TIMEFRAMES), 1)
    return builder.as_markup()


def market_menu(t: Translator) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for base in QUICK_SYMBOLS:
        builder.button(
            text=t("market.menu.analyze_button", base=base), callback_data=AnalyzeCB(symbol=base, tf="1h")
        )
    builder.button(text=t("menu.back"), callback_data=MenuCB(section="home"))
    builder.adjust(2, 2, 1)
    return builder.as_markup()
