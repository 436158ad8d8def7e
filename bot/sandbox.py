"""The embedded default: the Telegram emulator, the bot connected to it, and the web chat."""

from __future__ import annotations

import sys

import structlog
from pydantic import SecretStr

from bot.runner import start_bot, wait_for_signal
from bot.settings import Settings
from sandbox.telegram import TelegramEmulator

log = structlog.get_logger(__name__)

SANDBOX_BOT_USERNAME = "cryptouniverse_bot"


async def run_sandbox(settings: Settings) -> None:
    emulator = TelegramEmulator()
    await emulator.start(host=settings.sandbox_host, port=settings.sandbox_port)
    token = emulator.add_bot(username=SANDBOX_BOT_USERNAME, first_name="CryptoUniverse")
    settings.bot_token = SecretStr(token)
    settings.telegram_api_server = emulator.base_url
    settings.webhook_url = None
    try:
        running = await start_bot(settings)
    except BaseException:
        await emulator.stop()
        raise
    banner = (
        "\n  CryptoUniverse sandbox is running.\n"
        f"  Open the web chat:  {emulator.base_url}/\n"
        f"  Health:             {running.base_url}/healthz\n"
        "  Press Ctrl+C to stop.\n"
    )
    print(banner, file=sys.stderr, flush=True)
    log.info("sandbox.ready", web_chat=emulator.base_url + "/", health=running.base_url + "/healthz")
    try:
        await wait_for_signal()
    finally:
        await running.stop()
        await emulator.stop()
