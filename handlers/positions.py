"""/close, /panic (confirmed), /sl, /tp and /orders."""

from __future__ import annotations

from decimal import Decimal

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import format as fmt
from handlers.filters import PRIVATE
from handlers.render import confirmation_gone, plain, show
from handlers.trading import cancel_card, protection_line, render_card, render_copy_report
from keyboards.trading import CloseCB, close_keyboard, confirm_keyboard
from services.copytrading.relay import CopyRelay
from services.i18n import Html, Translator
from services.trading.parser import (
    AmountUnit,
    RequestKind,
    Side,
    market_order,
    parse_trade_command,
)
from services.trading.positions import ClosePreview, CloseResult, PositionService
from services.trading.service import ConfirmationExpired, RiskRefused, TradingService
from services.users import UserProfile


def build_router() -> Router:
    router = Router(name="positions")
    router.message.filter(PRIVATE)
    router.message.register(cmd_close, Command("close"))
    router.message.register(cmd_panic, Command("panic"))
    router.message.register(cmd_protect, Command("sl", "tp"))
    router.message.register(cmd_orders, Command("orders"))
    router.message.register(cmd_cancel, Command("cancel"))
    router.callback_query.register(on_close_confirm, CloseCB.filter(F.action == "confirm"))
    router.callback_query.register(on_close_cancel, CloseCB.filter(F.action == "cancel"))
    return router


def _lines(t: Translator, preview: ClosePreview) -> str:
    return "\n".join(
        t(
            "trade.close.line",
            symbol=line.symbol,
            amount=fmt.amount(line.amount),
            price=fmt.price(line.price),
            proceeds=fmt.money(line.proceeds),
            quote=preview.quote,
            pnl=fmt.signed(line.pnl),
        )
        for line in preview.lines
    )


async def cmd_close(
    message: Message, command: CommandObject, user: UserProfile, i18n: Translator, trading: TradingService
) -> None:
    request = parse_trade_command("close", command.args or "")
    assert request.kind is RequestKind.CLOSE and request.target is not None
    _, account = await trading.active_account(user)
    if not account.is_paper and request.target.upper() != "ALL":
        await _close_live(message, request.target, user, i18n, trading)
        return
    preview = await PositionService(trading).preview_close(user, request.target)
    what = i18n("trade.close.all") if request.target.upper() == "ALL" else request.target
    text = i18n(
        "trade.close.card",
        what=what,
        mode=i18n(f"trade.mode.{preview.mode}"),
        lines=Html(_lines(i18n, preview)),
        proceeds=fmt.money(sum((line.proceeds for line in preview.lines), start=Decimal(0))),
        quote=preview.quote,
        ttl=int(trading.config.confirm_ttl.total_seconds()),
    )
    await message.answer(text, reply_markup=close_keyboard(i18n, preview.token))


async def _close_live(
    message: Message, symbol: str, user: UserProfile, i18n: Translator, trading: TradingService
) -> None:
    """On a live account, closing one position is a confirmed market sell of exactly its amount."""
    position = await trading.position(user, symbol)
    order = market_order(position.symbol, Side.SELL, position.amount, AmountUnit.BASE)
    preview = await trading.preview(user, order)
    if not preview.risk.allowed:
        raise RiskRefused(preview.risk)
    confirmation = await trading.request_confirmation(user, preview)
    ttl = int(trading.config.confirm_ttl.total_seconds())
    await message.answer(
        render_card(i18n, preview, ttl), reply_markup=confirm_keyboard(i18n, confirmation.token)
    )


async def cmd_panic(message: Message, user: UserProfile, i18n: Translator, trading: TradingService) -> None:
    preview = await PositionService(trading).preview_close(user, "ALL", kind="panic")
    lines = _lines(i18n, preview) if preview.lines else i18n("trade.panic.none")
    text = i18n(
        "trade.panic.card",
        mode=i18n(f"trade.mode.{preview.mode}"),
        lines=Html(lines),
        orders=preview.open_orders,
        ttl=int(trading.config.confirm_ttl.total_seconds()),
    )
    await message.answer(text, reply_markup=close_keyboard(i18n, preview.token))


def render_close(t: Translator, result: CloseResult) -> str:
    lines = [
        t(
            "trade.close.done_line",
            symbol=e.symbol,
            amount=fmt.amount(e.amount),
            price=fmt.price(e.average_price),
            pnl=fmt.signed(e.realized_pnl) if e.realized_pnl is not None else "—",
            quote=e.quote,
        )
        for e in result.executions
    ] + [
        t("trade.close.failed_line", symbol=symbol) + " " + plain(t(key), 120)
        for symbol, key in result.failed
    ]
    if result.kind == "panic":
        until = result.paused_until.strftime("%Y-%m-%d %H:%M") if result.paused_until else "—"
        return t(
            "trade.panic.done",
            count=len(result.executions),
            orders=len(result.cancelled),
            until=until,
            lines=Html("\n".join(lines)),
        )
    return t("trade.close.done", lines=Html("\n".join(lines)))


async def on_close_confirm(
    query: CallbackQuery, callback_data: CloseCB, user: UserProfile, i18n: Translator, trading: TradingService
) -> None:
    try:
        result = await PositionService(trading).confirm_close(user, callback_data.token)
    except ConfirmationExpired:
        await confirmation_gone(query, i18n("trade.errors.confirmation_expired"))
        return
    await show(query, render_close(i18n, result), None)


async def on_close_cancel(
    query: CallbackQuery, callback_data: CloseCB, user: UserProfile, i18n: Translator, trading: TradingService
) -> None:
    await cancel_card(query, callback_data.token, user, i18n, trading)


async def cmd_protect(
    message: Message,
    command: CommandObject,
    user: UserProfile,
    i18n: Translator,
    trading: TradingService,
    session: AsyncSession,
    copy_relay: CopyRelay | None = None,
) -> None:
    kind = command.command.lower()
    request = parse_trade_command(kind, command.args or "")
    assert request.symbol is not None
    price = request.stop_loss if kind == "sl" else request.take_profit
    position, now, protection = await PositionService(trading).set_protection(
        user, request.symbol, kind, price
    )
    how = protection_line(i18n, protection.code)
    if price is None:
        await message.answer(i18n(f"trade.protect.cleared_{kind}", symbol=position.symbol) + how)
        return
    await message.answer(
        i18n(f"trade.protect.set_{kind}", symbol=position.symbol, price=fmt.price(price), now=fmt.price(now))
        + how
    )
    if copy_relay is not None and await copy_relay.is_leader(user.id):
        # followers' copies of this position get the same protection; channels get the update
        await session.commit()  # the relay works in sessions of its own
        ref = f"{kind}:{position.id}:{price}"
        report = await copy_relay.after_protection(user.id, position.symbol, kind, price, ref=ref)
        if report is not None:
            await message.answer(render_copy_report(i18n, report))


async def cmd_orders(message: Message, user: UserProfile, i18n: Translator, trading: TradingService) -> None:
    service = PositionService(trading)
    orders = await service.orders(user)
    _, account = await trading.active_account(user)
    mode = i18n("trade.mode.paper" if account.is_paper else "trade.mode.live")
    if not orders:
        await message.answer(i18n("trade.orders.empty"))
        return
    lines = "\n".join(
        i18n(
            "trade.orders.line",
            id=o.id,
            side=i18n(f"trade.side.{o.side}"),
            amount=fmt.amount(o.amount),
            symbol=o.symbol,
            price=fmt.price(o.average_price) if o.average_price else "—",
            status=i18n(
                "trade.partial_fill.status",
                status=o.status,
                filled=fmt.amount(o.filled),
                amount=fmt.amount(o.amount),
            )
            if o.filled > 0
            else o.status,
            reason=o.reason,
        )
        for o in orders
    )
    await message.answer(i18n("trade.orders.text", mode=mode, lines=Html(lines)))


async def cmd_cancel(
    message: Message, command: CommandObject, user: UserProfile, i18n: Translator, trading: TradingService
) -> None:
    request = parse_trade_command("cancel", command.args or "")
    assert request.target is not None
    cancelled = await PositionService(trading).cancel_orders(user, request.target)
    if not cancelled:
        await message.answer(i18n("trade.cancel.none"))
        return
    await message.answer(i18n("trade.cancel.done", ids=", ".join(f"#{i}" for i in cancelled)))
