"""One circuit breaker and one shared public client per exchange; per-account private clients on demand."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import certifi

from services.exchanges.breaker import CircuitBreaker
from services.exchanges.ccxt_client import CcxtExchangeClient
from services.exchanges.types import EXCHANGES, Credentials

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExchangeConfig:
    api_url: str | None = None  # None: the real exchange; else an emulator / proxy origin
    timeout_ms: int = 10_000
    breaker_failures: int = 5
    breaker_reset_seconds: float = 30.0
    retry_attempts: int = 3
    retry_base_delay: float = 0.2
    lookup_attempts: int = 4  # lookups by client order id after a failed order creation
    lookup_base_delay: float = 0.25
    rate_limit: bool = True  # ccxt's throttle (Kraken: ~1 request/s per client); tests turn it off
    public_cache_ttl: float = 0.3  # seconds an order book or ticker is shared between callers


def configs_from_settings(settings: Any) -> dict[str, ExchangeConfig]:
    """Build the per-exchange configs from an ``ExchangeSettings``-like object (``binance_api_url``,
    ``kraken_api_url``, ``kucoin_api_url``, ``timeout_ms``, ``breaker_failures``,
    ``breaker_reset_seconds``)."""
    return {
        exchange_id: ExchangeConfig(
            api_url=getattr(settings, f"{exchange_id}_api_url", None) or None,
            timeout_ms=int(getattr(settings, "timeout_ms", 10_000)),
            breaker_failures=int(getattr(settings, "breaker_failures", 5)),
            breaker_reset_seconds=float(getattr(settings, "breaker_reset_seconds", 30.0)),
        )
        for exchange_id in EXCHANGES
    }


class ExchangeRegistry:
    """Owns the breakers, the public clients and (when created inside a running event loop) one aiohttp
    session that every client of the registry shares, so a per-user client opens no new connection and its
    ``close()`` costs no wait."""

    def __init__(
        self,
        config: Mapping[str, ExchangeConfig],
        *,
        clock: Callable[[], float] = time.monotonic,
        share_session: bool = True,
    ) -> None:
        unknown = set(config) - set(EXCHANGES)
        if unknown:
            raise ValueError(f"unsupported exchanges {sorted(unknown)}; expected some of {EXCHANGES}")
        self._config = dict(config)
        self._breakers = {
            exchange_id: CircuitBreaker(exchange_id, cfg.breaker_failures, cfg.breaker_reset_seconds, clock)
            for exchange_id, cfg in self._config.items()
        }
        self._public: dict[str, CcxtExchangeClient] = {}
        self._share_session = share_session
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> ExchangeRegistry:
        return cls(configs_from_settings(settings), **kwargs)

    @property
    def exchanges(self) -> tuple[str, ...]:
        return tuple(self._config)

    def config(self, exchange_id: str) -> ExchangeConfig:
        try:
            return self._config[exchange_id]
        except KeyError:
            raise ValueError(f"exchange {exchange_id!r} is not configured") from None

    def breaker(self, exchange_id: str) -> CircuitBreaker:
        self.config(exchange_id)
        return self._breakers[exchange_id]

    def breakers(self) -> dict[str, CircuitBreaker]:
        return dict(self._breakers)

    def _shared_session(self) -> aiohttp.ClientSession | None:
        if not self._share_session:
            return None
        if self._session is None or self._session.closed:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return None  # outside an event loop: each client opens its own session lazily
            context = ssl.create_default_context(cafile=certifi.where())
            connector = aiohttp.TCPConnector(
                ssl=context, family=socket.AF_UNSPEC, limit=200, limit_per_host=100
            )
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    def _client(
        self, exchange_id: str, credentials: Credentials | None, source: CcxtExchangeClient | None
    ) -> CcxtExchangeClient:
        if self._closed:
            raise RuntimeError("the exchange registry is closed")
        cfg = self.config(exchange_id)
        return CcxtExchangeClient(
            exchange_id,
            api_url=cfg.api_url,
            credentials=credentials,
            timeout_ms=cfg.timeout_ms,
            breaker=self._breakers[exchange_id],
            markets_source=source,
            session=self._shared_session(),
            retry_attempts=cfg.retry_attempts,
            retry_base_delay=cfg.retry_base_delay,
            lookup_attempts=cfg.lookup_attempts,
            lookup_base_delay=cfg.lookup_base_delay,
            rate_limit=cfg.rate_limit,
            public_cache_ttl=cfg.public_cache_ttl,
        )

    def public(self, exchange_id: str) -> CcxtExchangeClient:
        """The shared client for public data (created on first use; markets load on first call)."""
        client = self._public.get(exchange_id)
        if client is None:
            client = self._public[exchange_id] = self._client(exchange_id, None, None)
        return client

    def private(self, exchange_id: str, credentials: Credentials) -> CcxtExchangeClient:
        """A new client for one account, sharing the public client's markets, the breaker and the session.
        The caller closes it: ``async with registry.private(...) as client:`` or ``await client.close()``."""
        return self._client(exchange_id, credentials, self.public(exchange_id))

    async def close(self) -> None:
        self._closed = True
        clients, self._public = list(self._public.values()), {}
        for client in clients:
            try:
                await client.close()
            except Exception:
                log.exception("closing the %s public client failed", client.exchange_id)
        if self._session is not None:
            await self._session.close()
            self._session = None
