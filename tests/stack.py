"""The whole bot on the real stack for end-to-end tests: the Telegram emulator, the real aiogram bot
(polling or webhook) and a real database."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.runner import RunningBot, start_bot
from bot.settings import InboxSettings, SchedulerSettings, Settings, ThrottleSettings
from sandbox.exchanges import ExchangeEmulator, Market, start_all
from sandbox.telegram import TelegramEmulator
from sandbox.telegram.client import ChatUser, EmulatorClient

BOT_USERNAME = "cryptouniverse_bot"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    emulator: TelegramEmulator
    client: EmulatorClient
    running: RunningBot
    settings: Settings
    token: str
    exchanges: dict[str, ExchangeEmulator]

    def user(self, user_id: int = 1001, **kwargs: Any) -> ChatUser:
        kwargs.setdefault("first_name", f"Trader{user_id}")
        kwargs.setdefault("language_code", "en")
        return self.client.user(user_id, **kwargs)

    def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """What the bot has sent to a chat (any chat type), oldest first."""
        return bot_messages(self.emulator, chat_id)

    async def wait_bot_messages(
        self, chat_id: int, count: int = 1, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        return await wait_bot_messages(self.emulator, chat_id, count, timeout)

    @property
    def app(self) -> Any:
        return self.running.app

    @property
    def bot_id(self) -> int:
        return int(self.token.split(":")[0])


def bot_messages(emulator: TelegramEmulator, chat_id: int) -> list[dict[str, Any]]:
    # by_bot: a bot's posts in a channel are the channel's (no "from"), as in Telegram
    return emulator.messages(chat_id, by_bot=True)


async def wait_bot_messages(
    emulator: TelegramEmulator, chat_id: int, count: int = 1, timeout: float = 5.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = bot_messages(emulator, chat_id)
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(found)} of {count} bot messages in chat {chat_id} after {timeout}s")
        await asyncio.sleep(0.05)


def make_settings(
    tmp_path: Path, *, token: str, api: str, database_url: str, mode: str = "polling", **overrides: Any
) -> Settings:
    port = free_port()
    values: dict[str, Any] = {
        "bot_token": SecretStr(token),
        "telegram_api_server": api,
        "http_host": "127.0.0.1",
        "http_port": port,
        "database_url": database_url,
        "data_dir": tmp_path / "data",
        "master_key": SecretStr("end-to-end-master-key-0123456789"),
        "webhook_url": f"http://127.0.0.1:{port}" if mode == "webhook" else None,
        "webhook_secret": SecretStr("e2e-webhook-secret") if mode == "webhook" else None,
        "throttle": ThrottleSettings(rate=1000, burst=1000),
        "inbox": InboxSettings(lease_seconds=5, sweep_interval=0.2),
        "scheduler": SchedulerSettings(lock_ttl_seconds=1.0, lock_retry_seconds=0.2),
        "log_format": "console",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@contextlib.asynccontextmanager
async def bot_stack(
    tmp_path: Path,
    *,
    database_url: str,
    mode: str = "polling",
    emulator: TelegramEmulator | None = None,
    token: str | None = None,
    exchanges: bool | dict[str, ExchangeEmulator] = False,
    **overrides: Any,
) -> AsyncIterator[Stack]:
    """The bot against the Telegram emulator; with `exchanges`, also against the exchange emulators
    (started here on a frozen market when True). Without them, exchange URLs point at a closed local
    port, so nothing can reach the internet."""
    started: dict[str, ExchangeEmulator] = {}
    if exchanges is True:
        market = Market(seed=7)
        market.freeze()
        started = await start_all(market=market)
        exchanges = started
    urls = {name: ex.base_url for name, ex in exchanges.items()} if isinstance(exchanges, dict) else {}
    for name in ("binance", "kraken", "kucoin"):
        overrides.setdefault(f"{name}_api_url", urls.get(name, "http://127.0.0.1:9"))
    own_emulator = emulator is None
    if emulator is None:
        emulator = TelegramEmulator()
        await emulator.start(host="127.0.0.1", port=0)
    if token is None:
        token = emulator.add_bot(username=BOT_USERNAME, first_name="CryptoUniverse")
    settings = make_settings(
        tmp_path, token=token, api=emulator.base_url, database_url=database_url, mode=mode, **overrides
    )
    client = EmulatorClient(emulator.base_url)
    running: RunningBot | None = None
    try:
        running = await start_bot(settings)
        yield Stack(
            emulator=emulator,
            client=client,
            running=running,
            settings=settings,
            token=token,
            exchanges=exchanges if isinstance(exchanges, dict) else {},
        )
    finally:
        if running is not None:
            await running.stop()
        await client.close()
        if own_emulator:
            await emulator.stop()
        for exchange in started.values():
            await exchange.stop()
