"""/risk: the user's risk limits next to their plan's ceilings, changed by preset buttons or typed
(`/risk position 20`, `/risk positions 5`, `/risk daily 3`). Refusals go through the error router (a
ceiling comes with the plans button)."""

from __future__ import annotations

from decimal import Decimal

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.filters import PRIVATE
from handlers.render import show
from keyboards.risk import RiskCB, presets_keyboard, risk_card_keyboard
from services.billing.entitlements import Entitlements
from services.billing.plans import Catalogue
from services.errors import ValidationError
from services.i18n import Html, Translator
from services.risk.settings import (
    RiskOverview,
    RiskSetting,
    RiskSettingsService,
    ceiling,
    own_value,
    parse_value,
    setting_of,
)
from services.trading.service import TradingService
from services.users import UserProfile


def build_router() -> Router:
    router = Router(name="risk")
    router.message.filter(PRIVATE)
    router.message.register(cmd_risk, Command("risk"))
    router.callback_query.register(on_card, RiskCB.filter())
    return router


def _service(trading: TradingService, session: AsyncSession, catalogue: Catalogue) -> RiskSettingsService:
    return RiskSettingsService(trading, trading.entitlements or Entitlements(session, catalogue))


def _limit(t: Translator, setting: RiskSetting, value: Decimal | None) -> str:
    if value is None:
        return t("risk_settings.no_ceiling")
    return t(f"risk_settings.values.{setting.value}", value=value)


def card_text(t: Translator, overview: RiskOverview, saved: RiskSetting | None = None) -> str:
    lines = []
    for setting in RiskSetting:
        line = t(
            f"risk_settings.lines.{setting.value}",
            effective=Html(_limit(t, setting, own_value(overview.effective, setting))),
            own=Html(_limit(t, setting, own_value(overview.own, setting))),
            ceiling=Html(_limit(t, setting, ceiling(overview.ceilings, setting))),
        )
        if overview.capped(setting):
            line += t("risk_settings.capped")
        lines.append(line)
    text = t(
        "risk_settings.card",
        plan=t(f"billing.plan_names.{overview.plan}"),
        limits=Html("\n".join(lines)),
    )
    if saved is not None:
        done = t(
            f"risk_settings.saved.{saved.value}", limit=Html(_limit(t, saved, own_value(overview.own, saved)))
        )
        text = f"{done}\n\n{text}"
    return text


def pick_text(t: Translator, overview: RiskOverview, setting: RiskSetting) -> str:
    plan = t(f"billing.plan_names.{overview.plan}")
    top = ceiling(overview.ceilings, setting)
    allowance = (
        t("risk_settings.allowance_none", plan=plan)
        if top is None
        else t("risk_settings.allowance", plan=plan, ceiling=Html(_limit(t, setting, top)))
    )
    return t(
        f"risk_settings.pick.{setting.value}",
        own=Html(_limit(t, setting, own_value(overview.own, setting))),
        allowance=Html(allowance),
    )


async def cmd_risk(
    message: Message,
    command: CommandObject,
    user: UserProfile,
    i18n: Translator,
    trading: TradingService,
    session: AsyncSession,
    catalogue: Catalogue,
) -> None:
    service = _service(trading, session, catalogue)
    words = (command.args or "").split()
    if not words:
        overview = await service.overview(user)
        await message.answer(card_text(i18n, overview), reply_markup=risk_card_keyboard(i18n))
        return
    if len(words) != 2:
        raise ValidationError("risk_settings.errors.usage")
    setting = setting_of(words[0])
    overview = await service.set(user, setting, parse_value(setting, words[1]))
    await message.answer(card_text(i18n, overview, saved=setting), reply_markup=risk_card_keyboard(i18n))


async def on_card(
    query: CallbackQuery,
    callback_data: RiskCB,
    user: UserProfile,
    i18n: Translator,
    trading: TradingService,
    session: AsyncSession,
    catalogue: Catalogue,
) -> None:
    service = _service(trading, session, catalogue)
    if callback_data.action in ("pick", "set"):
        setting = setting_of(callback_data.setting)
        if callback_data.action == "pick":
            overview = await service.overview(user)
            await show(query, pick_text(i18n, overview, setting), presets_keyboard(i18n, overview, setting))
            return
        overview = await service.set(user, setting, Decimal(callback_data.value))
        await show(query, card_text(i18n, overview, saved=setting), risk_card_keyboard(i18n))
        return
    await show(query, card_text(i18n, await service.overview(user)), risk_card_keyboard(i18n))
