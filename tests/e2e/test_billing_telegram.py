"""Credits and plans paid with Telegram Stars end to end through the emulator's payment flow, and credits
at work on live trades: profit consumes them, debt and an empty balance block new live entries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from db.models import CreditEntry, Purchase, Subscription
from sandbox.telegram.client import BotMessage, ChatUser, PaymentResult
from tests.e2e.test_trading_live import go_live
from tests.stack import Stack, bot_stack

ADMIN = 9900


@pytest.fixture
async def stack(tmp_path: Path, database_url: str) -> AsyncIterator[Stack]:
    async with bot_stack(tmp_path, database_url=database_url, exchanges=True, admin_ids=[ADMIN]) as stack:
        yield stack


async def entries(stack: Stack) -> int:
    async with stack.app.session_factory() as session:
        return int(await session.scalar(select(func.count(CreditEntry.id))) or 0)


async def buy_pack_with_stars(stack: Stack, user_id: int) -> tuple[ChatUser, BotMessage, PaymentResult]:
    user = stack.user(user_id)
    await user.send("/buy_credits")
    packs = await user.next_message()
    assert "Buy credits" in packs.text
    assert "⭐ 100 credits · 500 Stars" in packs.button_texts, packs.button_texts
    await user.press(packs, text="⭐ 100 credits · 500 Stars")
    invoice = await user.next_message(timeout=10)
    assert invoice.invoice is not None and invoice.invoice["currency"] == "XTR"
    assert invoice.invoice["total_amount"] == 500
    paid = await user.pay(invoice)
    return user, invoice, paid


async def test_a_credit_pack_paid_with_stars_grants_once(stack: Stack) -> None:
    user, _, paid = await buy_pack_with_stars(stack, 9101)
    assert paid.paid, paid
    assert paid.answer_seconds is not None and paid.answer_seconds < 2
    thanks = await user.next_message(timeout=10)
    assert "Payment received" in thanks.text and "+100 credits" in thanks.text
    assert await entries(stack) == 1

    charge = paid.telegram_payment_charge_id
    assert charge is not None
    await stack.client.redeliver_payment(charge, same_update_id=True)
    await stack.client.redeliver_payment(charge, same_update_id=False)
    await user.expect_silence(1.0)
    assert await entries(stack) == 1

    await user.send("/credits")
    credits = await user.next_message()
    assert "Balance: 100 credits" in credits.text and "purchase · +100.00" in credits.text


async def test_an_already_paid_purchase_is_refused_at_pre_checkout(stack: Stack) -> None:
    user, invoice, paid = await buy_pack_with_stars(stack, 9102)
    assert paid.paid
    await user.next_message(timeout=10)
    again = await user.pay(invoice)
    assert not again.paid and "already paid" in (again.error_message or "")
    assert await entries(stack) == 1
    async with stack.app.session_factory() as session:
        [purchase] = (await session.scalars(select(Purchase))).all()
    assert purchase.status == "paid" and purchase.provider_charge_id == paid.telegram_payment_charge_id


async def test_a_plan_paid_with_stars(stack: Stack) -> None:
    user = stack.user(9103)
    await user.send("/plans")
    plans = await user.next_message()
    assert "Basic" in plans.text and "Pro" in plans.text
    assert "⭐ Basic · 1450 Stars" in plans.button_texts
    assert not any("Enterprise" in b and "Stars" in b for b in plans.button_texts)  # above one Stars payment
    await user.press(plans, text="⭐ Basic · 1450 Stars")
    invoice = await user.next_message(timeout=10)
    paid = await user.pay(invoice)
    assert paid.paid
    done = await user.next_message(timeout=10)
    assert "Basic is active until" in done.text and "+100 credits" in done.text
    await user.send("/plan")
    plan = await user.next_message()
    assert "Your plan: Basic" in plan.text and "AI signals today: 0 of 20" in plan.text
    async with stack.app.session_factory() as session:
        sub = await session.scalar(select(Subscription))
    assert sub is not None and sub.plan == "basic" and sub.status == "active"


async def test_admin_refund_reverses_the_grant_and_tells_the_payer_once(stack: Stack) -> None:
    payer, _, _ = await buy_pack_with_stars(stack, 9104)
    await payer.next_message(timeout=10)
    admin = stack.user(ADMIN)
    await admin.send("/refund 1")
    reply = await admin.next_message(timeout=10)
    assert "Purchase #1 refunded" in reply.text and "100" in reply.text
    told = await payer.next_message(timeout=10)
    assert "refunded" in told.text
    await payer.expect_silence(1.0)
    async with stack.app.session_factory() as session:
        purchase = await session.get(Purchase, 1)
    assert purchase is not None and purchase.status == "refunded"
    await payer.send("/credits")
    assert "Balance: 0 credits" in (await payer.next_message()).text
    stranger = stack.user(9105)
    await stranger.send("/refund 1")
    assert "administrators" in (await stranger.next_message()).text


async def test_live_trading_needs_a_plan(stack: Stack) -> None:
    from tests.e2e.test_accounts_live import BUTTON, connect, new_key

    user = stack.user(9106)
    key = new_key("binance")
    stack.exchanges["binance"].add_account(key.api_key, key.secret, balances={"USDT": 1000})
    outcome, _ = await connect(user, key)
    assert "connected" in outcome.text
    await user.send("/accounts")
    listing = await user.next_message()
    await user.press(listing, text=f"Use ⚡ {BUTTON['binance']} …AB12")
    refusal = await user.next_message(timeout=10)
    assert "Live trading is not part of your plan (Free)" in refusal.text and "Basic" in refusal.text
    assert "📋 Plans" in refusal.button_texts


async def test_live_profit_consumes_credits_and_debt_blocks_new_entries(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True) as stack:
        user = stack.user(9107)
        await go_live(stack, user, "binance")  # Pro with 500 credits
        market = stack.exchanges["binance"].market
        await user.send("/buy BTC 2000")
        await user.press(await user.next_message(timeout=10), text="✅ Confirm")
        assert "Bought" in (await user.next_message(timeout=15)).text
        market.set_price("BTC/USDT", market.price("BTC/USDT") * D("1.5"))  # ~ +1000 USDT
        await asyncio.sleep(0.5)  # past the order book cache
        await user.send("/close BTC")
        await user.press(await user.next_message(timeout=10), text="✅ Confirm")
        sold = await user.next_message(timeout=15)
        assert "Sold" in sold.text, sold.text
        await user.send("/credits")
        credits = await user.next_message()
        assert "Balance: 0 credits" in credits.text and "profit covered" in credits.text, credits.text
        assert "New live trades need credits" in credits.text
        await user.send("/buy BTC 50")
        refusal = await user.next_message(timeout=10)
        assert "New live trades need credits" in refusal.text and "🪙 Buy credits" in refusal.button_texts


async def test_a_card_invoice_through_telegram_payments(tmp_path: Path, sqlite_url: str) -> None:
    token = SecretStr("284685063:TEST:cryptouniverse")
    async with bot_stack(tmp_path, database_url=sqlite_url, payments_provider_token=token) as stack:
        user = stack.user(9108)
        await user.send("/buy_credits")
        packs = await user.next_message()
        assert "💳 500 credits · $50.00" in packs.button_texts, packs.button_texts
        await user.press(packs, text="💳 500 credits · $50.00")
        invoice = await user.next_message(timeout=10)
        assert invoice.invoice is not None
        assert invoice.invoice["currency"] == "USD" and invoice.invoice["total_amount"] == 5000
        paid = await user.pay(invoice)
        assert paid.paid, paid
        thanks = await user.next_message(timeout=10)
        assert "+500 credits" in thanks.text
        async with stack.app.session_factory() as session:
            [purchase] = (await session.scalars(select(Purchase))).all()
        assert purchase.provider == "telegram_fiat" and purchase.status == "paid"
