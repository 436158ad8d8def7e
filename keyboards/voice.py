"""Buttons of spoken and free-text commands: run the command heard, or pick an answer to a question."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from services.i18n import Translator
from services.intents import IntentOption


class IntentCB(CallbackData, prefix="it"):
    action: str  # run | cancel | pick
    nonce: str
    index: int = 0


def run_keyboard(t: Translator, nonce: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=t("voice.buttons.run"), callback_data=IntentCB(action="run", nonce=nonce))
    builder.button(text=t("voice.buttons.cancel"), callback_data=IntentCB(action="cancel", nonce=nonce))
    builder.adjust(2)
    return builder.as_markup()


def options_keyboard(t: Translator, nonce: str, options: tuple[IntentOption, ...]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for index, option in enumerate(options):
        builder.button(
            text=t(option.label_key, **dict(option.params)),
            callback_data=IntentCB(action="pick", nonce=nonce, index=index),
        )
    builder.button(text=t("voice.buttons.cancel"), callback_data=IntentCB(action="cancel", nonce=nonce))
    builder.adjust(2)
    return builder.as_markup()
