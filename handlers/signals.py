"""/signal SYMBOL [timeframe]: the AI consensus with each vote, its confidence and cost; a Trade button
that opens the normal confirmation card; /models: each voter's track record."""

from __future__ import annotations

import time
from decimal import Decimal

from aiogram import Bot, F, Router
from aiogram.enums import ChatAction
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import format as fmt
from handlers.filters import PRIVATE
from handlers.render import show
from handlers.trading import render_card
from keyboards.menu import MenuCB, back_to_menu
from keyboards.signals import SignalActionCB, SignalCB, signal_keyboard
from keyboards.trading import confirm_keyboard
from services.billing.entitlements import Entitlements, Feature
from services.billing.plans import Catalogue
from services.consensus.aggregate import Progress
from services.consensus.autotrade import TIMEFRAMES as AUTO_TIMEFRAMES
from services.consensus.autotrade import AutoTradeSettings
from services.consensus.orders import signal_order
from services.consensus.service import ConsensusService, SignalResult, VoteResult
from services.errors import ValidationError
from services.i18n import Html, Translator
from services.market.data import TIMEFRAME_MS, MarketDataService
from services.risk.sizing import size_by_risk
from services.trading.service import RiskRefused, TradingService
from services.users import UserProfile

PROGRESS_EVERY = 1.0  # seconds between edits of the progress message (Telegram's per-chat pace)


def build_router() -> Router:
    router = Router(name="signals")
    router.message.filter(PRIVATE)
    router.message.register(cmd_signal, Command("signal"))
    router.message.register(cmd_models, Command("models"))
    router.message.register(cmd_autotrade, Command("autotrade"))
    router.callback_query.register(on_signal_button, SignalCB.filter())
    router.callback_query.register(on_trade_signal, SignalActionCB.filter(F.action == "trade"))
    router.callback_query.register(on_why, SignalActionCB.filter(F.action == "why"))
    router.callback_query.register(on_signals_menu, MenuCB.filter(F.section == "signals"))
    return router


def _args(text: str) -> tuple[str, str | None]:
    parts = text.split()
    if not parts:
        raise ValidationError("consensus.errors.usage")
    timeframe = None
    for part in parts[1:]:
        if part.lower() not in TIMEFRAME_MS:
            raise ValidationError("market.errors.timeframe", timeframe=part, allowed=", ".join(TIMEFRAME_MS))
        timeframe = part.lower()
    return parts[0], timeframe


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _cost(value: Decimal) -> str:
    return "$0" if value == 0 else f"${value:.4f}".rstrip("0")


def _vote_line(t: Translator, vote: VoteResult) -> str:
    name = vote.voter
    if not vote.valid or vote.action is None:
        return t(
            "consensus.vote_abstained",
            voter=name,
            reason=t(f"consensus.abstain.{vote.abstain_reason or 'error'}"),
        )
    cost = t("consensus.cached") if vote.cache_hit else _cost(vote.cost)
    return t(
        "consensus.vote",
        voter=name,
        action=t(f"consensus.action.{vote.action}"),
        probability=_pct(vote.probability),
        weight=f"{vote.weight:.2f}",
        cost=cost if vote.kind == "llm" else t("consensus.free"),
    )


def render_signal(t: Translator, result: SignalResult) -> str:
    votes = "\n".join(_vote_line(t, v) for v in result.votes)
    reasons = ", ".join(t(f"consensus.reason.{r}") for r in result.reasons) or "—"
    levels = ""
    if result.trade is not None:
        levels = t(
            "consensus.levels",
            sl=fmt.price(result.trade.stop_loss) if result.trade.stop_loss else "—",
            tp=fmt.price(result.trade.take_profit) if result.trade.take_profit else "—",
        )
    return t(
        "consensus.card",
        symbol=result.symbol,
        timeframe=result.timeframe,
        horizon=result.horizon,
        price=fmt.price(result.entry_price),
        action=t(f"consensus.action.{result.action}"),
        probability=_pct(result.probability),
        score=f"{result.score:+.2f}",
        valid=result.valid_votes,
        total=len(result.votes),
        agree=sum(1 for v in result.votes if v.valid and v.action == result.action),
        quorum=result.quorum,
        reasons=reasons,
        votes=Html(votes),
        levels=Html(levels),
        cost=_cost(result.total_cost),
        id=result.signal_id,
    )


async def _run_signal(
    bot: Bot,
    chat_id: int,
    symbol: str,
    timeframe: str | None,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    catalogue: Catalogue,
    consensus: ConsensusService,
) -> None:
    decision = await Entitlements(session, catalogue).use(user.id, Feature.AI_SIGNAL)
    await session.commit()  # the quota is counted; nothing is held open while the voters think
    await bot.send_chat_action(chat_id, ChatAction.TYPING)
    progress = await bot.send_message(
        chat_id, i18n("consensus.progress", symbol=symbol.upper(), done=0, total="…")
    )
    last_edit = time.monotonic()

    async def on_progress(step: Progress) -> None:
        nonlocal last_edit
        now = time.monotonic()
        if now - last_edit < PROGRESS_EVERY or step.done == step.total:
            return
        last_edit = now
        await bot.edit_message_text(
            i18n("consensus.progress", symbol=symbol.upper(), done=step.done, total=step.total),
            chat_id=chat_id,
            message_id=progress.message_id,
        )

    try:
        result = await consensus.signal(user.id, symbol, timeframe, plan=decision.plan, progress=on_progress)
    except BaseException:
        await bot.delete_message(chat_id, progress.message_id)
        raise
    await bot.edit_message_text(
        render_signal(i18n, result),
        chat_id=chat_id,
        message_id=progress.message_id,
        reply_markup=signal_keyboard(
            i18n, result.signal_id, result.symbol, result.timeframe, tradable=result.trade is not None
        ),
    )


async def cmd_signal(
    message: Message,
    command: CommandObject,
    bot: Bot,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    catalogue: Catalogue,
    consensus: ConsensusService,
) -> None:
    symbol, timeframe = _args(command.args or "")
    await _run_signal(bot, message.chat.id, symbol, timeframe, user, i18n, session, catalogue, consensus)


async def on_signal_button(
    query: CallbackQuery,
    callback_data: SignalCB,
    bot: Bot,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    catalogue: Catalogue,
    consensus: ConsensusService,
) -> None:
    await query.answer()
    await _run_signal(
        bot,
        query.from_user.id,
        callback_data.symbol,
        callback_data.tf,
        user,
        i18n,
        session,
        catalogue,
        consensus,
    )


async def on_trade_signal(
    query: CallbackQuery,
    callback_data: SignalActionCB,
    bot: Bot,
    user: UserProfile,
    i18n: Translator,
    trading: TradingService,
    session: AsyncSession,
    consensus: ConsensusService,
) -> None:
    """The signal's trade as a normal order card: sized by the risk rules, with the signal's levels,
    confirmed and risk-checked like any order."""
    await session.commit()  # the consensus reads in its own sessions (SQLite: one writer at a time)
    result = await consensus.get_signal(callback_data.signal_id)
    if result.user_id != user.id or result.trade is None:
        await query.answer(i18n("consensus.errors.not_yours"), show_alert=True)
        return
    trade = result.trade
    if trade.side == "buy":
        profile, _ = await trading.active_account(user)
        folio = await trading.portfolio(user)
        limits = await trading.limits_in_force(user.id, profile)
        amount = size_by_risk(folio.equity, trade.entry_price, trade.stop_loss, limits.max_position_pct)
        request = signal_order(trade, amount)
    else:  # on spot a sell signal means leaving the position
        request = signal_order(trade)
    preview = await trading.preview(user, request)
    if not preview.risk.allowed:
        raise RiskRefused(preview.risk)
    confirmation = await trading.request_confirmation(user, preview)
    await query.answer()
    ttl = int(trading.config.confirm_ttl.total_seconds())
    await bot.send_message(
        user.telegram_id,
        render_card(i18n, preview, ttl),
        reply_markup=confirm_keyboard(i18n, confirmation.token),
    )


async def on_why(
    query: CallbackQuery,
    callback_data: SignalActionCB,
    bot: Bot,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    consensus: ConsensusService,
) -> None:
    """Each valid vote's one-line rationale."""
    await session.commit()
    result = await consensus.get_signal(callback_data.signal_id)
    if result.user_id != user.id:
        await query.answer(i18n("consensus.errors.not_yours"), show_alert=True)
        return
    lines = [
        i18n(
            "consensus.why_line",
            voter=v.voter,
            action=i18n(f"consensus.action.{v.action}"),
            rationale=v.rationale,
        )
        for v in result.votes
        if v.valid and v.action is not None and v.rationale
    ]
    await query.answer()
    text = i18n("consensus.why", symbol=result.symbol, id=result.signal_id, lines=Html("\n".join(lines)))
    await bot.send_message(user.telegram_id, text if lines else i18n("consensus.why_none"))


async def cmd_models(
    message: Message, i18n: Translator, session: AsyncSession, consensus: ConsensusService
) -> None:
    await session.commit()  # the consensus reads in its own sessions (SQLite: one writer at a time)
    records = await consensus.records()
    lines = [
        i18n(
            "consensus.model_line",
            voter=r.voter,
            kind=i18n(f"consensus.kind.{r.kind}"),
            signals=r.signals,
            resolved=r.resolved,
            hit_rate=_pct(r.hit_rate),
            brier=f"{r.brier:.3f}" if r.brier is not None else "—",
            cost=_cost(r.avg_cost) if r.avg_cost is not None else "—",
            weight=f"{r.prior_weight:.2f}" if r.prior_weight is not None else "—",
        )
        for r in records
    ]
    await message.answer(i18n("consensus.models", lines=Html("\n".join(lines))))


async def on_signals_menu(query: CallbackQuery, i18n: Translator) -> None:
    await show(query, i18n("consensus.menu"), back_to_menu(i18n))


def _autotrade_args(words: list[str]) -> tuple[list[str], str, int]:
    """`/autotrade BTC ETH 75 4h`: symbols, an optional confidence (%) and an optional timeframe."""
    symbols: list[str] = []
    timeframe, confidence = "1h", 70
    for word in words:
        lowered = word.lower().rstrip("%")
        if lowered in AUTO_TIMEFRAMES:
            timeframe = lowered
        elif lowered.isdigit():
            confidence = int(lowered)
        else:
            symbols.append(word)
    return symbols, timeframe, confidence


async def cmd_autotrade(
    message: Message,
    command: CommandObject,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    trading: TradingService,
    market: MarketDataService,
) -> None:
    settings = AutoTradeSettings(session, trading, market)
    words = (command.args or "").split()
    if words and words[0].lower() in ("off", "stop", "disable"):
        stopped = await settings.disable(user.id)
        await message.answer(i18n("autotrade.disabled" if stopped else "autotrade.not_active"))
        return
    if not words:
        current = await settings.get(user.id)
        if current is None or not current.active:
            await message.answer(i18n("autotrade.usage"))
            return
        await message.answer(
            i18n(
                "autotrade.status",
                symbols=", ".join(current.symbols),
                timeframe=current.timeframe,
                confidence=current.min_confidence,
            )
        )
        return
    symbols, timeframe, confidence = _autotrade_args(words)
    view = await settings.enable(user, symbols, timeframe, confidence)
    await message.answer(
        i18n(
            "autotrade.enabled",
            symbols=", ".join(view.symbols),
            timeframe=view.timeframe,
            confidence=view.min_confidence,
        )
    )
