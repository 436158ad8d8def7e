"""The menu's catch-all: areas whose feature is not built yet say so plainly."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery

from handlers.render import show
from keyboards.menu import SECTIONS, MenuCB, back_to_menu
from services.i18n import Translator


def build_router() -> Router:
    router = Router(name="menu")
    router.callback_query.register(on_unavailable_section, MenuCB.filter())
    return router


async def on_unavailable_section(query: CallbackQuery, callback_data: MenuCB, i18n: Translator) -> None:
    section = callback_data.section if callback_data.section in SECTIONS else "home"
    area = i18n(f"menu.{section}") if section != "home" else i18n("menu.title")
    await show(query, i18n("menu.unavailable", area=area), back_to_menu(i18n))
