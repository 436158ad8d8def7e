"""/buy, /sell with a confirmation card; /balance, /positions, /pnl; the Trade and Portfolio menus."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import format as fmt
from handlers.errors import describe, remedy
from handlers.filters import PRIVATE
from handlers.render import confirmation_gone, plain, show
from keyboards.menu import MenuCB
from keyboards.trading import OrderCB, ViewCB, confirm_keyboard, portfolio_keyboard, trade_menu_keyboard
from services.billing.entitlements import Entitlements
from services.billing.plans import Catalogue
from services.copytrading.leaders import LeaderService
from services.copytrading.relay import CopyRelay, RelayReport
from services.errors import AppError
from services.exchanges.types import exchange_name
from services.i18n import Html, Translator
from services.trading.parser import parse_trade_command
from services.trading.service import (
    ConfirmationExpired,
    Execution,
    OrderPreview,
    Portfolio,
    RiskRefused,
    TradingService,
)
from services.users import UserProfile


def build_router() -> Router:
    router = Router(name="trading")
    router.message.filter(PRIVATE)
    router.message.register(cmd_order, Command("buy", "sell"))
    router.callback_query.register(on_confirm, OrderCB.filter(F.action == "confirm"))
    router.callback_query.register(on_cancel, OrderCB.filter(F.action == "cancel"))
    router.message.register(cmd_balance, Command("balance"))
    router.message.register(cmd_positions, Command("positions"))
    router.message.register(cmd_pnl, Command("pnl"))
    router.callback_query.register(on_view, ViewCB.filter())
    router.callback_query.register(on_trade_menu, MenuCB.filter(F.section == "trade"))
    router.callback_query.register(on_portfolio_menu, MenuCB.filter(F.section == "portfolio"))
    return router


# ------------------------------------------------------------------------------------------- orders


async def cmd_order(
    message: Message, command: CommandObject, user: UserProfile, i18n: Translator, trading: TradingService
) -> None:
    request = parse_trade_command(command.command.lower(), command.args or "")
    preview = await trading.preview(user, request)
    if not preview.risk.allowed:
        raise RiskRefused(preview.risk)
    confirmation = await trading.request_confirmation(user, preview)
    ttl = int(trading.config.confirm_ttl.total_seconds())
    await message.answer(
        render_card(i18n, preview, ttl), reply_markup=confirm_keyboard(i18n, confirmation.token)
    )


def render_card(t: Translator, preview: OrderPreview, ttl: int) -> str:
    protections = ""
    if preview.stop_loss is not None:
        protections += (
            t("trade.card.stop_loss", price=fmt.price(preview.stop_loss), quote=preview.quote) + "\n"
        )
    if preview.take_profit is not None:
        protections += (
            t("trade.card.take_profit", price=fmt.price(preview.take_profit), quote=preview.quote) + "\n"
        )
    return t(
        "trade.card.limit_text" if preview.order_type == "limit" else "trade.card.text",
        side=t(f"trade.side.{preview.side}"),
        symbol=preview.symbol,
        mode=t(f"trade.mode.{preview.mode}"),
        exchange=exchange_name(preview.exchange),
        amount=fmt.amount(preview.amount),
        base=preview.base,
        price=fmt.price(preview.price),
        quote=preview.quote,
        total=fmt.money(preview.total),
        fee=fmt.money(preview.fee),
        fee_pct=fmt.amount(preview.fee_rate * 100, 4),
        protections=Html(protections),
        ttl=ttl,
    )


def protection_line(t: Translator, code: str | None) -> str:
    """How a live position's stop-loss / take-profit is kept (native order or watched), as a new line."""
    return "" if code is None else "\n" + t(f"trade.protection.{code}")


def render_execution(t: Translator, done: Execution) -> str:
    base = done.symbol.split("/")[0]
    if done.status == "open":
        return t(
            f"trade.placed.{done.side}",
            amount=fmt.amount(done.amount),
            base=base,
            price=fmt.price(done.average_price),
            quote=done.quote,
            reserved=fmt.money(done.cost + done.fee) if done.side == "buy" else fmt.amount(done.amount),
            unit=done.quote if done.side == "buy" else base,
            id=done.order_id,
        )
    if done.side == "buy":
        return t(
            "trade.filled.buy",
            amount=fmt.amount(done.amount),
            base=base,
            price=fmt.price(done.average_price),
            quote=done.quote,
            cost=fmt.money(done.cost + done.fee),
            fee=fmt.money(done.fee),
            position=fmt.amount(done.position_amount),
            entry=fmt.price(done.position_entry),
        ) + protection_line(t, done.protection)
    return t(
        "trade.filled.sell",
        amount=fmt.amount(done.amount),
        base=base,
        price=fmt.price(done.average_price),
        quote=done.quote,
        proceeds=fmt.money(done.cost - done.fee),
        fee=fmt.money(done.fee),
        pnl=fmt.signed(done.realized_pnl) if done.realized_pnl is not None else "—",
    )


def render_copy_report(t: Translator, report: RelayReport) -> str:
    """A leader's order carried to their followers and channels."""
    return t(
        "copy.leader.copied",
        done=report.counts.get("done", 0),
        failed=report.counts.get("failed", 0) + report.counts.get("paused", 0),
        skipped=report.counts.get("skipped", 0),
        published=report.published,
    )


async def on_confirm(
    query: CallbackQuery,
    callback_data: OrderCB,
    user: UserProfile,
    i18n: Translator,
    trading: TradingService,
    session: AsyncSession,
    catalogue: Catalogue,
    copy_relay: CopyRelay | None = None,
) -> None:
    leader = await LeaderService(session, Entitlements(session, catalogue)).get(user.id)
    leading = copy_relay is not None and leader is not None and leader.active
    equity_before = (await trading.portfolio(user)).equity if leading else None
    try:
        done = await trading.confirm(user, callback_data.token)
    except ConfirmationExpired:
        await confirmation_gone(query, i18n("trade.errors.confirmation_expired"))
        return
    except AppError as exc:
        # the confirmation is used up: the card itself keeps the outcome (an alert would vanish)
        await show(query, describe(i18n, exc), remedy(i18n, exc))
        return
    await show(query, render_execution(i18n, done), None)
    if leading and copy_relay is not None:
        await session.commit()  # the relay records in sessions of its own
        # recorded now; copied by the fan-out workers, whose report reaches the leader when they finish
        report = await copy_relay.after_execution(user.id, done, equity_before=equity_before)
        if report is not None and isinstance(query.message, Message):  # no workers: copied inline
            await query.message.answer(render_copy_report(i18n, report))


async def on_cancel(
    query: CallbackQuery, callback_data: OrderCB, user: UserProfile, i18n: Translator, trading: TradingService
) -> None:
    await cancel_card(query, callback_data.token, user, i18n, trading)


async def cancel_card(
    query: CallbackQuery, token: str, user: UserProfile, i18n: Translator, trading: TradingService
) -> None:
    """Cancel any confirmation card (order, close, kill switch): nothing runs."""
    if await trading.cancel_confirmation(user, token):
        await show(query, i18n("trade.cancelled"), None)
        return
    await query.answer(plain(i18n("trade.errors.confirmation_expired")), show_alert=True)


# ------------------------------------------------------------------------------------------- views


def render_view(t: Translator, view: str, folio: Portfolio) -> str:
    mode = t(f"trade.mode.{folio.mode}")
    if view == "balance":
        lines = [
            t(
                "trade.balance.line",
                asset=b.asset,
                amount=fmt.amount(b.free + b.locked),
                value=fmt.money(b.value),
                quote=folio.quote,
            )
            for b in folio.balances
        ] or [t("trade.balance.empty")]
        return t(
            "trade.balance.text",
            mode=mode,
            lines=Html("\n".join(lines)),
            equity=fmt.money(folio.equity),
            quote=folio.quote,
        )
    if view == "positions":
        if not folio.positions:
            return t("trade.positions.empty", mode=mode)
        blocks = [
            t(
                "trade.positions.line",
                symbol=p.symbol,
                amount=fmt.amount(p.amount),
                base=p.base,
                entry=fmt.price(p.average_entry),
                price=fmt.price(p.price),
                pnl=fmt.signed(p.unrealized),
                pct=fmt.pct(p.unrealized_pct),
                quote=folio.quote,
                sl=fmt.price(p.stop_loss) if p.stop_loss else "—",
                tp=fmt.price(p.take_profit) if p.take_profit else "—",
            )
            for p in folio.positions
        ]
        return t("trade.positions.text", mode=mode, lines=Html("\n\n".join(blocks)))
    return t(
        "trade.pnl.text",
        mode=mode,
        quote=folio.quote,
        today=fmt.signed(folio.realized_today),
        total=fmt.signed(folio.realized_total),
        unrealized=fmt.signed(folio.unrealized),
        equity=fmt.money(folio.equity),
        start=fmt.money(folio.starting_balance),
    )


async def _send_view(
    message: Message, view: str, user: UserProfile, i18n: Translator, trading: TradingService
) -> None:
    folio = await trading.portfolio(user)
    await message.answer(render_view(i18n, view, folio), reply_markup=portfolio_keyboard(i18n, view))


async def cmd_balance(message: Message, user: UserProfile, i18n: Translator, trading: TradingService) -> None:
    await _send_view(message, "balance", user, i18n, trading)


async def cmd_positions(
    message: Message, user: UserProfile, i18n: Translator, trading: TradingService
) -> None:
    await _send_view(message, "positions", user, i18n, trading)


async def cmd_pnl(message: Message, user: UserProfile, i18n: Translator, trading: TradingService) -> None:
    await _send_view(message, "pnl", user, i18n, trading)


async def on_view(
    query: CallbackQuery, callback_data: ViewCB, user: UserProfile, i18n: Translator, trading: TradingService
) -> None:
    view = callback_data.view if callback_data.view in ("balance", "positions", "pnl") else "balance"
    folio = await trading.portfolio(user)
    await show(query, render_view(i18n, view, folio), portfolio_keyboard(i18n, view))


async def on_trade_menu(query: CallbackQuery, i18n: Translator) -> None:
    await show(query, i18n("trade.help"), trade_menu_keyboard(i18n))


async def on_portfolio_menu(
    query: CallbackQuery, user: UserProfile, i18n: Translator, trading: TradingService
) -> None:
    folio = await trading.portfolio(user)
    await show(query, render_view(i18n, "positions", folio), portfolio_keyboard(i18n, "positions"))
