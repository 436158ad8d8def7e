"""/analyze SYMBOL [timeframe]: a chart with indicators and a short summary, and the market menu."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.enums import ChatAction
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, CallbackQuery, Message

from handlers import format as fmt
from handlers.filters import PRIVATE
from handlers.render import show
from keyboards.market import AnalyzeCB, market_menu, report_keyboard
from keyboards.menu import MenuCB
from services.errors import ValidationError
from services.i18n import Html, Translator
from services.market.data import TIMEFRAME_MS
from services.market.levels import Level
from services.market.report import Report, ReportService


def build_router() -> Router:
    router = Router(name="market")
    router.message.filter(PRIVATE)
    router.message.register(cmd_analyze, Command("analyze", "chart"))
    router.callback_query.register(on_analyze_button, AnalyzeCB.filter())
    router.callback_query.register(on_market_menu, MenuCB.filter(F.section == "market"))
    return router


def _args(text: str) -> tuple[str, str | None]:
    parts = text.split()
    if not parts:
        raise ValidationError("market.errors.usage")
    symbol = parts[0]
    timeframe = None
    for part in parts[1:]:
        if part.lower() in TIMEFRAME_MS:
            timeframe = part.lower()
        else:
            raise ValidationError("market.errors.timeframe", timeframe=part, allowed=", ".join(TIMEFRAME_MS))
    return symbol, timeframe


def _level(t: Translator, level: Level | None) -> str:
    if level is None:
        return "—"
    return t(
        "market.summary.level",
        price=fmt.price_float(level.price),
        pct=f"{level.distance_pct:+.1f}",
        touches=level.touches,
    )


def render_summary(t: Translator, report: Report) -> str:
    summary = report.analysis.summary
    score = report.analysis.score
    events = [t(f"market.events.{e.key}") for e in report.analysis.events[:4]]
    return t(
        "market.summary.text",
        symbol=report.symbol,
        timeframe=report.timeframe,
        exchange=report.series.exchange.capitalize(),
        price=fmt.price_float(summary.close) if summary.close is not None else "—",
        trend=t(f"market.summary.trend.{summary.trend}"),
        strength=t(f"market.summary.strength.{summary.trend_strength}"),
        momentum=t(f"market.summary.momentum.{summary.momentum}"),
        rsi=f"{summary.rsi:.0f}" if summary.rsi is not None else "—",
        macd=t(f"market.summary.macd.{summary.macd}"),
        volatility=t(f"market.summary.volatility.{summary.volatility}"),
        atr=f"{summary.atr_pct:.2f}" if summary.atr_pct is not None else "—",
        support=_level(t, summary.support),
        resistance=_level(t, summary.resistance),
        score=f"{score.value:.0f}",
        direction=t(f"market.summary.direction.{score.direction}"),
        events=Html("\n".join(f"• {e}" for e in events)) if events else t("market.summary.no_events"),
    )


async def _send_report(
    bot: Bot, chat_id: int, symbol: str, timeframe: str | None, i18n: Translator, reports: ReportService
) -> None:
    progress = await bot.send_message(
        chat_id, i18n("market.progress", symbol=symbol.upper(), timeframe=timeframe or "1h")
    )
    await bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO)
    try:
        report = await reports.report(symbol, timeframe)
    except BaseException:
        await bot.delete_message(chat_id, progress.message_id)
        raise
    name = f"{report.symbol.replace('/', '')}-{report.timeframe}.png"
    await bot.send_photo(
        chat_id,
        BufferedInputFile(report.chart_png, filename=name),
        caption=render_summary(i18n, report),
        reply_markup=report_keyboard(i18n, report.symbol, report.timeframe),
    )
    await bot.delete_message(chat_id, progress.message_id)


async def cmd_analyze(
    message: Message, command: CommandObject, bot: Bot, i18n: Translator, reports: ReportService
) -> None:
    symbol, timeframe = _args(command.args or "")
    await _send_report(bot, message.chat.id, symbol, timeframe, i18n, reports)


async def on_analyze_button(
    query: CallbackQuery, callback_data: AnalyzeCB, bot: Bot, i18n: Translator, reports: ReportService
) -> None:
    await query.answer()
    await _send_report(bot, query.from_user.id, callback_data.symbol, callback_data.tf, i18n, reports)


async def on_market_menu(query: CallbackQuery, i18n: Translator) -> None:
    await show(query, i18n("market.menu.text"), market_menu(i18n))
