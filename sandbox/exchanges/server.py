"""``ExchangeEmulator``: one emulated exchange served over HTTP on a local port."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal

from aiohttp import web

from sandbox.exchanges import binance, kraken, kucoin
from sandbox.exchanges.http import Faults, Frontend, RequestRecord
from sandbox.exchanges.ledger import Account, ErrorKind, Ledger, LedgerError, Order
from sandbox.exchanges.market import Market

EXCHANGE_IDS = ("binance", "kraken", "kucoin")


def _build(exchange_id: str, market: Market, faults: Faults) -> Frontend:
    if exchange_id == "binance":
        ledger = Ledger(market, binance.FEES, binance.order_id, binance.trade_id, client_id_scope="open")
        return binance.BinanceFrontend(market, ledger, faults)
    if exchange_id == "kraken":
        ledger = Ledger(
            market,
            kraken.FEES,
            kraken.order_id,
            kraken.trade_id,
            client_id_scope="open",
            adapt=kraken.adapt_spec,
        )
        return kraken.KrakenFrontend(market, ledger, faults)
    if exchange_id == "kucoin":
        ledger = Ledger(
            market,
            kucoin.FEES,
            kucoin.order_id,
            kucoin.trade_id,
            client_id_scope="all",
            adapt=kucoin.adapt_spec,
        )
        return kucoin.KucoinFrontend(market, ledger, faults)
    raise ValueError(f"unknown exchange {exchange_id!r}; expected one of {EXCHANGE_IDS}")


class ExchangeEmulator:
    """A local HTTP server speaking one exchange's REST API (``binance``, ``kraken`` or ``kucoin``)."""

    def __init__(self, exchange_id: str, market: Market | None = None, seed: int = 42) -> None:
        self.exchange_id = exchange_id
        self.market = market if market is not None else Market(seed=seed)
        self.faults = Faults()
        self.frontend = _build(exchange_id, self.market, self.faults)
        self.ledger = self.frontend.ledger
        self._runner: web.AppRunner | None = None
        self.host = "127.0.0.1"
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.faults.released = asyncio.Event()
        app = self.frontend.build_app()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        address = self._runner.addresses[-1]
        self.host, self.port = host, int(address[1])
        return self.base_url

    async def stop(self) -> None:
        self.faults.released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ExchangeEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- accounts --------------------------------------------------------------------------------------------
    def add_account(
        self,
        api_key: str,
        secret: str,
        passphrase: str | None = None,
        balances: dict[str, Decimal | str | int | float] | None = None,
        can_withdraw: bool = False,
        can_trade: bool = True,
    ) -> Account:
        """Register an API key. Kraken secrets must be base64 (see :func:`kraken.make_secret`); KuCoin keys
        need a passphrase."""
        if self.exchange_id == "kucoin" and passphrase is None:
            raise ValueError("KuCoin API keys need a passphrase")
        if self.exchange_id == "kraken":
            kraken.check_secret(secret)
        return self.ledger.add_account(api_key, secret, passphrase, balances, can_trade, can_withdraw)

    def balances(self, api_key: str) -> dict[str, Decimal]:
        account = self.ledger.accounts[api_key]
        return {a: account.total(a) for a in account.assets()}

    def fill_part(
        self, amount: Decimal | str | int | float, order_id: str | None = None, client_id: str | None = None
    ) -> Order:
        """Fill ``amount`` of a resting limit order (by its id or client order id) at its price, as a
        counterparty taking part of it would; it stays open until nothing is left of it."""
        if order_id is None:
            matches = [o for o in self.ledger.orders.values() if client_id and o.client_id == client_id]
            if not matches:
                raise LedgerError(ErrorKind.UNKNOWN_ORDER, str(client_id))
            order_id = matches[-1].id
        return self.ledger.fill_part(order_id, amount)

    # -- faults ----------------------------------------------------------------------------------------------
    def outage(self, on: bool = True) -> None:
        """While on, every request is answered with HTTP 503 and the exchange's maintenance error."""
        self.faults.outage = on

    def fail_next(self, n: int = 1, status: int | str = 500, path: str | None = None) -> None:
        """Fail the next ``n`` requests (optionally only those whose path contains ``path``) with an HTTP
        ``status`` and an HTML body, as a proxy in front of the exchange would; ``"timeout"`` holds the
        request for ``timeout_delay`` seconds (past the client's timeout) and then answers 504."""
        self.faults.fail_next(n, status, path)

    def accept_then_timeout_next_order(self, delay: float = 30.0, drop: bool = False) -> None:
        """The next order is created (and filled, if marketable) but its answer is held ``delay`` seconds,
        past the client's timeout; with ``drop`` the connection is closed without an answer instead."""
        self.faults.timeout_next_order = True
        self.faults.timeout_delay = delay
        self.faults.timeout_drop = drop

    def set_timeout_delay(self, seconds: float) -> None:
        self.faults.timeout_delay = seconds

    def clear_faults(self) -> None:
        self.faults.clear()

    # -- request log -----------------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        """The most recent requests (up to 100 000), oldest first."""
        return list(self.frontend.log)

    def request_counts(self) -> Counter[str]:
        """Requests per endpoint, keyed ``"METHOD /path"``."""
        return self.frontend.counts()

    def unserved_requests(self) -> list[RequestRecord]:
        """Requests to paths this emulator does not serve (answered 404)."""
        return self.frontend.unserved()

    def reset_log(self) -> None:
        self.frontend.clear_log()


async def start_all(
    seed: int = 42, host: str = "127.0.0.1", market: Market | None = None, ports: dict[str, int] | None = None
) -> dict[str, ExchangeEmulator]:
    """Start the three emulators on one shared market (free ports unless ``ports`` says otherwise)."""
    shared = market if market is not None else Market(seed=seed)
    emulators: dict[str, ExchangeEmulator] = {}
    for exchange_id in EXCHANGE_IDS:
        emulator = ExchangeEmulator(exchange_id, market=shared)
        await emulator.start(host, (ports or {}).get(exchange_id, 0))
        emulators[exchange_id] = emulator
    return emulators
