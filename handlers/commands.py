"""The bot's command list, shown by Telegram in each user's language."""

from __future__ import annotations

from aiogram.types import BotCommand

from services.i18n import Translator

COMMANDS = (
    "start",
    "menu",
    "buy",
    "sell",
    "balance",
    "positions",
    "pnl",
    "orders",
    "close",
    "sl",
    "tp",
    "cancel",
    "panic",
    "risk",
    "analyze",
    "signal",
    "models",
    "autotrade",
    "alert",
    "alerts",
    "scan",
    "credits",
    "plans",
    "plan",
    "buy_credits",
    "leaders",
    "follow",
    "following",
    "leader",
    "earnings",
    "connect",
    "accounts",
    "settings",
    "language",
    "help",
)


def bot_commands(t: Translator) -> list[BotCommand]:
    return [BotCommand(command=name, description=t(f"commands.{name}")) for name in COMMANDS]
