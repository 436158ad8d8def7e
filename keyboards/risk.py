"""Keyboards of the risk limits card (/risk, Settings -> Risk limits)."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from keyboards.menu import MenuCB, settings_keyboard
from services.i18n import Translator
from services.risk.settings import PRESETS, RiskOverview, RiskSetting, ceiling, own_value


class RiskCB(CallbackData, prefix="risk"):
    action: str  # card | pick | set
    setting: str = ""
    value: int = 0


def risk_button(t: Translator) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=t("risk_settings.buttons.open"), callback_data=RiskCB(action="card").pack()
    )


def settings_with_risk(t: Translator) -> InlineKeyboardMarkup:
    """The settings keyboard with the risk limits button first."""
    rows = settings_keyboard(t).inline_keyboard
    return InlineKeyboardMarkup(inline_keyboard=[[risk_button(t)], *rows])


def risk_card_keyboard(t: Translator) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for setting in RiskSetting:
        builder.button(
            text=t(f"risk_settings.buttons.change.{setting.value}"),
            callback_data=RiskCB(action="pick", setting=setting.value),
        )
    builder.button(text=t("risk_settings.buttons.back"), callback_data=MenuCB(section="settings"))
    builder.adjust(1)
    return builder.as_markup()


def presets_keyboard(t: Translator, overview: RiskOverview, setting: RiskSetting) -> InlineKeyboardMarkup:
    """The preset values; the current one is ticked, those above the plan's ceiling are locked (pressing
    one says which plan allows it)."""
    top = ceiling(overview.ceilings, setting)
    current = own_value(overview.own, setting)
    builder = InlineKeyboardBuilder()
    presets = PRESETS[setting]
    for value in presets:
        mark = "✓ " if value == current else ("🔒 " if top is not None and value > top else "")
        label = t(f"risk_settings.presets.{setting.value}", value=value)
        builder.button(
            text=mark + label, callback_data=RiskCB(action="set", setting=setting.value, value=value)
        )
    builder.button(text=t("risk_settings.buttons.back"), callback_data=RiskCB(action="card"))
    builder.adjust(len(presets), 1)
    return builder.as_markup()
