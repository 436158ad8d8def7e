"""The exchange layer against the local exchange emulators (real ccxt over HTTP), for each exchange."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest

from sandbox.exchanges import ExchangeEmulator, Market
from services.exchanges.ccxt_client import CcxtExchangeClient
from services.exchanges.registry import ExchangeConfig, ExchangeRegistry
from services.exchanges.types import EXCHANGES, Credentials
from tests.sandbox_exchanges.exchange_support import API_KEY, PASSPHRASE, START_BALANCES, secret_for

SYMBOL = "BTC/USDT"
ORDER_CREATE = {
    "binance": "POST /api/v3/order",
    "kraken": "POST /0/private/AddOrder",
    "kucoin": "POST /api/v1/orders",
}
ORDER_PATH = {"binance": "/api/v3/order", "kraken": "/0/private/AddOrder", "kucoin": "/api/v1/orders"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


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
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def base_config(emulator: ExchangeEmulator) -> ExchangeConfig:
    """Small timeouts and delays so that the fault tests stay fast."""
    return ExchangeConfig(
        api_url=emulator.base_url,
        timeout_ms=3000,
        breaker_failures=3,
        breaker_reset_seconds=30,
        retry_attempts=2,
        retry_base_delay=0.01,
        lookup_attempts=3,
        lookup_base_delay=0.05,
        rate_limit=False,  # Kraken's 1 request/s throttle would make every test take seconds
    )


RegistryFactory = Callable[..., ExchangeRegistry]


@pytest.fixture
async def make_registry(
    emulator: ExchangeEmulator, base_config: ExchangeConfig, clock: FakeClock
) -> AsyncIterator[RegistryFactory]:
    registries: list[ExchangeRegistry] = []

    def factory(**overrides: Any) -> ExchangeRegistry:
        config = replace(base_config, **overrides)
        registry = ExchangeRegistry({emulator.exchange_id: config}, clock=clock)
        registries.append(registry)
        return registry

    yield factory
    for registry in registries:
        await registry.close()
    assert [r.endpoint for r in emulator.unserved_requests()] == []


@pytest.fixture
def registry(make_registry: RegistryFactory) -> ExchangeRegistry:
    return make_registry()


@pytest.fixture
def credentials(emulator: ExchangeEmulator) -> Credentials:
    secret = secret_for(emulator.exchange_id)
    emulator.add_account(API_KEY, secret, passphrase=PASSPHRASE, balances=dict(START_BALANCES))
    return Credentials(API_KEY, secret, PASSPHRASE)


@pytest.fixture
async def private(
    registry: ExchangeRegistry, credentials: Credentials, exchange_id: str
) -> AsyncIterator[CcxtExchangeClient]:
    async with registry.private(exchange_id, credentials) as client:
        yield client
