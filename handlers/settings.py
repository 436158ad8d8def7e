from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command
from aiogram.types import BotCommandScopeChat, CallbackQuery, Message

from handlers.commands import bot_commands
from handlers.filters import PRIVATE
from handlers.render import show
from keyboards.menu import LanguageCB, MenuCB, language_keyboard, main_menu
from keyboards.risk import settings_with_risk
from services.exchanges.types import exchange_name
from services.i18n import I18n, Translator
from services.trading.service import TradingService
from services.users import UserProfile, UserService


def build_router() -> Router:
    router = Router(name="settings")
    router.message.filter(PRIVATE)
    router.message.register(cmd_settings, Command("settings"))
    router.callback_query.register(on_settings, MenuCB.filter(F.section == "settings"))
    router.message.register(cmd_language, Command("language"))
    router.callback_query.register(on_language_menu, MenuCB.filter(F.section == "language"))
    router.callback_query.register(on_language_chosen, LanguageCB.filter())
    return router


async def _settings_text(i18n: Translator, user: UserProfile, locale: str, trading: TradingService) -> str:
    _, account = await trading.active_account(user)
    mode = (
        i18n("modes.paper")
        if account.is_paper
        else f"{i18n('modes.live')} · {exchange_name(account.exchange)}"
    )
    return i18n(
        "settings.title",
        language=i18n(f"language.names.{locale}"),
        tier=i18n(f"tiers.{user.tier}"),
        mode=mode,
        since=user.created_at.strftime("%Y-%m-%d"),
    )


async def cmd_settings(
    message: Message, user: UserProfile, i18n: Translator, locale: str, trading: TradingService
) -> None:
    text = await _settings_text(i18n, user, locale, trading)
    await message.answer(text, reply_markup=settings_with_risk(i18n))


async def on_settings(
    query: CallbackQuery, user: UserProfile, i18n: Translator, locale: str, trading: TradingService
) -> None:
    await show(query, await _settings_text(i18n, user, locale, trading), settings_with_risk(i18n))


async def cmd_language(message: Message, i18n: Translator, i18n_hub: I18n, locale: str) -> None:
    await message.answer(i18n("language.choose"), reply_markup=language_keyboard(i18n, i18n_hub, locale))


async def on_language_menu(query: CallbackQuery, i18n: Translator, i18n_hub: I18n, locale: str) -> None:
    await show(query, i18n("language.choose"), language_keyboard(i18n, i18n_hub, locale))


async def on_language_chosen(
    query: CallbackQuery,
    callback_data: LanguageCB,
    user: UserProfile,
    user_service: UserService,
    i18n_hub: I18n,
    bot: Bot,
) -> None:
    await user_service.set_locale(user, callback_data.code, i18n_hub.locales)
    t = i18n_hub.translator(callback_data.code)
    await show(query, f"{t('language.changed')}\n\n{t('menu.title')}", main_menu(t))
    # The command menu of this chat follows the chosen language.
    try:
        await bot.set_my_commands(bot_commands(t), scope=BotCommandScopeChat(chat_id=query.from_user.id))
    except TelegramAPIError:
        return
