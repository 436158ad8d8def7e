"""The outbound sender end to end: a real aiogram Bot over HTTP against the Telegram emulator.

Nothing lost, nothing doubled, each chat's order kept; Telegram's rates never exceeded (read back from the
emulator's call log); 429s waited out; blocked and unknown chats dropped; network errors retried.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import struct
import time
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import BufferedInputFile

from bot.metrics import Metrics
from bot.notifier import TelegramNotifier
from bot.sender import Delivery, DeliveryStatus, Sender, SendLimits
from sandbox.telegram import TelegramEmulator
from sandbox.telegram.state import ApiCall
from services.i18n import I18n

FIRST_USER = 700_000_001
FIRST_GROUP = -1_001_000_000_001


@pytest.fixture
async def emu() -> AsyncIterator[TelegramEmulator]:
    emulator = TelegramEmulator()
    await emulator.start()
    emulator.add_bot(username="cryptouniverse_bot", first_name="CryptoUniverse")
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest.fixture
async def bot(emu: TelegramEmulator) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(emu.base_url))
    instance = Bot(emu.bot().token, session=session, default=DefaultBotProperties(parse_mode="HTML"))
    try:
        yield instance
    finally:
        await instance.session.close()


def add_chats(emu: TelegramEmulator, users: int, groups: int = 0) -> list[int]:
    chats = []
    for n in range(users):
        emu.add_user(FIRST_USER + n, f"User{n}", language_code="en")
        chats.append(FIRST_USER + n)
    for n in range(groups):
        emu.add_group(FIRST_GROUP - n, f"Group {n}")
        chats.append(FIRST_GROUP - n)
    return chats


def texts(emu: TelegramEmulator, chat_id: int) -> list[str]:
    return [m.get("text", "") for m in emu.messages(chat_id) if (m.get("from") or {}).get("is_bot")]


def sends(emu: TelegramEmulator) -> list[ApiCall]:
    return emu.calls_of("sendMessage")


def max_in_window(times: Sequence[float], window: float) -> int:
    ordered = sorted(times)
    best = start = 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def retry_after_of(call: ApiCall) -> int | None:
    found = re.search(r"retry after (\d+)", call.error or "")
    return int(found.group(1)) if found else None


async def burst(sender: Sender, plan: Sequence[int]) -> tuple[dict[int, list[str]], list[Delivery]]:
    """Queue one message per entry of ``plan`` (a chat id each), numbered per chat; wait for them all."""
    expected: dict[int, list[str]] = defaultdict(list)
    futures = []
    for chat_id in plan:
        text = f"m{len(expected[chat_id]) + 1} for {chat_id}"
        expected[chat_id].append(text)
        futures.append(sender.send_text(chat_id, text))
    return expected, list(await asyncio.gather(*futures))


def assert_all_delivered_in_order(emu: TelegramEmulator, expected: dict[int, list[str]]) -> None:
    for chat_id, wanted in expected.items():
        assert texts(emu, chat_id) == wanted, chat_id


# ----------------------------------------------------------------------------------------- the limits


@pytest.mark.slow
async def test_a_thousand_notifications_to_300_chats_at_telegram_s_real_limits(
    emu: TelegramEmulator, bot: Bot
) -> None:
    """Telegram's limits, enforced by the emulator as well: the sender never meets a 429."""
    chats = add_chats(emu, users=290, groups=10)
    rng = random.Random(1000)
    plan = chats + [rng.choice(chats) for _ in range(700)]
    rng.shuffle(plan)
    emu.set_rate_limits(per_chat=3, per_bot=30)
    metrics = Metrics()
    sender = Sender(bot, metrics=metrics)  # Telegram's limits: 30/s, 1/s per chat with a burst of 3
    sender.start()
    started = time.monotonic()
    try:
        expected, results = await burst(sender, plan)
    finally:
        await sender.stop(drain_timeout=1)
    elapsed = time.monotonic() - started

    assert [r.status for r in results] == [DeliveryStatus.SENT] * 1000
    assert_all_delivered_in_order(emu, expected)
    calls = sends(emu)
    assert len(calls) == 1000 and all(call.error is None for call in calls)  # no 429, no retry
    assert sender.stats.flood_waits == 0
    assert emu.total_requests_per_second(window=1.0) <= 30
    assert emu.max_requests_per_second(window=1.0) <= 3  # the burst a chat is allowed
    assert emu.max_requests_per_second(window=10.0) <= 3 + 9  # then one a second
    for group in chats[-10:]:
        assert emu.max_requests_per_second(group, window=60.0) <= 20
    assert elapsed < 1000 / 30 * 1.25  # the limit is also used, not only respected
    assert metrics.registry.get_sample_value("cu_outbound_messages_total", {"status": "sent"}) == 1000


async def test_a_thousand_notifications_to_300_chats_on_a_faster_clock(
    emu: TelegramEmulator, bot: Bot
) -> None:
    """The same burst with faster limits; one group gets 30 messages."""
    limits = SendLimits(
        per_bot=100, window=1.0, chat_interval=0.2, chat_burst=3, per_group=20, group_window=4.0
    )
    chats = add_chats(emu, users=290, groups=10)
    busy_group = chats[-1]
    others = chats[:-1]
    rng = random.Random(7)
    plan = others + [rng.choice(others) for _ in range(671)]
    rng.shuffle(plan)
    plan = [busy_group] * 30 + plan  # queued first: the group's limit, not the backlog, paces it
    sender = Sender(bot, limits=limits)
    sender.start()
    try:
        expected, results = await burst(sender, plan)
    finally:
        await sender.stop(drain_timeout=1)

    assert len(plan) == 1000 and len(expected) == 300
    assert all(r.ok for r in results)
    assert_all_delivered_in_order(emu, expected)
    calls = sends(emu)
    assert len(calls) == 1000
    assert emu.total_requests_per_second(window=1.0) <= 100
    assert emu.max_requests_per_second(window=0.2) <= 3
    assert emu.max_requests_per_second(window=2.0) <= 3 + 9
    for group in chats[-10:]:
        assert emu.max_requests_per_second(group, window=4.0) <= 20


async def test_a_group_gets_no_more_than_its_messages_a_minute(emu: TelegramEmulator, bot: Bot) -> None:
    (user,) = add_chats(emu, users=1)
    group = FIRST_GROUP
    emu.add_group(group, "Signals")
    sender = Sender(bot, limits=SendLimits(chat_interval=0.02, per_group=20, group_window=2.0))
    sender.start()
    try:
        expected, results = await burst(sender, [group] * 30 + [user] * 3)
    finally:
        await sender.stop()

    assert all(r.ok for r in results)
    assert_all_delivered_in_order(emu, expected)
    calls = sends(emu)
    group_times = [call.at for call in calls if call.chat_id == group]
    assert max_in_window(group_times, 2.0) == 20  # the group's "minute" is used up, never exceeded
    assert group_times[20] - group_times[0] >= 2.0
    assert max(call.at for call in calls if call.chat_id == user) < group_times[20]  # nobody else waits


async def test_a_busy_chat_does_not_delay_other_chats_and_stop_cancels_what_is_left(
    emu: TelegramEmulator, bot: Bot
) -> None:
    busy, other = add_chats(emu, users=2)
    sender = Sender(bot, limits=SendLimits(chat_interval=0.25, chat_burst=1))
    sender.start()
    queued = [sender.send_text(busy, f"busy {n}") for n in range(1, 41)]
    await asyncio.sleep(0.6)
    asked = time.monotonic()
    assert (await sender.send_text(other, "hello")).ok
    assert time.monotonic() - asked < 0.5  # behind the busy chat's queue it would be seconds
    await sender.stop(drain_timeout=0.5)

    outcomes = [future.result() for future in queued]
    sent = [n for n, d in enumerate(outcomes, 1) if d.status is DeliveryStatus.SENT]
    cancelled = [n for n, d in enumerate(outcomes, 1) if d.status is DeliveryStatus.CANCELLED]
    assert sent == list(range(1, len(sent) + 1)) and 3 <= len(sent) <= 8
    assert cancelled == list(range(len(sent) + 1, 41))
    assert texts(emu, busy) == [f"busy {n}" for n in sent]
    assert texts(emu, other) == ["hello"]
    late = sender.send_text(other, "after stop")
    assert late.done() and late.result().status is DeliveryStatus.REJECTED


async def test_stop_flushes_what_was_queued(emu: TelegramEmulator, bot: Bot) -> None:
    chats = add_chats(emu, users=5)
    sender = Sender(bot)
    futures = [sender.send_text(chat, f"n{n}") for n in range(2) for chat in chats]  # queued before start
    sender.start()
    await sender.stop(drain_timeout=5)
    assert all(f.result().ok for f in futures)
    for chat in chats:
        assert texts(emu, chat) == ["n0", "n1"]


# ----------------------------------------------------------------------------------------- 429s


async def test_a_429_pauses_the_whole_bot_for_retry_after_and_the_message_still_arrives(
    emu: TelegramEmulator, bot: Bot
) -> None:
    chats = add_chats(emu, users=11)
    metrics = Metrics()
    sender = Sender(bot, metrics=metrics)
    sender.start()
    emu.fail_next("sendMessage", 429, retry_after=2)
    first = sender.send_text(chats[0], "first")
    deadline = time.monotonic() + 1.5
    while True:
        if sender.stats.flood_waits:  # the 429 is back: the pause has begun
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    expected, results = await burst(sender, chats[1:] * 2)
    delivery = await first
    await sender.stop()

    assert delivery.ok and delivery.attempts == 2
    assert all(r.ok for r in results)
    expected[chats[0]] = ["first"]
    assert_all_delivered_in_order(emu, expected)
    flood, *rest = sends(emu)
    assert retry_after_of(flood) == 2
    assert len(rest) == 21 and min(call.at for call in rest) >= flood.at + 2.0
    assert (sender.stats.flood_waits, sender.stats.global_pauses) == (1, 1)
    assert metrics.registry.get_sample_value("cu_outbound_flood_waits_total", {"scope": "bot"}) == 1


async def test_when_telegram_s_limits_are_lower_than_ours_every_message_still_arrives(
    emu: TelegramEmulator, bot: Bot
) -> None:
    chats = add_chats(emu, users=15)
    emu.set_rate_limits(per_chat=1, per_bot=10)  # ours: a burst of 3 per chat, 30 a second
    sender = Sender(bot)
    sender.start()
    try:
        expected, results = await burst(sender, chats * 3)
    finally:
        await sender.stop(drain_timeout=1)

    assert all(r.ok for r in results)
    assert_all_delivered_in_order(emu, expected)
    calls = sends(emu)
    floods = [call for call in calls if call.error]
    assert floods and all(retry_after_of(call) for call in floods)
    assert sender.stats.flood_waits == len(floods)
    assert len(calls) - len(floods) == 45
    for flood in floods:
        later = [c.at for c in calls if c.chat_id == flood.chat_id and c.at > flood.at]
        assert later and min(later) >= flood.at + (retry_after_of(flood) or 0)


# ----------------------------------------------------------------------------------------- failures


async def test_blocked_unknown_and_unstarted_chats_are_dropped_and_counted(
    emu: TelegramEmulator, bot: Bot
) -> None:
    fine, blocked = add_chats(emu, users=2)
    emu.block(blocked)
    unstarted = 700_100_000
    emu.add_user(unstarted, "Shy", started=False)
    unknown = 700_200_000
    metrics = Metrics()
    sender = Sender(bot, metrics=metrics)
    futures = {
        chat: [sender.send_text(chat, f"n{n}") for n in range(3)]
        for chat in (fine, blocked, unstarted, unknown)
    }
    sender.start()
    await sender.join()
    await sender.stop()

    for chat in (blocked, unstarted, unknown):
        outcomes = [f.result() for f in futures[chat]]
        assert {d.status for d in outcomes} == {DeliveryStatus.UNDELIVERABLE}, chat
        assert sum(1 for call in sends(emu) if call.chat_id == chat) == 1  # tried once, not per message
    assert "bot was blocked by the user" in (futures[blocked][0].result().error or "")
    assert "chat not found" in (futures[unknown][0].result().error or "")
    assert texts(emu, fine) == ["n0", "n1", "n2"]
    assert sender.stats.undeliverable == 9
    assert sender.stats.undeliverable_chats == {blocked, unstarted, unknown}
    assert metrics.registry.get_sample_value("cu_outbound_messages_total", {"status": "undeliverable"}) == 9


async def test_network_errors_are_retried_with_backoff_a_bounded_number_of_times(
    emu: TelegramEmulator, bot: Bot
) -> None:
    chat, other = add_chats(emu, users=2)
    sender = Sender(bot, limits=SendLimits(chat_interval=0.05), max_retries=2, backoff_base=0.1)
    sender.start()
    emu.fail_next("sendMessage", 502, times=2)
    recovered = await sender.send_text(chat, "after two 502s")
    emu.fail_next("sendMessage", 502, times=3)
    lost = await sender.send_text(chat, "after three 502s")
    refused = await sender.send_text(chat, "<b>unclosed")
    after = await sender.send_text(chat, "still going")
    await sender.stop()

    assert recovered.ok and recovered.attempts == 3
    assert lost.status is DeliveryStatus.FAILED and lost.attempts == 3 and "Bad Gateway" in (lost.error or "")
    assert refused.status is DeliveryStatus.FAILED and refused.attempts == 1
    assert "can't parse entities" in (refused.error or "")
    assert after.ok
    assert texts(emu, chat) == ["after two 502s", "still going"]
    failing = [call.at for call in sends(emu) if call.error == "Bad Gateway"]
    gaps = [b - a for a, b in itertools.pairwise(failing)]
    assert all(gap >= 0.05 for gap in gaps)  # backoff, not a tight loop
    assert sender.stats.retries == 4 and sender.stats.failed == 2
    assert texts(emu, other) == []


async def test_photos_go_through_the_same_queue(emu: TelegramEmulator, bot: Bot) -> None:
    (chat,) = add_chats(emu, users=1)
    sender = Sender(bot)
    sender.start()
    text = sender.send_text(chat, "chart below")
    photo = sender.send_photo(chat, BufferedInputFile(make_png(), "chart.png"), caption="BTC/USDT")
    assert (await text).ok and (await photo).ok
    await sender.stop()
    sent = [m for m in emu.messages(chat) if (m.get("from") or {}).get("is_bot")]
    assert [m.get("text") or m.get("caption") for m in sent] == ["chart below", "BTC/USDT"]
    assert sent[1]["photo"][0]["width"] == 4


# ----------------------------------------------------------------------------------------- the notifier


async def test_the_notifier_sends_through_the_sender(emu: TelegramEmulator, bot: Bot) -> None:
    fine, blocked = add_chats(emu, users=2)
    emu.block(blocked)
    sender = Sender(bot)
    sender.start()
    i18n = I18n(default_locale="en")
    notifier = TelegramNotifier(bot, i18n, sender)
    assert await notifier.send(fine, "en", "throttle.slow_down") is True
    assert await notifier.send(blocked, "en", "throttle.slow_down") is False
    queued_only = TelegramNotifier(bot, i18n, sender, wait_for_delivery=False)
    assert await queued_only.send(fine, "ru", "throttle.slow_down") is True
    await sender.stop()
    assert texts(emu, fine) == [
        i18n.translator("en").get("throttle.slow_down"),
        i18n.translator("ru").get("throttle.slow_down"),
    ]
    assert sender.stats.sent == 2 and sender.stats.undeliverable == 1


def make_png(width: int = 4, height: int = 3) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    row = b"\x00" + b"\x10\x80\xf0" * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )
