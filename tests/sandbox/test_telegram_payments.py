"""Telegram Payments in the Bot API emulator, driven by the real aiogram 3 Bot and Dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LabeledPrice,
    Message,
    PreCheckoutQuery,
    Update,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from sandbox.telegram import TelegramEmulator
from sandbox.telegram.client import EmulatorClient

USER = 1001
TEST_PROVIDER = "284685063:TEST:ZjQ1NzY4OTEyMzQ1"
WEBCHAT_JS = Path(__file__).resolve().parents[2] / "sandbox" / "telegram" / "webchat" / "webchat.js"
HARNESS = Path(__file__).with_name("webchat_invoice_harness.js")


@contextlib.asynccontextmanager
async def polling(dp: Dispatcher, bot: Bot, **kwargs: Any) -> AsyncIterator[None]:
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1, **kwargs))
    try:
        yield
    finally:
        with contextlib.suppress(RuntimeError):
            await dp.stop_polling()
        with contextlib.suppress(asyncio.CancelledError, RuntimeError):
            await asyncio.wait_for(task, 5)


class Shop:
    """A bot that sells things: answers pre-checkout queries as told and records successful payments."""

    def __init__(self, *, answer: str = "ok", delay: float = 0.0) -> None:
        self.answer = answer  # ok, decline, ignore
        self.delay = delay
        self.queries: list[PreCheckoutQuery] = []
        self.payments: list[tuple[int, Message]] = []  # (update_id, message)
        self.refunds: list[Message] = []
        self.router = Router()
        self.router.pre_checkout_query()(self.on_pre_checkout)
        self.router.message(F.successful_payment)(self.on_paid)
        self.router.message(F.refunded_payment)(self.on_refund)
        self.dp = Dispatcher()
        self.dp.include_router(self.router)

    async def on_pre_checkout(self, query: PreCheckoutQuery) -> None:
        self.queries.append(query)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.answer == "ok":
            await query.answer(ok=True)
        elif self.answer == "decline":
            await query.answer(ok=False, error_message="Sorry, the last one was just sold")

    async def on_paid(self, message: Message, event_update: Update) -> None:
        self.payments.append((event_update.update_id, message))
        assert message.successful_payment is not None
        await message.answer(f"Thanks for {message.successful_payment.invoice_payload}!")

    async def on_refund(self, message: Message) -> None:
        self.refunds.append(message)

    def dispatcher(self) -> Dispatcher:
        return self.dp


async def stars_invoice(bot: Bot, amount: int = 100, payload: str = "pro-30d") -> Message:
    return await bot.send_invoice(
        USER,
        title="Pro plan",
        description="30 days of Pro signals",
        payload=payload,
        currency="XTR",
        prices=[LabeledPrice(label="Pro, 30 days", amount=amount)],
    )


async def wait_until(condition: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


# ---------------------------------------------------------------------------------------------- invoices


async def test_stars_invoice_message(bot: Bot, client: EmulatorClient) -> None:
    user = client.user(USER, "Alice")
    await user.send("/buy")
    sent = await stars_invoice(bot)
    assert sent.invoice is not None
    assert sent.invoice.title == "Pro plan" and sent.invoice.description == "30 days of Pro signals"
    assert sent.invoice.currency == "XTR" and sent.invoice.total_amount == 100
    assert sent.invoice.start_parameter == ""
    assert sent.reply_markup is None  # Telegram's own "Pay" button is drawn by the app
    shown = await user.next_message()
    assert shown.message_id == sent.message_id and shown.invoice is not None
    assert shown.invoice["total_amount"] == 100
    invoices = await client.invoices()
    assert invoices[0]["payload"] == "pro-30d" and invoices[0]["message_id"] == sent.message_id


async def test_invoice_validation_matches_telegram(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    await client.user(USER).send("hi")
    usd = [LabeledPrice(label="Pro", amount=500)]
    stars = [LabeledPrice(label="Pro", amount=50)]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"currency": "USD", "prices": usd}, "PAYMENT_PROVIDER_INVALID"),
        ({"currency": "USD", "prices": usd, "provider_token": "not-a-token"}, "PAYMENT_PROVIDER_INVALID"),
        ({"currency": "XTR", "prices": stars, "provider_token": TEST_PROVIDER}, "STARS_INVOICE_INVALID"),
        ({"currency": "XTR", "prices": [*stars, *stars]}, "STARS_INVOICE_INVALID"),
        ({"currency": "XTR", "prices": stars, "max_tip_amount": 10}, "STARS_INVOICE_INVALID"),
        ({"currency": "XTR", "prices": []}, "there must be at least one price"),
        (
            {"currency": "XTR", "prices": [LabeledPrice(label="Free", amount=0)]},
            "total price must be positive",
        ),
        ({"currency": "ABC", "prices": usd, "provider_token": TEST_PROVIDER}, "CURRENCY_INVALID"),
        (
            {
                "currency": "USD",
                "prices": [LabeledPrice(label="x", amount=5)],
                "provider_token": TEST_PROVIDER,
            },
            "CURRENCY_TOTAL_AMOUNT_INVALID",
        ),
        ({"currency": "XTR", "prices": stars, "payload": "p" * 129}, "INVOICE_PAYLOAD_INVALID"),
        (
            {
                "currency": "XTR",
                "prices": stars,
                "reply_markup": InlineKeyboardMarkup(
                    inline_keyboard=[[InlineKeyboardButton(text="Buy", callback_data="buy")]]
                ),
            },
            "REPLY_MARKUP_BUY_EMPTY",
        ),
    ]
    for kwargs, error in cases:
        params: dict[str, Any] = {"title": "Pro", "description": "Pro plan", "payload": "p1", **kwargs}
        with pytest.raises(TelegramBadRequest, match=error):
            await bot.send_invoice(USER, **params)
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_invoice(4242, "Pro", "Pro plan", "p1", "XTR", stars)

    # what aiogram cannot even send: missing and malformed parameters
    url = f"{emu.base_url}/bot{emu.bot().token}/sendInvoice"
    async with aiohttp.ClientSession() as http:
        form = {"chat_id": str(USER), "description": "d", "payload": "p", "currency": "XTR", "prices": "[]"}
        async with http.post(url, data=form) as resp:
            assert resp.status == 400
            assert (await resp.json())["description"] == 'Bad Request: parameter "title" is required'
        async with http.post(url, data={**form, "title": "t", "prices": "{oops"}) as resp:
            assert (await resp.json())["description"] == "Bad Request: can't parse prices JSON object"

    # a fiat invoice with a provider token and a pay button first is fine
    pay_first = InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text="Pay $5", pay=True)],
            [InlineKeyboardButton(text="Details", callback_data="details")],
        ]
    )
    sent = await bot.send_invoice(
        USER, "Pro", "Pro plan", "p1", "USD", usd, provider_token=TEST_PROVIDER, reply_markup=pay_first
    )
    assert sent.invoice is not None and sent.invoice.currency == "USD"
    assert sent.reply_markup is not None and sent.reply_markup.inline_keyboard[0][0].pay is True


# ---------------------------------------------------------------------------------------------- paying


async def test_pay_stars_invoice_successful_payment(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    shop = Shop()
    user = client.user(USER, "Alice")
    await user.send("/buy")
    invoice = await stars_invoice(bot)
    async with polling(shop.dispatcher(), bot):
        result = await user.pay(await user.next_message())
        assert result.paid and result.reason is None
        thanks = await user.next_message()
    assert thanks.text == "Thanks for pro-30d!"
    query = shop.queries[0]
    assert query.from_user.id == USER and query.currency == "XTR"
    assert query.total_amount == 100 and query.invoice_payload == "pro-30d"
    assert result.answer_seconds is not None and 0 <= result.answer_seconds < 5

    update_id, message = shop.payments[0]
    assert update_id == result.update_id
    assert message.from_user is not None and message.from_user.id == USER
    payment = message.successful_payment
    assert payment is not None
    assert payment.currency == "XTR" and payment.total_amount == 100
    assert payment.invoice_payload == "pro-30d"
    assert payment.telegram_payment_charge_id == result.telegram_payment_charge_id
    assert payment.telegram_payment_charge_id.startswith("stx")
    assert payment.provider_payment_charge_id == ""  # none for Telegram Stars

    recorded = await client.payments()
    assert [(p["status"], p["total_amount"], p["invoice_message_id"]) for p in recorded] == [
        ("paid", 100, invoice.message_id)
    ]
    assert [e["status"] for e in user.payment_events] == ["paid"]
    assert len(emu.payments(user_id=USER)) == 1

    # the same invoice can be paid again: a new, different charge
    async with polling(shop.dispatcher(), bot):
        again = await user.pay(invoice.message_id)
        await user.next_message()
    assert again.paid and again.telegram_payment_charge_id != result.telegram_payment_charge_id


async def test_declined_pre_checkout_means_no_payment(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    shop = Shop(answer="decline")
    user = client.user(USER)
    await user.send("/buy")
    invoice = await stars_invoice(bot)
    await user.next_message()
    async with polling(shop.dispatcher(), bot):
        result = await user.pay(invoice.message_id)
        await user.expect_silence(0.3)
    assert not result.paid
    assert result.reason == "declined" and result.error_message == "Sorry, the last one was just sold"
    assert result.telegram_payment_charge_id is None and result.message is None
    assert shop.payments == []
    assert await client.payments() == []
    queries = await client.pre_checkout_queries()
    assert [(q["status"], q["ok"], q["error_message"]) for q in queries] == [
        ("declined", False, "Sorry, the last one was just sold")
    ]
    await user.refresh()
    assert user.payment_events[-1]["status"] == "failed"
    assert user.payment_events[-1]["error_message"] == "Sorry, the last one was just sold"
    # a refusal needs a reason
    with pytest.raises(TelegramBadRequest, match="error_message must be non-empty"):
        await bot.answer_pre_checkout_query(result.pre_checkout_query_id, ok=False)


async def test_unanswered_pre_checkout_times_out(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    emu.settings.pre_checkout_timeout = 0.3
    user = client.user(USER)
    await user.send("/buy")
    invoice = await stars_invoice(bot)
    started = asyncio.get_running_loop().time()
    result = await user.pay(invoice.message_id)
    waited = asyncio.get_running_loop().time() - started
    assert not result.paid and result.reason == "timeout" and result.answer_seconds is None
    assert result.error_message
    assert 0.25 <= waited < 3
    # the query was delivered; answering it now is too late
    updates = await bot.get_updates()
    query = next(u.pre_checkout_query for u in updates if u.pre_checkout_query)
    assert query.id == result.pre_checkout_query_id
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_pre_checkout_query(query.id, ok=True)
    assert [q["status"] for q in await client.pre_checkout_queries()] == ["timeout"]
    assert emu.payments() == []


async def test_answer_time_is_measured(emu: TelegramEmulator, bot: Bot, client: EmulatorClient) -> None:
    emu.settings.pre_checkout_timeout = 3.0
    shop = Shop(delay=0.4)
    user = client.user(USER)
    await user.send("/buy")
    invoice = await stars_invoice(bot)
    async with polling(shop.dispatcher(), bot):
        result = await user.pay(invoice.message_id)
    assert result.paid
    assert result.answer_seconds is not None and 0.4 <= result.answer_seconds < 3.0
    records = emu.pre_checkout_queries()
    assert records[0].answer_seconds == pytest.approx(result.answer_seconds)
    assert (await client.pre_checkout_queries())[0]["answer_seconds"] == pytest.approx(result.answer_seconds)


async def test_filtered_pre_checkout_query_times_out(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    """Like Telegram: a bot that leaves pre_checkout_query out of allowed_updates never sees the query."""
    emu.settings.pre_checkout_timeout = 0.3
    shop = Shop()
    user = client.user(USER)
    await user.send("/buy")
    invoice = await stars_invoice(bot)
    await bot.get_updates(timeout=0, allowed_updates=["message"])  # applies to updates queued from now on
    async with polling(shop.dispatcher(), bot, allowed_updates=["message"]):
        result = await user.pay(invoice.message_id)
    assert result.reason == "timeout" and shop.queries == []
    # with the dispatcher's own list (it has a pre_checkout_query handler) the payment goes through
    emu.settings.pre_checkout_timeout = 5.0
    used = shop.dispatcher().resolve_used_update_types()
    assert "pre_checkout_query" in used
    await bot.get_updates(timeout=0, allowed_updates=used)
    async with polling(shop.dispatcher(), bot):
        assert (await user.pay(invoice.message_id)).paid
        await user.next_message()
    assert len(shop.payments) == 1


async def test_fiat_invoice_with_tip_and_order_info(bot: Bot, client: EmulatorClient) -> None:
    shop = Shop()
    user = client.user(USER, "Alice")
    await user.send("/buy")
    invoice = await bot.send_invoice(
        USER,
        "Signals",
        "A month of signals",
        "sig-1",
        "USD",
        [LabeledPrice(label="Signals", amount=999), LabeledPrice(label="VAT", amount=200)],
        provider_token=TEST_PROVIDER,
        max_tip_amount=500,
        suggested_tip_amounts=[100, 300],
        need_name=True,
        need_email=True,
    )
    assert invoice.invoice is not None and invoice.invoice.total_amount == 1199
    async with polling(shop.dispatcher(), bot):
        result = await user.pay(invoice.message_id, tip_amount=100, order_info={"email": "alice@example.com"})
        await user.next_message()
    assert result.paid
    query = shop.queries[0]
    assert query.total_amount == 1299 and query.order_info is not None
    assert query.order_info.name == "Alice" and query.order_info.email == "alice@example.com"
    payment = shop.payments[0][1].successful_payment
    assert payment is not None and payment.total_amount == 1299 and payment.currency == "USD"
    assert payment.provider_payment_charge_id.startswith("ch_")
    assert payment.order_info is not None and payment.order_info.email == "alice@example.com"
    # refunds through the Bot API are for Telegram Stars only
    with pytest.raises(TelegramBadRequest, match="CHARGE_NOT_FOUND"):
        await bot.refund_star_payment(USER, payment.telegram_payment_charge_id)


# ---------------------------------------------------------------------------------------------- links


async def test_invoice_link_and_subscription(bot: Bot, client: EmulatorClient) -> None:
    shop = Shop()
    user = client.user(USER)
    await user.send("/start")
    link = await bot.create_invoice_link(
        "Credits", "100 credits", "credits-100", "XTR", [LabeledPrice(label="100 credits", amount=75)]
    )
    assert link.startswith("https://t.me/$")
    sub = await bot.create_invoice_link(
        "Pro monthly",
        "Pro, renewed monthly",
        "pro-sub",
        "XTR",
        [LabeledPrice(label="Pro", amount=250)],
        subscription_period=2592000,
    )
    with pytest.raises(TelegramBadRequest, match="SUBSCRIPTION_PERIOD_INVALID"):
        await bot.create_invoice_link(
            "Pro", "Pro", "pro", "XTR", [LabeledPrice(label="Pro", amount=250)], subscription_period=3600
        )
    with pytest.raises(TelegramBadRequest, match="PAYMENT_PROVIDER_INVALID"):
        await bot.create_invoice_link("Pro", "Pro", "pro", "EUR", [LabeledPrice(label="Pro", amount=250)])

    async with polling(shop.dispatcher(), bot):
        first = await user.pay(link)
        await user.next_message()
        second = await user.pay(sub)
        await user.next_message()
    assert first.paid and second.paid
    plain = shop.payments[0][1].successful_payment
    recurring = shop.payments[1][1].successful_payment
    assert plain is not None and plain.invoice_payload == "credits-100" and plain.total_amount == 75
    assert plain.is_recurring is None
    assert recurring is not None and recurring.is_recurring and recurring.is_first_recurring
    assert recurring.subscription_expiration_date is not None
    with pytest.raises(Exception, match="invoice link not found"):
        await user.pay("https://t.me/$doesnotexist")


# ---------------------------------------------------------------------------------------------- refunds


async def test_refund_star_payment(emu: TelegramEmulator, bot: Bot, client: EmulatorClient) -> None:
    shop = Shop()
    user = client.user(USER)
    await user.send("/buy")
    invoice = await stars_invoice(bot, amount=40)
    async with polling(shop.dispatcher(), bot):
        result = await user.pay(invoice.message_id)
        await user.next_message()
        charge = result.telegram_payment_charge_id
        assert charge is not None
        assert (await bot.get_my_star_balance()).amount == 40
        assert await bot.refund_star_payment(USER, charge)
        await wait_until(lambda: shop.refunds)
    refunded = shop.refunds[0].refunded_payment
    assert refunded is not None
    assert refunded.telegram_payment_charge_id == charge and refunded.total_amount == 40
    assert refunded.currency == "XTR" and refunded.invoice_payload == "pro-30d"
    assert [p["status"] for p in await client.payments()] == ["refunded"]
    await user.refresh()
    assert user.payment_events[-1]["status"] == "refunded"

    with pytest.raises(TelegramBadRequest, match="CHARGE_ALREADY_REFUNDED"):
        await bot.refund_star_payment(USER, charge)
    with pytest.raises(TelegramBadRequest, match="CHARGE_NOT_FOUND"):
        await bot.refund_star_payment(USER, "stxNoSuchCharge")
    await client.user(2002).send("hi")
    with pytest.raises(TelegramBadRequest, match="CHARGE_NOT_FOUND"):
        await bot.refund_star_payment(2002, charge)  # someone else's charge
    with pytest.raises(TelegramBadRequest, match="USER_ID_INVALID"):
        await bot.refund_star_payment(3003, charge)  # a user the bot never met
    transactions = (await bot.get_star_transactions()).transactions
    assert [(t.id, t.amount, t.source is not None, t.receiver is not None) for t in transactions] == [
        (charge, 40, True, False),
        (charge, 40, False, True),
    ]
    assert (await bot.get_my_star_balance()).amount == 0


# ---------------------------------------------------------------------------------------------- idempotency


async def test_redelivered_successful_payment(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    shop = Shop()
    user = client.user(USER)
    await user.send("/buy")
    invoice = await stars_invoice(bot)
    async with polling(shop.dispatcher(), bot):
        result = await user.pay(invoice.message_id)
        await user.next_message()
        charge = result.telegram_payment_charge_id
        assert charge is not None and result.update_id is not None
        # the very same update again (as after a webhook timeout) ...
        assert await client.redeliver_payment(charge) == result.update_id
        await wait_until(lambda: len(shop.payments) == 2)
        # ... and a second update carrying the same charge
        new_id = await client.redeliver_payment(charge, same_update_id=False)
        await wait_until(lambda: len(shop.payments) == 3)
    assert new_id > result.update_id
    update_ids = [update_id for update_id, _ in shop.payments]
    assert update_ids == [result.update_id, result.update_id, new_id]
    charges = {
        m.successful_payment.telegram_payment_charge_id for _, m in shop.payments if m.successful_payment
    }
    assert charges == {charge}
    assert len(await client.payments()) == 1  # still one payment


async def test_payment_over_webhook_with_answer_in_response(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    shop = Shop()
    dp = shop.dispatcher()
    app = web.Application()
    SimpleRequestHandler(dp, bot, handle_in_background=False).register(app, path="/webhook")
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    received: list[dict[str, Any]] = []
    try:
        await bot.set_webhook(
            f"http://127.0.0.1:{port}/webhook", allowed_updates=dp.resolve_used_update_types()
        )
        assert "pre_checkout_query" in ((await bot.get_webhook_info()).allowed_updates or [])
        user = client.user(USER)
        await user.send("/buy")
        invoice = await stars_invoice(bot)
        assert (await user.next_message()).invoice is not None
        result = await user.pay(invoice.message_id)
        assert result.paid
        assert (await user.next_message()).text == "Thanks for pro-30d!"
        # a redelivery of the same update reaches the webhook again
        assert result.telegram_payment_charge_id is not None
        await client.redeliver_payment(result.telegram_payment_charge_id)
        await wait_until(lambda: len(shop.payments) == 2)
        assert shop.payments[0][0] == shop.payments[1][0]
        received.extend(call.params for call in emu.calls_of("answerPreCheckoutQuery"))
    finally:
        await bot.delete_webhook()
        await runner.cleanup()
    assert received and received[0]["ok"] in (True, "true", "True")


async def test_redeliver_update_via_get_updates(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    user = client.user(USER)
    await user.send("hello")
    first = await bot.get_updates()
    assert len(first) == 1
    confirmed = await bot.get_updates(offset=first[0].update_id + 1, timeout=0)
    assert confirmed == []
    raw = first[0].model_dump(mode="json", by_alias=True, exclude_none=True)
    assert await client.redeliver_update(raw) == first[0].update_id
    assert (await client.bot_state())["pending"] == 1
    again = await bot.get_updates(offset=first[0].update_id + 1, timeout=0)
    assert [u.update_id for u in again] == [first[0].update_id]
    assert again[0].message is not None and again[0].message.text == "hello"
    assert await bot.get_updates(offset=first[0].update_id + 1, timeout=0) == []


# ---------------------------------------------------------------------------------------------- web chat


async def test_control_chat_shows_invoice_and_outcome(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    """What the web chat reads: the invoice message and the payment events of the chat."""
    emu.settings.pre_checkout_timeout = 0.3
    user = client.user(USER)
    await user.send("/buy")
    invoice = await stars_invoice(bot, amount=25)
    await client.post("pay", {"user_id": USER, "message_id": invoice.message_id})  # nobody answers
    chat = await client.request("GET", "chat", params={"user_id": USER, "since": 0})
    kinds = [(e["type"], e.get("status")) for e in chat["events"]]
    assert ("payment", "failed") in kinds
    shown = next(e["message"] for e in chat["events"] if e["type"] == "message" and "invoice" in e["message"])
    assert shown["invoice"] == {
        "title": "Pro plan",
        "description": "30 days of Pro signals",
        "start_parameter": "",
        "currency": "XTR",
        "total_amount": 25,
    }


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_webchat_invoice_cards_without_a_browser() -> None:
    """The web chat's own script, run by Node on a minimal DOM against a scripted control API."""
    done = subprocess.run(
        ["node", str(HARNESS), str(WEBCHAT_JS)], check=True, capture_output=True, text=True, timeout=60
    )
    shown = json.loads(done.stdout)
    stars, fiat = shown["before"]["5"], shown["before"]["6"]
    assert (stars["title"], stars["description"], stars["amount"]) == (
        "Pro plan",
        "30 days of Pro signals",
        "⭐ 100",
    )
    assert stars["payButtons"] == ["Pay ⭐ 100"] and stars["statusHidden"]
    assert fiat["amount"] == "$12.99"
    assert fiat["payButtons"] == ["Pay now"]  # the bot's own pay button replaces the default one
    assert [call["message_id"] for call in shown["payCalls"]] == [5, 6]
    assert shown["after"]["5"] == {"status": "Paid ✓", "hidden": False, "state": "paid"}
    assert shown["after"]["6"] == {"status": "Payment failed: Sold out", "hidden": False, "state": "failed"}
    assert shown["service"] == ["You successfully transferred ⭐ 100 to Shop"]
    assert shown["toasts"] == ["Payment successful: ⭐ 100"]
    assert shown["alert"] == "Sold out"  # the bot's error_message, as Telegram shows it


# ---------------------------------------------------------------------------------------------- browser


@pytest.fixture
def chromium_path() -> str:
    path = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else shutil.which("chromium")
    path = path or shutil.which("chromium-browser")
    if path is None:
        reason = "Chromium is not installed (/usr/bin/chromium): `apt-get install -y chromium` to run these"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.mark.browser
async def test_webchat_invoice_card_and_pay_button(
    chromium_path: str, emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    from playwright.async_api import async_playwright, expect

    shop = Shop()
    await client.user(USER, "Alice").send("/buy")
    invoice = await stars_invoice(bot, amount=100)
    async with polling(shop.dispatcher(), bot), async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium_path, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page()
            page.set_default_timeout(10_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{emu.base_url}/?poll_timeout=2&user_id={USER}")
            card = page.locator(f'[data-message-id="{invoice.message_id}"] [data-testid="invoice-card"]')
            await expect(card.get_by_test_id("invoice-title")).to_have_text("Pro plan")
            await expect(card.get_by_test_id("invoice-description")).to_have_text("30 days of Pro signals")
            await expect(card.get_by_test_id("invoice-amount")).to_have_text("⭐ 100")
            await card.get_by_test_id("invoice-pay-button").click()
            await expect(card.get_by_test_id("invoice-status")).to_contain_text("Paid")
            await expect(page.get_by_test_id("payment-service").first).to_contain_text("⭐ 100")
            await expect(
                page.locator('[data-testid="message"][data-from="bot"]').last.get_by_test_id("message-text")
            ).to_have_text("Thanks for pro-30d!")
            assert not errors, errors
        finally:
            await browser.close()
    assert len(shop.payments) == 1
