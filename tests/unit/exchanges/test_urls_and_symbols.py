from __future__ import annotations

import pytest

from services.exchanges.symbols import normalize_symbol, suggest_symbols
from services.exchanges.urls import rebase_urls

SYMBOLS = [
    "ADA/USDT", "BNB/USDT", "BTC/USDT", "DOGE/USDT", "DOT/USDT", "ETH/BTC",
    "ETH/USDT", "LINK/USDT", "LTC/USDT", "SOL/USDT", "XRP/USDT",
]  # fmt: skip


def test_rebase_keeps_paths_and_nesting() -> None:
    api = {
        "public": "https://api.binance.com/api/v3",
        "sapi": "https://api.binance.com/sapi/v1",
        "fapiPublic": "https://fapi.binance.com/fapi/v1",
        "nested": {"deep": "https://{hostname}/x/y?z=1", "list": ["wss://stream.binance.com:9443/ws"]},
        "bare": "https://api.kraken.com",
        "count": 3,
    }
    rebased = rebase_urls(api, "http://127.0.0.1:8080/")
    assert rebased == {
        "public": "http://127.0.0.1:8080/api/v3",
        "sapi": "http://127.0.0.1:8080/sapi/v1",
        "fapiPublic": "http://127.0.0.1:8080/fapi/v1",
        "nested": {"deep": "http://127.0.0.1:8080/x/y?z=1", "list": ["http://127.0.0.1:8080/ws"]},
        "bare": "http://127.0.0.1:8080",
        "count": 3,
    }
    assert api["public"] == "https://api.binance.com/api/v3"  # the input is not modified


def test_rebase_with_a_path_prefix_and_a_plain_string() -> None:
    assert rebase_urls("https://api.kucoin.com/api", "https://proxy.local/kucoin") == (
        "https://proxy.local/kucoin/api"
    )


@pytest.mark.parametrize("base", ["127.0.0.1:8080", "ftp://x", "", "http://"])
def test_rebase_refuses_a_bad_base(base: str) -> None:
    with pytest.raises(ValueError):
        rebase_urls({"a": "https://x/y"}, base)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("BTCC", ["BTC/USDT"]),
        ("BTCUSDT", ["BTC/USDT"]),
        ("btc-usdt", ["BTC/USDT"]),
        ("ETH", ["ETH/USDT", "ETH/BTC"]),
        ("ETH/USD", ["ETH/USDT"]),
        ("SOLL/USDT", ["SOL/USDT"]),
        ("DOG", ["DOGE/USDT"]),
        ("LNK", ["LINK/USDT"]),
        ("ETHBTC", ["ETH/BTC"]),
        ("XYZ123", []),
        ("", []),
    ],
)
def test_suggestions(query: str, expected: list[str]) -> None:
    assert suggest_symbols(query, SYMBOLS) == expected


def test_suggestion_limit() -> None:
    assert len(suggest_symbols("DOT", SYMBOLS, limit=1)) == 1


@pytest.mark.parametrize(
    ("raw", "normal"), [(" btc-usdt ", "BTC/USDT"), ("eth_btc", "ETH/BTC"), ("SOL USDT", "SOL/USDT")]
)
def test_normalize(raw: str, normal: str) -> None:
    assert normalize_symbol(raw) == normal
