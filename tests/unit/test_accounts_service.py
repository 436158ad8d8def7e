"""AccountService without a network or a database: input checks, the exchange's verdicts on a key, and
that a refused key never reaches storage, an error message or the client left open."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from services.crypto import SecretBox
from services.exchanges.errors import ExchangeAuthError, ExchangePermissionError, ExchangeTemporaryError
from services.exchanges.types import Balance, Credentials, ExchangeClient
from services.trading.accounts import (
    AccountService,
    CredentialFormatError,
    CredentialsUnreadable,
    InvalidApiKey,
    KeyNotPermitted,
    PassphraseRequired,
    UnsupportedExchange,
    WithdrawalsEnabled,
    check_field,
    context,
    key_hint,
)
from services.users import UserProfile

KEY = "K" * 24 + "AB12"
SECRET = "s3cr3t-" + "x" * 40
NOW = datetime(2026, 1, 1, tzinfo=UTC)
USER = UserProfile(
    id=7,
    tenant_id=1,
    telegram_id=70,
    username=None,
    first_name="T",
    language_code="en",
    locale="en",
    role="user",
    tier="free",
    created_at=NOW,
    last_seen_at=NOW,
)


@dataclass
class FakeClient:
    exchange_id: str
    fail: Exception | None = None
    can_withdraw: bool | None = None
    closed: bool = False

    async def fetch_balance(self) -> dict[str, Balance]:
        if self.fail is not None:
            raise self.fail
        return {"USDT": Balance("USDT", Decimal(5), Decimal(0), Decimal(5))}

    async def withdrawal_enabled(self) -> bool | None:
        return self.can_withdraw

    async def close(self) -> None:
        self.closed = True


@dataclass
class FakeExchanges:
    client: FakeClient
    seen: list[Credentials] = field(default_factory=list)

    def public(self, exchange_id: str) -> ExchangeClient:
        raise AssertionError("no pricing expected")

    def private(self, exchange_id: str, credentials: Credentials) -> ExchangeClient:
        self.seen.append(credentials)
        return cast(ExchangeClient, self.client)


def service(client: FakeClient, redacted: list[str] | None = None) -> tuple[AccountService, FakeExchanges]:
    exchanges = FakeExchanges(client)
    session = cast(AsyncSession, object())  # the refusals below never reach the database
    sink = redacted if redacted is not None else []
    return AccountService(session, exchanges, SecretBox("k" * 32), redact=sink.append), exchanges


@pytest.mark.parametrize(
    ("field", "value", "key"),
    [
        ("api_key", "", "accounts.errors.empty"),
        ("api_key", "   ", "accounts.errors.empty"),
        ("api_key", "abc def ghi", "accounts.errors.spaces"),
        ("secret", "abcdefgh\nijkl", "accounts.errors.spaces"),
        ("secret", "ключключключ", "accounts.errors.unprintable"),
        ("api_key", "short", "accounts.errors.too_short"),
        ("secret", "x" * 257, "accounts.errors.too_long"),
    ],
)
def test_bad_input_is_refused_with_its_reason(field: str, value: str, key: str) -> None:
    with pytest.raises(CredentialFormatError) as caught:
        check_field(field, value)
    assert caught.value.message_key == key
    assert caught.value.params["field"] == field
    assert value.strip() == "" or value not in str(caught.value.params)


@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=8, max_size=256))
def test_printable_keys_pass_unchanged(value: str) -> None:
    assert check_field("secret", f"  {value}\n") == value


def test_hint_and_context() -> None:
    assert key_hint(KEY) == "…AB12"
    assert context(7, "kucoin", "passphrase") == "user:7|exchange:kucoin|field:passphrase"


async def test_unsupported_exchange_and_missing_passphrase() -> None:
    svc, exchanges = service(FakeClient("kucoin"))
    with pytest.raises(UnsupportedExchange):
        await svc.connect(USER, "mtgox", KEY, SECRET)
    with pytest.raises(PassphraseRequired):
        await svc.connect(USER, "kucoin", KEY, SECRET, passphrase="  ")
    assert exchanges.seen == []


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (ExchangeAuthError(exchange="binance", detail="-2015 Invalid API-key"), InvalidApiKey),
        (ExchangePermissionError(exchange="binance"), KeyNotPermitted),
        (ExchangeTemporaryError(exchange="binance", reason="timeout"), ExchangeTemporaryError),
    ],
)
async def test_exchange_verdicts_become_typed_errors(failure: Exception, expected: type[Exception]) -> None:
    client = FakeClient("binance", fail=failure)
    redacted: list[str] = []
    svc, exchanges = service(client, redacted)
    with pytest.raises(expected) as caught:
        await svc.connect(USER, "binance", KEY, SECRET)
    assert client.closed, "the private client is closed whatever happens"
    assert exchanges.seen == [Credentials(KEY, SECRET, None)]
    assert {KEY, SECRET} <= set(redacted)
    shown: Any = caught.value
    assert SECRET not in repr(shown) and SECRET not in str(getattr(shown, "params", {}))


async def test_a_key_that_can_withdraw_is_refused() -> None:
    client = FakeClient("binance", can_withdraw=True)
    svc, _ = service(client)
    with pytest.raises(WithdrawalsEnabled) as caught:
        await svc.connect(USER, "binance", KEY, SECRET)
    assert caught.value.message_key == "accounts.errors.withdrawals_enabled"
    assert client.closed


def test_drafts_are_sealed_per_user_and_field() -> None:
    svc, _ = service(FakeClient("binance"))
    token = svc.seal_draft(USER, "secret", SECRET)
    assert SECRET not in token
    assert svc.open_draft(USER, "secret", token) == SECRET
    with pytest.raises(CredentialsUnreadable):
        svc.open_draft(replace(USER, id=8), "secret", token)
    with pytest.raises(CredentialsUnreadable):
        svc.open_draft(USER, "api_key", token)
