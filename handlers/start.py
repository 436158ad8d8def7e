from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, Message

from handlers.render import show
from keyboards.menu import MenuCB, back_to_menu, main_menu
from services.i18n import Translator
from services.users import UserProfile

router = Router(name="start")
router.message.filter(F.chat.type == "private")


@router.message(CommandStart())
async def cmd_start(message: Message, user: UserProfile, i18n: Translator) -> None:
    name = user.first_name or (message.from_user.first_name if message.from_user else "")
    greeting = i18n("start.greeting" if user.is_new else "start.greeting_back", name=name)
    await message.answer(f"{greeting}\n\n{i18n('menu.title')}", reply_markup=main_menu(i18n))


@router.message(Command("menu"))
async def cmd_menu(message: Message, i18n: Translator) -> None:
    await message.answer(i18n("menu.title"), reply_markup=main_menu(i18n))


@router.callback_query(MenuCB.filter(F.section == "home"))
async def on_home(query: CallbackQuery, i18n: Translator) -> None:
    await show(query, i18n("menu.title"), main_menu(i18n))


@router.message(Command("help"))
async def cmd_help(message: Message, i18n: Translator) -> None:
    await message.answer(i18n("help.text"), reply_markup=back_to_menu(i18n))


@router.callback_query(MenuCB.filter(F.section == "help"))
async def on_help(query: CallbackQuery, i18n: Translator) -> None:
    await show(query, i18n("help.text"), back_to_menu(i18n))
