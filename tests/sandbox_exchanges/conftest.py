"""Fixtures: an emulator per exchange on a frozen market, and real ccxt clients pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import ccxt.async_support as ccxt
import pytest

from sandbox.exchanges import ExchangeEmulator, Market
from tests.sandbox_exchanges.exchange_support import (
    API_KEY,
    CCXT_OPTIONS,
    EXCHANGES,
    PASSPHRASE,
    START_BALANCES,
    ClientFactory,
    rebase_urls,
    secret_for,
)


@pytest.fixture
def market() -> Market:
    return Market(seed=7, live=False)


@pytest.fixture(params=EXCHANGES)
def exchange_id(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def emulator(exchange_id: str, market: Market) -> AsyncIterator[ExchangeEmulator]:
    emu = ExchangeEmulator(exchange_id, market=market)
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
async def make_client(emulator: ExchangeEmulator) -> AsyncIterator[ClientFactory]:
    """Build ccxt clients for the emulator; all are closed and checked for unserved requests afterwards."""
    clients: list[Any] = []

    async def factory(
        api_key: str | None = None,
        secret: str | None = None,
        passphrase: str | None = None,
        load: bool = True,
        timeout_ms: int = 5000,
    ) -> Any:
        config: dict[str, Any] = {
            "options": dict(CCXT_OPTIONS[emulator.exchange_id]),
            "timeout": timeout_ms,
            "enableRateLimit": False,
        }
        if api_key is not None:
            config.update({"apiKey": api_key, "secret": secret, "password": passphrase})
        client = getattr(ccxt, emulator.exchange_id)(config)
        rebase_urls(client, emulator.base_url)
        clients.append(client)
        if load:
            await client.load_markets()
        return client

    yield factory
    for client in clients:
        await client.close()
    assert [r.endpoint for r in emulator.unserved_requests()] == []


@pytest.fixture
async def funded(emulator: ExchangeEmulator, make_client: ClientFactory) -> tuple[ExchangeEmulator, Any]:
    """The emulator with a funded account, and a logged-in ccxt client (markets loaded)."""
    secret = secret_for(emulator.exchange_id)
    emulator.add_account(API_KEY, secret, passphrase=PASSPHRASE, balances=dict(START_BALANCES))
    client = await make_client(API_KEY, secret, PASSPHRASE)
    return emulator, client
