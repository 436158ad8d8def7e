"""Protocol details checked on the wire: error shapes, signatures, nonces, timestamps, start_all."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from sandbox.exchanges import ExchangeEmulator, Market, kraken, start_all
from sandbox.exchanges.__main__ import demo_credentials
from tests.sandbox_exchanges.exchange_support import (
    API_KEY,
    CCXT_OPTIONS,
    PASSPHRASE,
    ClientFactory,
    rebase_urls,
)


async def get(url: str, **kwargs: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, **kwargs) as response:
        return response.status, await response.json(content_type=None)


async def post(url: str, data: str, headers: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(url, data=data, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def test_unknown_paths_answer_404_in_the_exchange_shape(emulator: ExchangeEmulator) -> None:
    status, body = await get(emulator.base_url + "/fapi/v1/exchangeInfo")
    assert status == 404
    shapes = {
        "binance": lambda b: isinstance(b["code"], int) and "msg" in b,
        "kraken": lambda b: b["error"] == ["EGeneral:Unknown method"],
        "kucoin": lambda b: b["code"] == "404000",
    }
    assert shapes[emulator.exchange_id](body)
    assert [r.path for r in emulator.unserved_requests()] == ["/fapi/v1/exchangeInfo"]


async def test_outage_body_is_the_exchange_maintenance_error(emulator: ExchangeEmulator) -> None:
    emulator.outage(True)
    status, body = await get(emulator.base_url + "/anything")
    assert status == 503
    assert (
        body
        == {
            "binance": {"code": -1, "msg": "System is under maintenance."},
            "kraken": {"error": ["EService:Unavailable"]},
            "kucoin": {"code": "500000", "msg": "Service unavailable, please try again later."},
        }[emulator.exchange_id]
    )


async def test_binance_signature_checks(market: Market) -> None:
    async with ExchangeEmulator("binance", market=market) as emu:
        emu.add_account(API_KEY, "secret")
        query = f"timestamp={int(time.time() * 1000)}&recvWindow=5000"
        signature = hmac.new(b"secret", query.encode(), hashlib.sha256).hexdigest()
        url = emu.base_url + "/api/v3/account?" + query
        headers = {"X-MBX-APIKEY": API_KEY}
        status, body = await get(url + "&signature=" + signature, headers=headers)
        assert status == 200 and body["accountType"] == "SPOT"
        status, body = await get(url + "&signature=" + "0" * 64, headers=headers)
        assert (status, body["code"]) == (400, -1022)
        status, body = await get(url, headers=headers)
        assert (status, body["code"]) == (400, -1102)
        status, body = await get(url + "&signature=" + signature, headers={"X-MBX-APIKEY": "nope"})
        assert (status, body["code"]) == (401, -2015)
        status, body = await get(emu.base_url + "/api/v3/depth?symbol=NOPE")
        assert (status, body["code"]) == (400, -1121)


def kraken_headers(path: str, body: str, nonce: str, secret: str) -> dict[str, str]:
    digest = hashlib.sha256((nonce + body).encode()).digest()
    mac = hmac.new(base64.b64decode(secret), path.encode() + digest, hashlib.sha512)
    return {
        "API-Key": API_KEY,
        "API-Sign": base64.b64encode(mac.digest()).decode(),
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def test_kraken_nonce_must_increase_and_signature_must_match(market: Market) -> None:
    async with ExchangeEmulator("kraken", market=market) as emu:
        secret = kraken.make_secret()
        emu.add_account(API_KEY, secret, balances={"USDT": 5})
        path = "/0/private/Balance"
        body = "nonce=1000"
        _, answer = await post(emu.base_url + path, body, kraken_headers(path, body, "1000", secret))
        assert answer == {"error": [], "result": {"USDT": "5.00000000"}}
        _, answer = await post(emu.base_url + path, body, kraken_headers(path, body, "1000", secret))
        assert answer["error"] == ["EAPI:Invalid nonce"]
        body = "nonce=1001"
        _, answer = await post(
            emu.base_url + path, body, kraken_headers(path, body, "1001", kraken.make_secret())
        )
        assert answer["error"] == ["EAPI:Invalid key"]
    with pytest.raises(ValueError, match="base64"):
        ExchangeEmulator("kraken").add_account("k", "not base64!")


@pytest.mark.parametrize("exchange_id", ["kucoin"])
async def test_kucoin_timestamp_is_checked(emulator: ExchangeEmulator, make_client: ClientFactory) -> None:
    emulator.add_account(API_KEY, "secret", passphrase=PASSPHRASE)
    client = await make_client(API_KEY, "secret", PASSPHRASE)
    client.options["timeDifference"] = 60_000  # the client's clock is a minute behind
    with pytest.raises(ccxt.InvalidNonce):
        await client.fetch_balance()
    with pytest.raises(ValueError, match="passphrase"):
        emulator.add_account("other", "secret")


async def test_start_all_shares_one_market() -> None:
    market = Market(seed=11, live=False)
    emulators = await start_all(market=market)
    clients = []
    try:
        assert sorted(emulators) == ["binance", "kraken", "kucoin"]
        assert len({e.port for e in emulators.values()}) == 3
        market.set_price("ETH/USDT", Decimal("3210.5"))
        for name, emulator in emulators.items():
            client = getattr(ccxt, name)({"options": dict(CCXT_OPTIONS[name]), "enableRateLimit": False})
            clients.append(client)
            rebase_urls(client, emulator.base_url)
            assert (await client.fetch_ticker("ETH/USDT"))["last"] == 3210.5
    finally:
        for client in clients:
            await client.close()
        for emulator in emulators.values():
            await emulator.stop()


async def test_live_market_moves_with_the_clock() -> None:
    market = Market(seed=3, tick_seconds=0.01)
    async with ExchangeEmulator("binance", market=market) as emu:
        client = ccxt.binance({"options": dict(CCXT_OPTIONS["binance"]), "enableRateLimit": False})
        rebase_urls(client, emu.base_url)
        try:
            first = (await client.fetch_ticker("BTC/USDT"))["last"]
            market.advance(5)
            assert (await client.fetch_ticker("BTC/USDT"))["last"] != first
        finally:
            await client.close()


def test_demo_credentials() -> None:
    creds = demo_credentials("kraken", 42)
    kraken.check_secret(creds["secret"])
    assert demo_credentials("kraken", 42) == creds != demo_credentials("kraken", 43)
    assert demo_credentials("kucoin", 1)["passphrase"]


def test_rebase_urls_keeps_paths() -> None:
    client = ccxt.binance()
    rebase_urls(client, "http://127.0.0.1:1234")
    assert client.urls["api"]["public"] == "http://127.0.0.1:1234/api/v3"
    assert client.urls["api"]["sapi"] == "http://127.0.0.1:1234/sapi/v1"
    assert client.urls["api"]["fapiPublic"] == "http://127.0.0.1:1234/fapi/v1"
    assert all(urllib.parse.urlsplit(u).netloc == "127.0.0.1:1234" for u in client.urls["api"].values())
