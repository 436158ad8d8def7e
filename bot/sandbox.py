"""The embedded default: the Telegram emulator, the bot connected to it, and the web chat."""

from __future__ import annotations

import sys

import structlog
from pydantic import SecretStr

from bot.runner import start_bot, wait_for_signal
from bot.settings import Settings
from sandbox.exchanges import ExchangeEmulator, start_all
from sandbox.telegram import TelegramEmulator

log = structlog.get_logger(__name__)

SANDBOX_BOT_USERNAME = "cryptouniverse_bot"


async def start_exchange_emulators(settings: Settings) -> list[ExchangeEmulator]:
    """Local Binance, Kraken and KuCoin for every exchange the settings do not point elsewhere, so paper
    trading works without the internet."""
    names = [name for name in ("binance", "kraken", "kucoin") if not getattr(settings, f"{name}_api_url")]
    if not names:
        return []
    emulators = await start_all(host=settings.sandbox_host)
    for name, emulator in emulators.items():
        if name in names:
            setattr(settings, f"{name}_api_url", emulator.base_url)
    return list(emulators.values())


async def run_sandbox(settings: Settings) -> None:
    exchanges = await start_exchange_emulators(settings)
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
        for exchange in exchanges:
            await exchange.stop()
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
        for exchange in exchanges:
            await exchange.stop()
