"""A plan bought by card through Stripe Checkout, end to end: the button in Telegram, the Checkout session on
the local Stripe API (real stripe-python), the signed webhook to the bot's own web server, the plan and
its credits, and the user told in Telegram."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import func, select

from db.models import CreditEntry, Subscription
from sandbox.stripe import StripeEmulator
from tests.stack import bot_stack

WEBHOOK_SECRET = "whsec_cryptouniverse_e2e"


async def test_a_plan_bought_through_stripe_checkout(tmp_path: Path, database_url: str) -> None:
    async with StripeEmulator(seed=3) as stripe_api, bot_stack(
        tmp_path,
        database_url=database_url,
        exchanges=True,
        stripe_secret_key=SecretStr(stripe_api.api_key),
        stripe_webhook_secret=SecretStr(WEBHOOK_SECRET),
        stripe_api_base=stripe_api.base_url,
    ) as stack:
        stripe_api.add_webhook_endpoint(stack.running.base_url + "/stripe/webhook", secret=WEBHOOK_SECRET)
        user = stack.user(9201)
        await user.send("/plans")
        plans = await user.next_message()
        assert "💳 Basic · $29.00 (card)" in plans.button_texts
        await user.press(plans, text="💳 Basic · $29.00 (card)")
        checkout = await user.next_message(timeout=10)
        [[(label, url)]] = checkout.buttons
        assert label == "💳 Pay $29.00" and url is not None and "/checkout/cs_" in url
        session_id = url.rsplit("/", 1)[-1]

        stripe_api.pay_checkout_session(session_id)
        await stripe_api.wait_for_webhooks()
        told = await user.next_message(timeout=15)
        assert "Basic plan is active until" in told.text and "100 credits" in told.text, told.text
        await user.expect_silence(1.0)  # completed session and first invoice: one grant, one notice

        async with stack.app.session_factory() as session:
            sub = await session.scalar(select(Subscription))
            grants = await session.scalar(select(func.count(CreditEntry.id)))
        assert sub is not None and sub.plan == "basic" and sub.stripe_subscription_id
        assert grants == 1
        await user.send("/plan")
        assert "Your plan: Basic" in (await user.next_message()).text
