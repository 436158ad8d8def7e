from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, Message

from handlers.filters import PRIVATE
from handlers.render import show
from keyboards.menu import MenuCB, back_to_menu, main_menu
from services.i18n import Translator
from services.users import UserProfile


def build_router() -> Router:
    router = Router(name="start")
    router.message.filter(PRIVATE)
    router.message.register(cmd_start, CommandStart())
    router.message.register(cmd_menu, Command("menu"))
    router.callback_query.register(on_home, MenuCB.filter(F.section == "home"))
    router.message.register(cmd_help, Command("help"))
    router.callback_query.register(on_help, MenuCB.filter(F.section == "help"))
    return router


async def cmd_start(message: Message, user: UserProfile, i18n: Translator) -> None:
    name = user.first_name or (message.from_user.first_name if message.from_user else "")
    greeting = i18n("start.greeting" if user.is_new else "start.greeting_back", name=name)
    await message.answer(f"{greeting}\n\n{i18n('menu.title')}", reply_markup=main_menu(i18n))


async def cmd_menu(message: Message, i18n: Translator) -> None:
    await message.answer(i18n("menu.title"), reply_markup=main_menu(i18n))


async def on_home(query: CallbackQuery, i18n: Translator) -> None:
    await show(query, i18n("menu.title"), main_menu(i18n))


async def cmd_help(message: Message, i18n: Translator) -> None:
    await message.answer(i18n("help.text"), reply_markup=back_to_menu(i18n))


async def on_help(query: CallbackQuery, i18n: Translator) -> None:
    await show(query, i18n("help.text"), back_to_menu(i18n))
