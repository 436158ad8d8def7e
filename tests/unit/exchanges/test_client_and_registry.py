"""The parts of the ccxt client and the registry that need no network."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest

from services.exchanges.breaker import CircuitBreaker
from services.exchanges.ccxt_client import CcxtExchangeClient, tidy, to_decimal
from services.exchanges.errors import ExchangeAuthError, ExchangeError
from services.exchanges.registry import ExchangeConfig, ExchangeRegistry, configs_from_settings
from services.exchanges.types import Credentials, ExchangeClient


def client(exchange_id: str, **kwargs: object) -> CcxtExchangeClient:
    return CcxtExchangeClient(exchange_id, breaker=CircuitBreaker(exchange_id), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.1, Decimal("0.1")), ("65000.01", Decimal("65000.01")), (1e-8, Decimal("1e-8")), (3, Decimal(3)),
     (None, None), ("", None), (float("nan"), None), ("abc", None)],
)  # fmt: skip
def test_to_decimal(value: object, expected: Decimal | None) -> None:
    assert to_decimal(value) == expected


def test_tidy() -> None:
    assert str(tidy(Decimal("5.000"))) == "5" and str(tidy(Decimal("6E+4"))) == "60000"
    assert str(tidy(Decimal("0.00010"))) == "0.0001"


@pytest.mark.parametrize(
    ("exchange_id", "limit", "depth"),
    [("kucoin", 5, 20), ("kucoin", 50, 100), ("kucoin", 500, 100), ("binance", 50, 50), ("binance", 60, 100),
     ("binance", 9999, 5000), ("kraken", 37, 37), ("kraken", 1000, 500)],
)  # fmt: skip
async def test_book_depth_asked(exchange_id: str, limit: int, depth: int) -> None:
    c = client(exchange_id)
    try:
        assert c._book_depth(limit) == depth
    finally:
        await c.close()


async def test_client_setup() -> None:
    creds = Credentials("key-123", "secret-456", "pass-789")
    c = client("kucoin", api_url="http://127.0.0.1:9", credentials=creds)
    try:
        assert c._exchange.urls["api"]["public"] == "http://127.0.0.1:9"
        assert c._exchange.apiKey == "key-123" and c._exchange.password == "pass-789"
        assert c._exchange.enableRateLimit and c._exchange.options["hf"] is False
        assert not {"key-123", "secret-456", "pass-789"} & set(repr(c).replace("'", " ").split())
        with pytest.raises(ExchangeError) as info:  # markets not loaded yet
            c.amount_to_precision("BTC/USDT", Decimal(1))
        assert info.value.message_key == "exchange.markets_not_loaded"
    finally:
        await c.close()
    with pytest.raises(ValueError):
        client("bitfinex")


async def test_private_calls_need_credentials() -> None:
    c = client("binance")
    try:
        with pytest.raises(ExchangeAuthError) as info:
            await c.fetch_balance()
        assert info.value.message_key == "exchange.credentials_required"
    finally:
        await c.close()


async def test_registry_shares_breaker_and_markets_source() -> None:
    registry = ExchangeRegistry({"binance": ExchangeConfig(api_url="http://127.0.0.1:9", breaker_failures=2)})
    try:
        public = registry.public("binance")
        assert registry.public("binance") is public
        async with registry.private("binance", Credentials("k", "s")) as private:
            assert private.breaker is public.breaker is registry.breakers()["binance"]
            assert private._source is public and private.has_credentials and not public.has_credentials
            assert private._exchange.session is public._exchange.session is not None  # one shared session
        assert registry.breaker("binance").failure_threshold == 2
        with pytest.raises(ValueError):
            registry.public("kraken")  # not configured
    finally:
        await registry.close()
    with pytest.raises(RuntimeError):
        registry.public("binance")
    with pytest.raises(ValueError):
        ExchangeRegistry({"bitfinex": ExchangeConfig()})


def test_configs_from_settings() -> None:
    settings = SimpleNamespace(
        binance_api_url="http://emu:1", kraken_api_url=None, kucoin_api_url="",
        timeout_ms=5000, breaker_failures=4, breaker_reset_seconds=12,
    )  # fmt: skip
    configs = configs_from_settings(settings)
    assert set(configs) == {"binance", "kraken", "kucoin"}
    assert configs["binance"] == ExchangeConfig("http://emu:1", 5000, 4, 12.0)
    assert configs["kraken"].api_url is None and configs["kucoin"].api_url is None


async def test_implements_the_exchange_client_protocol() -> None:
    c: ExchangeClient = client("binance")  # checked by mypy: the structural type matches types.py
    assert c.exchange_id == "binance"
    await c.close()
