"""Live exchange accounts end to end: the Telegram emulator -> the real bot -> real ccxt -> the exchange
emulators' private endpoints. Secrets are deleted from the chat, stored only encrypted, never logged or
echoed; switching to a live account needs a single-use confirmation that expires."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import String, Text, func, select

from bot.logging import redact_text
from bot.settings import TradingSettings
from db.models import AuditLog, ExchangeAccount, InboxUpdate, TradingProfile, User
from db.types import utcnow
from sandbox.exchanges import kraken
from sandbox.telegram.client import BotMessage, ChatUser
from services.billing.purchases import PurchaseService
from services.credits.ledger import CreditLedger
from services.crypto import DecryptionError, SecretBox
from services.trading.accounts import AccountService, CredentialsUnreadable
from tests.stack import Stack, bot_stack

OLD_MASTER = "end-to-end-master-key-0123456789"  # tests.stack.make_settings
NEW_MASTER = "rotated-master-key-abcdefghijklmnop"
BUTTON = {"binance": "Binance", "kraken": "Kraken", "kucoin": "KuCoin"}


@dataclass(frozen=True)
class Key:
    exchange: str
    api_key: str
    secret: str
    passphrase: str | None = None

    @property
    def values(self) -> list[str]:
        return [v for v in (self.api_key, self.secret, self.passphrase) if v]


def new_key(exchange: str) -> Key:
    api_key = f"{exchange}-{secrets.token_hex(12)}AB12"
    secret = kraken.make_secret() if exchange == "kraken" else secrets.token_hex(32)
    passphrase = f"pass-{secrets.token_hex(6)}" if exchange == "kucoin" else None
    return Key(exchange, api_key, secret, passphrase)


def register(stack: Stack, key: Key, *, can_withdraw: bool = False) -> None:
    stack.exchanges[key.exchange].add_account(
        key.api_key,
        key.secret,
        passphrase=key.passphrase,
        balances={"USDT": 1000, "BTC": "0.5"},
        can_withdraw=can_withdraw,
    )


@pytest.fixture
async def stack(tmp_path: Path, database_url: str) -> AsyncIterator[Stack]:
    async with bot_stack(tmp_path, database_url=database_url, exchanges=True) as stack:
        yield stack


@pytest.fixture
async def sqlite_stack(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Stack]:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True) as stack:
        yield stack


async def connect(user: ChatUser, key: Key, secret: str | None = None) -> tuple[BotMessage, list[int]]:
    """Walk the /connect wizard; returns the outcome and the ids of the messages that held secrets."""
    await user.send("/connect")
    picker = await user.next_message()
    assert picker.button_texts == ["Binance", "Kraken", "KuCoin", "✖️ Cancel"]
    await user.press(picker, text=BUTTON[key.exchange])
    assert "API key" in (await user.next_message()).text
    sent = [(await user.send(key.api_key))["message_id"]]
    assert "API secret" in (await user.next_message()).text
    sent.append((await user.send(secret or key.secret))["message_id"])
    if key.passphrase is not None:
        assert "passphrase" in (await user.next_message()).text
        sent.append((await user.send(key.passphrase))["message_id"])
    assert "Checking" in (await user.next_message()).text
    outcome = await user.next_message(timeout=15)
    await user.refresh()
    return outcome, sent


async def live_rows(stack: Stack) -> list[ExchangeAccount]:
    async with stack.app.session_factory() as session:
        stmt = select(ExchangeAccount).where(ExchangeAccount.is_paper.is_(False)).order_by(ExchangeAccount.id)
        return list((await session.scalars(stmt)).all())


async def text_cells(stack: Stack) -> list[str]:
    """Every string cell of exchange_accounts, every audit row's details and every stored update."""
    columns = [c for c in ExchangeAccount.__table__.columns if isinstance(c.type, String | Text)]
    async with stack.app.session_factory() as session:
        rows = (await session.execute(select(*columns))).all()
        audit = (await session.scalars(select(AuditLog.details))).all()
        updates = (await session.scalars(select(InboxUpdate.payload))).all()
    cells = [str(cell) for row in rows for cell in row if cell is not None]
    return cells + [str(d) for d in audit] + [str(p) for p in updates]


async def active_account_id(stack: Stack, telegram_id: int) -> int | None:
    async with stack.app.session_factory() as session:
        stmt = (
            select(TradingProfile.active_account_id)
            .join(User, User.id == TradingProfile.user_id)
            .where(User.telegram_id == telegram_id)
        )
        return await session.scalar(stmt)


async def audit_count(stack: Stack, action: str) -> int:
    async with stack.app.session_factory() as session:
        stmt = select(func.count(AuditLog.id)).where(AuditLog.action == action)
        return int(await session.scalar(stmt) or 0)


def logs(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    """Everything logged: stdlib records and structlog's own output."""
    out, err = capsys.readouterr()
    return "\n".join((caplog.text, out, err))


def assert_nowhere(
    values: list[str],
    user: ChatUser,
    logged: str,
    cells: list[str],
    *,
    sent: bool = True,
) -> None:
    replies = [m.text + m.html + str(m.buttons) for m in user.history]
    for value in values:
        assert not any(value in reply for reply in replies), "a reply echoed a secret"
        assert value not in logged, "a secret was logged"
        assert not any(value in cell for cell in cells), "a secret is stored in plain text"
        if sent:
            assert redact_text(f"x {value} y") == "x *** y", "the log scrubber does not know the secret"


# ------------------------------------------------------------------------------------------- connecting


async def test_connect_a_key_on_each_exchange(
    stack: Stack, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.WARNING, logger="sqlalchemy.engine")  # as in production (bot.logging)
    user = stack.user(4001)
    keys = [new_key(exchange) for exchange in ("binance", "kraken", "kucoin")]
    for key in keys:
        register(stack, key)
        outcome, sent = await connect(user, key)
        name = BUTTON[key.exchange]
        assert f"{name} connected" in outcome.text, outcome.text
        assert "(key …AB12)" in outcome.text
        assert "BTC: 0.5 ≈" in outcome.text and "USDT: 1,000 ≈ 1,000.00 USDT" in outcome.text
        assert "Total ≈" in outcome.text
        assert outcome.button_texts == ["⚡ Use this account", "🔐 My accounts"]
        assert set(sent) <= set(user.deleted), "every message holding a secret is deleted"

    rows = await live_rows(stack)
    assert [(r.exchange, r.key_hint, r.removed_at) for r in rows] == [
        ("binance", "…AB12", None),
        ("kraken", "…AB12", None),
        ("kucoin", "…AB12", None),
    ]
    assert rows[2].passphrase_enc is not None and rows[0].passphrase_enc is None
    assert await audit_count(stack, "account.connected") == 3
    assert_nowhere([v for k in keys for v in k.values], user, logs(caplog, capsys), await text_cells(stack))

    box = SecretBox(OLD_MASTER)
    async with stack.app.session_factory() as session:
        service = AccountService(session, stack.app.exchanges, box)
        for key, row in zip(keys, rows, strict=True):
            credentials = await service.credentials(row.id)
            assert (credentials.api_key, credentials.secret, credentials.passphrase) == (
                key.api_key,
                key.secret,
                key.passphrase,
            )
    # a ciphertext only opens in its own field: the key's ciphertext is no secret
    with pytest.raises(DecryptionError):
        box.decrypt(rows[0].api_key_enc or "", f"user:{rows[0].user_id}|exchange:binance|field:secret")

    await user.send("/accounts")
    listing = await user.next_message()
    assert "✅ 📝 Paper" in listing.text and "active" in listing.text
    for name in ("Binance", "Kraken", "KuCoin"):
        assert f"⚡ {name} …AB12 · live, real money" in listing.text
    assert "Use ⚡ Binance …AB12" in listing.button_texts and "➕ Connect exchange" in listing.button_texts


async def test_reconnecting_an_exchange_replaces_its_key(sqlite_stack: Stack) -> None:
    user = sqlite_stack.user(4002)
    first, second = new_key("binance"), new_key("binance")
    for key in (first, second):
        register(sqlite_stack, key)
    await connect(user, first)
    outcome, _ = await connect(user, second)
    assert "previous key for this exchange was removed" in outcome.text
    old, new = await live_rows(sqlite_stack)
    assert old.removed_at is not None and old.api_key_enc is None and old.secret_enc is None
    assert new.removed_at is None and new.api_key_enc


async def test_a_key_that_can_withdraw_is_refused(
    sqlite_stack: Stack, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.WARNING, logger="sqlalchemy.engine")
    user = sqlite_stack.user(4003)
    key = new_key("binance")
    register(sqlite_stack, key, can_withdraw=True)
    outcome, sent = await connect(user, key)
    assert "can withdraw funds" in outcome.text and "without the withdrawal permission" in outcome.text
    assert "Nothing was stored" in outcome.text
    assert set(sent) <= set(user.deleted)
    assert await live_rows(sqlite_stack) == []
    assert await audit_count(sqlite_stack, "account.connected") == 0
    assert_nowhere(key.values, user, logs(caplog, capsys), await text_cells(sqlite_stack))


async def test_a_wrong_secret_is_refused(
    sqlite_stack: Stack, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.WARNING, logger="sqlalchemy.engine")
    user = sqlite_stack.user(4004)
    key = new_key("kucoin")
    register(sqlite_stack, key)
    wrong = secrets.token_hex(32)
    outcome, sent = await connect(user, key, secret=wrong)
    assert "KuCoin rejected this key" in outcome.text and "Nothing was stored" in outcome.text
    assert set(sent) <= set(user.deleted)
    assert await live_rows(sqlite_stack) == []
    cells = await text_cells(sqlite_stack)
    logged = logs(caplog, capsys)
    assert_nowhere([key.api_key, key.passphrase or "", wrong], user, logged, cells)
    assert_nowhere([key.secret], user, logged, cells, sent=False)


async def test_the_wizard_rejects_bad_input_and_can_be_left(sqlite_stack: Stack) -> None:
    user = sqlite_stack.user(4005)
    await user.send("/connect")
    picker = await user.next_message()
    typed = await user.send("pasted-the-key-too-early")  # before choosing an exchange: deleted as well
    assert "choose the exchange" in (await user.next_message()).text
    await user.press(picker, text="Kraken")
    await user.next_message()
    spaced = await user.send("has a space inside")
    reply = await user.next_message()
    assert "must not contain spaces" in reply.text and "API key" in reply.text
    await user.send("/cancel")
    assert "Connecting cancelled" in (await user.next_message()).text
    await user.refresh()
    assert {typed["message_id"], spaced["message_id"]} <= set(user.deleted)

    # a command inside the wizard leaves it and is answered as usual
    await user.send("/connect")
    picker = await user.next_message()
    await user.press(picker, text="Binance")
    await user.next_message()
    command = await user.send("/balance")
    balance = await user.next_message(timeout=10)
    assert "Balance" in balance.text
    await user.refresh()
    assert command["message_id"] not in user.deleted
    await user.send("not-a-key-anymore")
    assert "didn't understand" in (await user.next_message()).text
    assert await live_rows(sqlite_stack) == []


# ------------------------------------------------------------------------------------------- switching


async def give_plan(stack: Stack, telegram_id: int, plan: str = "pro", credits: int = 500) -> None:
    """A paid plan and some credits, as a purchase would give them (live trading needs both).

    The bot's first reply to a user can arrive before that update's transaction (which creates the user)
    has committed: the row is waited for."""
    for _ in range(100):  # a session per look: on SQLite an open one would hold the bot's commit up
        async with stack.app.session_factory() as session:
            if await session.scalar(select(User.id).where(User.telegram_id == telegram_id)) is not None:
                break
        await asyncio.sleep(0.05)
    async with stack.app.session_factory() as session:
        row = await session.scalar(select(User).where(User.telegram_id == telegram_id))
        assert row is not None, f"user {telegram_id} was not stored"
        catalogue = stack.app.services.catalogue
        await PurchaseService(session, catalogue).activate_plan(
            row.id, catalogue.plan(plan), provider="telegram_stars", purchase_id=None, period_start=utcnow()
        )
        if credits:
            await CreditLedger(session).grant(row.id, credits, "adjustment", f"test:{row.id}:{plan}")
        await session.commit()


async def _connected(stack: Stack, user: ChatUser) -> int:
    key = new_key("binance")
    register(stack, key)
    outcome, _ = await connect(user, key)
    assert "connected" in outcome.text
    await give_plan(stack, user.user_id)
    [row] = [r for r in await live_rows(stack) if r.removed_at is None]
    return row.id


async def test_switching_to_live_needs_one_confirmation(stack: Stack) -> None:
    user = stack.user(4006)
    live_id = await _connected(stack, user)
    paper_id = await active_account_id(stack, 4006)
    await user.send("/accounts")
    listing = await user.next_message()
    await user.press(listing, text="Use ⚡ Binance …AB12")
    card = await user.next_message()
    assert "Switch to live trading?" in card.text and "real money" in card.text and "60 seconds" in card.text
    assert card.button_texts == ["✅ Confirm", "✖️ Cancel"]
    assert await active_account_id(stack, 4006) == paper_id

    first, second = await asyncio.gather(
        user.press(card, text="✅ Confirm"), user.press(card, text="✅ Confirm")
    )
    await user.sleep_until_idle(quiet=0.5)
    answers = [await user.callback_answer(q) for q in (first, second)]
    assert sum("expired or was already used" in (a.get("text") or "") for a in answers) == 1
    assert await active_account_id(stack, 4006) == live_id
    assert await audit_count(stack, "account.switched") == 1
    done = user.history[-1]
    assert "Live trading is on" in done.text and "✅ ⚡ Binance …AB12" in done.text

    # back to paper: no confirmation needed
    await user.press(done, text="Use 📝 Paper")
    back = await user.wait_for(lambda m: "Active account" in m.text)
    assert "Active account: 📝 Paper" in back.text
    assert await active_account_id(stack, 4006) == paper_id


async def test_an_expired_or_cancelled_switch_changes_nothing(tmp_path: Path, sqlite_url: str) -> None:
    async with bot_stack(
        tmp_path, database_url=sqlite_url, exchanges=True, trading=TradingSettings(confirm_ttl_seconds=1)
    ) as stack:
        user = stack.user(4007)
        await _connected(stack, user)
        paper_id = await active_account_id(stack, 4007)
        await user.send("/accounts")
        listing = await user.next_message()
        await user.press(listing, text="Use ⚡ Binance …AB12")
        card = await user.next_message()
        await asyncio.sleep(1.5)
        answer = await user.callback_answer(await user.press(card, text="✅ Confirm"))
        assert "expired" in answer["text"]
        assert await active_account_id(stack, 4007) == paper_id

        await user.press(card, text="✖️ Cancel")  # the expired card can't be cancelled either
        await user.sleep_until_idle()
        await user.send("/accounts")
        listing = await user.next_message()
        await user.press(listing, text="Use ⚡ Binance …AB12")
        card = await user.next_message()
        await user.press(card, text="✖️ Cancel")
        assert "Nothing changed" in (await user.next_message()).text
        assert await active_account_id(stack, 4007) == paper_id
        assert await audit_count(stack, "account.switched") == 0


async def test_removing_the_active_live_account_falls_back_to_paper(stack: Stack) -> None:
    user = stack.user(4008)
    live_id = await _connected(stack, user)
    paper_id = await active_account_id(stack, 4008)
    await user.send("/accounts")
    listing = await user.next_message()
    await user.press(listing, text="Use ⚡ Binance …AB12")
    await user.press(await user.next_message(), text="✅ Confirm")
    switched = await user.next_message()
    assert await active_account_id(stack, 4008) == live_id

    await user.press(switched, text="🗑 Remove ⚡ Binance …AB12")
    card = await user.next_message()
    assert "Remove ⚡ Binance …AB12?" in card.text
    presses = await asyncio.gather(  # a double press removes once
        user.press(card, text="🗑 Yes, remove"), user.press(card, text="🗑 Yes, remove")
    )
    removed = await user.next_message()
    assert "removed. Paper trading is active again" in removed.text
    assert "Binance" not in removed.text.split("\n\n", 1)[1]
    answers = [await user.callback_answer(q) for q in presses]
    assert sum("no longer exists" in (a.get("text") or "") for a in answers) == 1
    assert await active_account_id(stack, 4008) == paper_id
    [row] = await live_rows(stack)
    assert row.removed_at is not None and row.api_key_enc is None and row.secret_enc is None
    assert await audit_count(stack, "account.removed") == 1


# ------------------------------------------------------------------------------------------- master key


async def test_rotating_the_master_key_re_encrypts_every_secret(stack: Stack) -> None:
    user = stack.user(4009)
    keys = [new_key("binance"), new_key("kucoin")]
    for key in keys:
        register(stack, key)
        await connect(user, key)
    before = {r.id: (r.api_key_enc, r.secret_enc, r.passphrase_enc) for r in await live_rows(stack)}

    rotating = SecretBox(f"{NEW_MASTER},{OLD_MASTER}")
    async with stack.app.session_factory() as session:
        report = await AccountService(session, stack.app.exchanges, rotating).rotate_keys()
    assert (report.accounts, report.rotated, report.failed) == (2, 5, 0)
    rows = await live_rows(stack)
    for row in rows:
        for token, old in zip(
            (row.api_key_enc, row.secret_enc, row.passphrase_enc), before[row.id], strict=True
        ):
            assert (token is None) == (old is None)
            if token is not None:
                assert token != old and not rotating.needs_rotation(token)

    new_only = SecretBox(NEW_MASTER)
    async with stack.app.session_factory() as session:
        service = AccountService(session, stack.app.exchanges, new_only)
        for key, row in zip(keys, rows, strict=True):
            credentials = await service.credentials(row.id)
            assert (credentials.api_key, credentials.secret, credentials.passphrase) == (
                key.api_key,
                key.secret,
                key.passphrase,
            )
        again = await AccountService(session, stack.app.exchanges, new_only).rotate_keys()
        assert (again.rotated, again.failed) == (0, 0)
        with pytest.raises(CredentialsUnreadable):
            await AccountService(session, stack.app.exchanges, SecretBox(OLD_MASTER)).credentials(rows[0].id)
