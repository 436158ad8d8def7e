"""/alert, /alerts (list and delete with buttons) and /scan (top list, subscribe, unsubscribe)."""

from __future__ import annotations

import contextlib

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import format as fmt
from handlers.filters import PRIVATE
from handlers.render import show
from keyboards.alerts import AlertCB, ScanCB, alerts_keyboard, scan_keyboard
from services.errors import NotFoundError, ValidationError
from services.i18n import Html, Translator
from services.market.alerts import FALL, RISE, AlertService, AlertView, parse_alert
from services.market.data import MarketDataService
from services.market.scanner import Opportunity, Scanner
from services.users import UserProfile


def build_router() -> Router:
    router = Router(name="alerts")
    router.message.filter(PRIVATE)
    router.message.register(cmd_alert, Command("alert"))
    router.message.register(cmd_alerts, Command("alerts"))
    router.message.register(cmd_scan, Command("scan"))
    router.callback_query.register(on_delete_alert, AlertCB.filter(F.action == "delete"))
    router.callback_query.register(on_scan_button, ScanCB.filter())
    return router


def describe_alert(t: Translator, alert: AlertView) -> str:
    if alert.kind in (RISE, FALL):
        value = f"{'+' if alert.kind == RISE else '-'}{fmt.amount(alert.threshold, 2)}%"
    else:
        value = fmt.price(alert.threshold)
    return t(f"alerts.kind.{alert.kind}", symbol=alert.symbol, value=value)


async def cmd_alert(
    message: Message,
    command: CommandObject,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    market: MarketDataService,
) -> None:
    request = parse_alert(command.args or "")
    alert, ticker = await AlertService(session, market).create(user.id, request)
    await message.answer(
        i18n("alerts.created", what=describe_alert(i18n, alert), price=fmt.price(ticker.last), id=alert.id)
    )


async def _alerts_text(t: Translator, alerts: list[AlertView]) -> str:
    if not alerts:
        return t("alerts.empty")
    lines = "\n".join(f"#{a.id} · {describe_alert(t, a)}" for a in alerts)
    return t("alerts.list", lines=Html(lines), count=len(alerts))


async def cmd_alerts(
    message: Message, user: UserProfile, i18n: Translator, session: AsyncSession, market: MarketDataService
) -> None:
    alerts = await AlertService(session, market).active(user.id)
    await message.answer(
        await _alerts_text(i18n, alerts), reply_markup=alerts_keyboard(i18n, [a.id for a in alerts])
    )


async def on_delete_alert(
    query: CallbackQuery,
    callback_data: AlertCB,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    market: MarketDataService,
) -> None:
    service = AlertService(session, market)
    with contextlib.suppress(NotFoundError):  # deleted or fired meanwhile: the refreshed list says so
        await service.delete(user.id, callback_data.id)
    alerts = await service.active(user.id)
    await show(query, await _alerts_text(i18n, alerts), alerts_keyboard(i18n, [a.id for a in alerts]))


# ----------------------------------------------------------------------------------------- scanner


def describe_opportunity(t: Translator, opp: Opportunity) -> str:
    events = ", ".join(t(f"market.events.{key}") for key in opp.events[:3]) or "—"
    return t(
        "scan.line",
        symbol=opp.symbol,
        timeframe=opp.timeframe,
        score=opp.score,
        direction=t(f"market.summary.direction.{opp.direction}"),
        price=fmt.price(opp.price),
        events=events,
    )


async def _scan_text(
    t: Translator, scanner: Scanner, session: AsyncSession, user: UserProfile
) -> tuple[str, bool]:
    top = await scanner.top(session)
    sub = await scanner.subscription(session, user.id)
    subscribed = sub is not None and sub.active
    status = (
        t(
            "scan.subscribed",
            score=sub.min_score,
            timeframes=", ".join(sub.timeframes) or t("scan.all"),
            symbols=", ".join(sub.symbols) or t("scan.all"),
        )
        if sub is not None and sub.active
        else t("scan.not_subscribed")
    )
    if not top:
        return t("scan.empty", status=status, timeframes=", ".join(scanner.config.timeframes)), subscribed
    lines = "\n".join(describe_opportunity(t, o) for o in top)
    return t("scan.top", lines=Html(lines), status=status), subscribed


async def cmd_scan(
    message: Message,
    command: CommandObject,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    scanner: Scanner,
) -> None:
    words = (command.args or "").split()
    if words and words[0].lower() in ("subscribe", "sub", "on"):
        symbols, timeframes, score = _filters(words[1:], scanner)
        sub = await scanner.subscribe(
            session, user.id, symbols=symbols, timeframes=timeframes, min_score=score
        )
        await message.answer(
            i18n(
                "scan.subscribed_now",
                score=sub.min_score,
                timeframes=", ".join(sub.timeframes) or i18n("scan.all"),
                symbols=", ".join(sub.symbols) or i18n("scan.all"),
            )
        )
        return
    if words and words[0].lower() in ("unsubscribe", "unsub", "off", "stop"):
        done = await scanner.unsubscribe(session, user.id)
        await message.answer(i18n("scan.unsubscribed" if done else "scan.not_subscribed"))
        return
    if words:
        raise ValidationError("scan.errors.usage")
    text, subscribed = await _scan_text(i18n, scanner, session, user)
    await message.answer(text, reply_markup=scan_keyboard(i18n, subscribed))


def _looks_like_timeframe(word: str) -> bool:
    return word[-1:] in ("m", "h", "d") and word[:-1].isdigit()


def _filters(words: list[str], scanner: Scanner) -> tuple[list[str], list[str], int | None]:
    """`/scan subscribe 70 1h 4h BTC ETH`: a number is the minimum score, timeframes and symbols filter."""
    symbols: list[str] = []
    timeframes: list[str] = []
    score: int | None = None
    for word in words:
        lowered = word.lower().strip(",")
        if lowered.isdigit():
            score = int(lowered)
        elif lowered in scanner.config.timeframes or _looks_like_timeframe(lowered):
            timeframes.append(lowered)
        elif lowered:
            symbols.append(word.strip(","))
    return symbols, timeframes, score


async def on_scan_button(
    query: CallbackQuery,
    callback_data: ScanCB,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    scanner: Scanner,
) -> None:
    if callback_data.action == "subscribe":
        await scanner.subscribe(session, user.id)
    elif callback_data.action == "unsubscribe":
        await scanner.unsubscribe(session, user.id)
    text, subscribed = await _scan_text(i18n, scanner, session, user)
    await show(query, text, scan_keyboard(i18n, subscribed))
