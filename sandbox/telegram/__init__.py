"""Telegram Bot API emulator: a local aiohttp server the real aiogram stack talks to (see README.md)."""

from .server import TelegramEmulator

__all__ = ["TelegramEmulator"]
