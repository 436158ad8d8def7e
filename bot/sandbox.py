"""The embedded default: the Telegram emulator, the bot connected to it, the web chat, and local peers for
everything across the network: exchange emulators, a Stripe API and an LLM server (OpenAI, Claude, Gemini
protocols), so trading, payments and AI signals all work offline."""

from __future__ import annotations

import secrets
import sys

import structlog
from pydantic import SecretStr

from bot import heap
from bot.runner import start_bot, wait_for_signal
from bot.settings import Settings
from sandbox.exchanges import ExchangeEmulator, start_all
from sandbox.llm import LLMServer
from sandbox.stripe import StripeEmulator
from sandbox.telegram import TelegramEmulator
from services.consensus.config import LLMVoterConfig

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


SANDBOX_MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "anthropic/claude-haiku-4-5",
    "gemini": "gemini/gemini-2.5-flash",
}


async def start_llm_server(settings: Settings) -> LLMServer | None:
    """Local OpenAI, Claude and Gemini endpoints as LLM voters, unless voters or provider keys are set."""
    if (
        settings.llm_voters
        or settings.openai_api_key
        or settings.anthropic_api_key
        or settings.gemini_api_key
    ):
        return None
    server = LLMServer()
    await server.start(host=settings.sandbox_host)
    settings.llm_voters = [
        LLMVoterConfig(
            model=model,
            api_base=server.client_kwargs(provider)["api_base"],
            api_key=SecretStr(server.client_kwargs(provider)["api_key"]),
        )
        for provider, model in SANDBOX_MODELS.items()
    ]
    return server


async def start_stripe(settings: Settings) -> StripeEmulator | None:
    """A local Stripe API for card payments, unless real Stripe keys are set."""
    if settings.stripe_secret_key is not None:
        return None
    stripe_api = StripeEmulator()
    await stripe_api.start(host=settings.sandbox_host)
    settings.stripe_secret_key = SecretStr(stripe_api.api_key)
    settings.stripe_webhook_secret = SecretStr("whsec_" + secrets.token_hex(16))
    settings.stripe_api_base = stripe_api.base_url
    return stripe_api


async def run_sandbox(settings: Settings) -> None:
    exchanges = await start_exchange_emulators(settings)
    llm = await start_llm_server(settings)
    stripe_api = await start_stripe(settings)
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
        await _stop_peers(exchanges, llm, stripe_api)
        raise
    if stripe_api is not None:
        assert settings.stripe_webhook_secret is not None
        stripe_api.add_webhook_endpoint(
            running.base_url + "/stripe/webhook", secret=settings.stripe_webhook_secret.get_secret_value()
        )
    banner = (
        "\n  CryptoUniverse sandbox is running.\n"
        f"  Open the web chat:  {emulator.base_url}/\n"
        f"  Health:             {running.base_url}/healthz\n"
        "  Press Ctrl+C to stop.\n"
    )
    heap.settle()
    print(banner, file=sys.stderr, flush=True)
    log.info("sandbox.ready", web_chat=emulator.base_url + "/", health=running.base_url + "/healthz")
    try:
        await wait_for_signal()
    finally:
        await running.stop()
        await emulator.stop()
        await _stop_peers(exchanges, llm, stripe_api)


async def _stop_peers(
    exchanges: list[ExchangeEmulator], llm: LLMServer | None, stripe_api: StripeEmulator | None
) -> None:
    for exchange in exchanges:
        await exchange.stop()
    if llm is not None:
        await llm.stop()
    if stripe_api is not None:
        await stripe_api.stop()
