from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from services.i18n import I18n, Translator

# Every area of the product, in menu order.
SECTIONS = ("trade", "signals", "market", "portfolio", "copy", "billing", "settings", "help")


class MenuCB(CallbackData, prefix="menu"):
    section: str


class LanguageCB(CallbackData, prefix="lang"):
    code: str


_MAIN_MENUS: dict[str, InlineKeyboardMarkup] = {}


def main_menu(t: Translator) -> InlineKeyboardMarkup:
    """Built once per language: the most sent keyboard of all."""
    cached = _MAIN_MENUS.get(t.locale)
    if cached is None:
        cached = _MAIN_MENUS[t.locale] = _build_main_menu(t)
    return cached


def _build_main_menu(t: Translator) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for section in SECTIONS:
        builder.button(text=t(f"menu.{section}"), callback_data=MenuCB(section=section))
    builder.adjust(2)
    return builder.as_markup()


def back_to_menu(t: Translator) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=t("menu.back"), callback_data=MenuCB(section="home"))
    return builder.as_markup()


def settings_keyboard(t: Translator) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=t("settings.language_button"), callback_data=MenuCB(section="language"))
    builder.button(text=t("accounts.buttons.list"), callback_data=MenuCB(section="accounts"))
    builder.button(text=t("menu.back"), callback_data=MenuCB(section="home"))
    builder.adjust(1)
    return builder.as_markup()


def language_keyboard(t: Translator, hub: I18n, current: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for code in hub.locales:
        mark = "✓ " if code == current else ""
        builder.button(text=mark + t(f"language.names.{code}"), callback_data=LanguageCB(code=code))
    builder.button(text=t("menu.back"), callback_data=MenuCB(section="home"))
    builder.adjust(len(hub.locales), 1)
    return builder.as_markup()
