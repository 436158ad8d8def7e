"""The Telegram side of copy trading: posting signal cards (with their Copy button) to leaders' channels,
and the application's fan-out queue."""

from __future__ import annotations

import structlog
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.factory import ServiceFactory
from bot.sender import Sender
from bot.settings import Settings
from handlers.copytrading import render_card
from keyboards.copytrading import copy_button
from services.copytrading.mirror import CopyConfig, MirrorEngine
from services.copytrading.publishing import SignalCard
from services.copytrading.queue import FanOutQueue
from services.copytrading.relay import CopyRelay
from services.i18n import I18n
from services.notify import Notifier

log = structlog.get_logger(__name__)


class TelegramPublisher:
    """Posts cards through the paced `Sender` (Telegram allows about 20 messages a minute in a group)."""

    def __init__(self, bot: Bot, i18n: I18n, sender: Sender | None, bot_username: str) -> None:
        self.bot = bot
        self.i18n = i18n
        self.sender = sender
        self.bot_username = bot_username

    async def publish(self, chat_id: int, card: SignalCard, locale: str | None) -> bool:
        t = self.i18n.translator(locale)
        text = render_card(t, card)
        markup = copy_button(t, f"https://t.me/{self.bot_username}?start={card.start_payload}")
        if self.sender is not None:
            delivery = await self.sender.send_text(chat_id, text, reply_markup=markup)
            if not delivery.ok:
                log.info("copy.card_not_posted", chat_id=chat_id, error=delivery.error)
            return delivery.ok
        try:
            await self.bot.send_message(chat_id, text, reply_markup=markup)
        except TelegramAPIError as exc:
            log.info("copy.card_not_posted", chat_id=chat_id, error=type(exc).__name__)
            return False
        return True


def build_copy_relay(
    *,
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
    services: ServiceFactory,
    notifier: Notifier,
    bot: Bot,
    i18n: I18n,
    sender: Sender | None,
    bot_username: str,
) -> CopyRelay:
    mirror = MirrorEngine(
        session_factory,
        services.trading,
        CopyConfig(
            fee_rate=settings.copy_trading.fee_rate,
            leader_share=settings.copy_trading.leader_share,
            per_exchange_concurrency=settings.copy_trading.per_exchange_concurrency,
            paper_concurrency=settings.copy_trading.paper_concurrency,
            default_exchange=settings.default_exchange,
            open_trade_slippage_pct=settings.copy_trading.open_trade_slippage_pct,
            open_trade_offer_seconds=settings.copy_trading.open_trade_offer_seconds,
        ),
    )
    publisher = TelegramPublisher(bot, i18n, sender, bot_username)
    return CopyRelay(session_factory, mirror, services.entitlements, notifier, publisher)


def build_copy_queue(relay: CopyRelay, *, workers: int = 4) -> FanOutQueue:
    """The fan-out workers of this process (started and stopped with the application): `workers` leader
    actions carried out at once, their copies bounded per exchange by the relay's `MirrorEngine`."""
    return FanOutQueue(relay, workers=workers)
