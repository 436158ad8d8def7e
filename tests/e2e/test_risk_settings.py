"""Risk limits end to end: Telegram emulator -> the real bot -> the paper account on the Binance emulator.
A user sees and changes their own limits (buttons and /risk), within their plan's ceilings; buys are
checked against the limits in force, which follow the plan at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import select, update

from db.models import AuditLog, Order, Subscription, TradingProfile, User
from sandbox.telegram.client import BotMessage, ChatUser
from tests.e2e.test_accounts_live import give_plan
from tests.stack import Stack, bot_stack


@pytest.fixture
async def stack(tmp_path: Path, database_url: str) -> AsyncIterator[Stack]:
    async with bot_stack(tmp_path, database_url=database_url, exchanges=True) as stack:
        yield stack


async def reply(user: ChatUser, text: str) -> BotMessage:
    await user.send(text)
    return await user.next_message(timeout=10)


async def own_limits(stack: Stack, telegram_id: int) -> tuple[D, int, D]:
    async with stack.app.session_factory() as session:
        row = await session.scalar(
            select(TradingProfile)
            .join(User, User.id == TradingProfile.user_id)
            .where(User.telegram_id == telegram_id)
        )
        assert row is not None
        return row.max_position_pct, row.max_open_positions, row.max_daily_loss_pct


async def changes(stack: Stack) -> list[dict[str, str]]:
    async with stack.app.session_factory() as session:
        rows = await session.scalars(select(AuditLog).where(AuditLog.action == "risk.limit_changed"))
        return [row.details for row in rows]


async def order_count(stack: Stack) -> int:
    async with stack.app.session_factory() as session:
        return len((await session.scalars(select(Order))).all())


async def test_a_free_user_lowers_the_position_size_by_button_and_buys_are_held_to_it(stack: Stack) -> None:
    user = stack.user(7001)
    settings = await reply(user, "/settings")
    assert "🛡 Risk limits" in settings.button_texts and "🌐 Language" in settings.button_texts
    await user.press(settings, text="🛡 Risk limits")
    card = await user.next_message()
    assert card.message_id == settings.message_id  # edited in place
    assert "Risk limits" in card.text and "plan Free" in card.text
    assert "Position size: 25% of equity (yours 25% · plan ceiling 25%)" in card.text
    assert "Open positions: 10 at most" in card.text and "Daily loss: 5%" in card.text
    assert card.button_texts == ["📏 Position size", "🔢 Open positions", "📉 Daily loss", "« Back"]

    await user.press(card, text="📏 Position size")
    presets = await user.next_message()
    assert "your Free plan allows up to 25%" in presets.text
    assert presets.button_texts == ["5%", "10%", "✓ 25%", "🔒 35%", "🔒 50%", "« Back"]
    locked = await user.press(presets, text="🔒 35%")
    alert = await user.callback_answer(locked)
    assert alert["show_alert"] and "Your Free plan allows positions of at most 25%" in alert["text"]
    upsell = await user.next_message()
    assert "Basic allows more" in upsell.text and upsell.button_texts == ["📋 Plans"]
    assert await own_limits(stack, 7001) == (D(25), 10, D(5))

    await user.press(presets, text="10%")
    saved = await user.next_message()
    assert "✅ Position size limit set to 10%." in saved.text
    assert "Position size: 10% of equity (yours 10% · plan ceiling 25%)" in saved.text
    assert await own_limits(stack, 7001) == (D(10), 10, D(5))
    assert await changes(stack) == [{"setting": "position", "old": "25", "new": "10"}]

    refusal = await reply(user, "/buy BTC 1500")  # 15% of 10,000 USDT: within 25%, above 10%
    assert "Position size limit" in refusal.text and "your limit is 10%" in refusal.text
    assert refusal.button_texts == []
    card = await reply(user, "/buy BTC 500")
    assert "Buy BTC/USDT" in card.text and card.button_texts == ["✅ Confirm", "✖️ Cancel"]
    assert await order_count(stack) == 0


async def test_a_ceiling_is_refused_with_the_plans_button_until_an_upgrade_and_a_downgrade_clamps(
    stack: Stack,
) -> None:
    user = stack.user(7002)
    refusal = await reply(user, "/risk positions 30")
    assert "Your Free plan allows at most 10 open positions; you asked for 30" in refusal.text
    assert "Pro allows more" in refusal.text and "Nothing was changed" in refusal.text
    assert refusal.button_texts == ["📋 Plans"]
    assert "plan ceiling 10" in (await reply(user, "/risk")).text
    assert await changes(stack) == []

    for text, expected in [
        ("/risk positions 0", "not a valid number of open positions"),
        ("/risk position -5", "not a valid position size"),
        ("/risk daily 1e9", "not a valid daily loss limit"),
        ("/risk leverage 5", "Usage: /risk"),
        ("/risk position", "Usage: /risk"),
    ]:
        answer = await reply(user, text)
        assert expected in answer.text, (text, answer.text)
        assert answer.button_texts == []
    assert await own_limits(stack, 7002) == (D(25), 10, D(5))

    await give_plan(stack, 7002, "pro", credits=0)
    accepted = await reply(user, "/risk positions 30")
    assert "✅ Open positions limit set to 30." in accepted.text and "plan Pro" in accepted.text
    accepted = await reply(user, "/risk position 50")
    assert "Position size: 50% of equity (yours 50% · plan ceiling 50%)" in accepted.text
    assert await own_limits(stack, 7002) == (D(50), 30, D(5))
    card = await reply(user, "/buy BTC 3000")  # 30%: fine on Pro with 50%
    assert "Buy BTC/USDT" in card.text and card.button_texts == ["✅ Confirm", "✖️ Cancel"]

    async with stack.app.session_factory() as session:  # the subscription ends: back on Free
        await session.execute(update(Subscription).values(status="canceled"))
        await session.commit()
    clamped = await reply(user, "/risk")
    assert "plan Free" in clamped.text
    assert "Position size: 25% of equity (yours 50% · plan ceiling 25%) — capped by your plan" in clamped.text
    assert "Open positions: 10 at most (yours 30 · plan ceiling 10) — capped by your plan" in clamped.text
    assert await own_limits(stack, 7002) == (D(50), 30, D(5))  # the row is kept: an upgrade gives it back
    refusal = await reply(user, "/buy BTC 3000")
    assert "Position size limit" in refusal.text and "your limit is 25%" in refusal.text
