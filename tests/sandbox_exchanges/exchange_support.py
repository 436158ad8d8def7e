"""Shared by the emulator tests: client options, URL rebasing and credentials."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from sandbox.exchanges import kraken

EXCHANGES = ("binance", "kraken", "kucoin")
API_KEY = "test-key"
PASSPHRASE = "test-passphrase"
START_BALANCES = {"USDT": Decimal("1000000"), "BTC": Decimal("2"), "ETH": Decimal("10")}

# what the product must pass to ccxt (spot only, no probing of account modes the emulators do not model)
CCXT_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchMargins": False},
    "kraken": {},
    "kucoin": {"fetchMarkets": {"types": ["spot"]}, "hf": False, "uta": False},
}

_ORIGIN = re.compile(r"^https?://[^/]+")


def rebase_urls(exchange: Any, base_url: str) -> None:
    """Point every URL of ``exchange.urls['api']`` at ``base_url``, keeping each URL's path."""

    def walk(node: dict[str, Any]) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value)
            elif isinstance(value, str):
                node[key] = _ORIGIN.sub(base_url.rstrip("/"), value)

    walk(exchange.urls["api"])


def secret_for(exchange_id: str) -> str:
    """A fresh API secret in the exchange's format (Kraken's are base64)."""
    return kraken.make_secret() if exchange_id == "kraken" else "s3cr3t-" + kraken.make_secret()[:16]


ClientFactory = Callable[..., Awaitable[Any]]
