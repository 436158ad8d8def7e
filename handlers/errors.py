"""One place that turns exceptions into answers. Users see a localised message, never internals."""

from __future__ import annotations

from typing import Any

import structlog
from aiogram import Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import ErrorEvent, InlineKeyboardMarkup

from handlers.render import plain
from keyboards.billing import buy_credits_button, see_plans_button
from services.billing.errors import CreditsRequired, EntitlementError
from services.errors import AppError
from services.exchanges.types import exchange_name
from services.i18n import I18n, Translator

log = structlog.get_logger(__name__)


def build_router() -> Router:
    router = Router(name="errors")
    router.error.register(on_app_error, ExceptionTypeFilter(AppError))
    router.error.register(on_unexpected_error)
    return router


async def _tell(event: ErrorEvent, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    update = event.update
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(plain(text), show_alert=True)
            if markup is not None and update.callback_query.message is not None:
                bot = update.callback_query.bot
                assert bot is not None
                await bot.send_message(update.callback_query.from_user.id, text, reply_markup=markup)
        elif update.message is not None and update.message.chat.type == "private":
            await update.message.answer(text, reply_markup=markup)
    except TelegramAPIError as exc:
        log.warning("error_reply_failed", error=type(exc).__name__)


def _translator(data: dict[str, Any]) -> Translator:
    translator = data.get("i18n")
    if isinstance(translator, Translator):
        return translator
    hub: I18n = data["i18n_hub"]
    return hub.translator(None)


def describe(t: Translator, exc: AppError) -> str:
    """The user's message for an application error (exchange ids shown by their names)."""
    params = dict(exc.params)
    if isinstance(params.get("exchange"), str):
        params["exchange"] = exchange_name(params["exchange"])
    if isinstance(exc, EntitlementError):
        params["feature"] = t(f"billing.features.{exc.feature}")
        params["plan"] = t(f"billing.plan_names.{exc.plan}")
        params["required_plan"] = t(f"billing.plan_names.{exc.required_plan}") if exc.required_plan else None
    return t(exc.message_key, **params)


def remedy(t: Translator, exc: AppError) -> InlineKeyboardMarkup | None:
    """The way out of a refusal: credit packs, or the plans."""
    if isinstance(exc, CreditsRequired):
        return buy_credits_button(t)
    if isinstance(exc, EntitlementError):
        return see_plans_button(t)
    return None


async def on_app_error(event: ErrorEvent, **data: Any) -> None:
    exc = event.exception
    assert isinstance(exc, AppError)
    t = _translator(data)
    await _tell(event, describe(t, exc), remedy(t, exc))


async def on_unexpected_error(event: ErrorEvent, **data: Any) -> None:
    log.error(
        "handler.crashed",
        update_id=event.update.update_id,
        error=type(event.exception).__name__,
        exc_info=event.exception,
    )
    await _tell(event, _translator(data)("errors.internal"))
