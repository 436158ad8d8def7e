"""Voice control end to end: an OGG/Opus voice note (generated with espeak-ng) sent through the Telegram
emulator, downloaded by the bot over the Bot API, transcribed by the bundled Whisper tiny.en model, echoed
back and proposed as a command; Run feeds it to the same handlers as typed text, so money moves only
through the order's own confirmation card. Free text goes through the same intent parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import VoiceSettings
from tests.stack import bot_stack

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "voice"

pytestmark = pytest.mark.slow


async def test_a_spoken_order_is_confirmed_twice_then_filled(tmp_path: Path, sqlite_url: str) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True) as stack:
        user = stack.user(9401)
        audio = (FIXTURES / "buy_hundred_dollars_bitcoin.ogg").read_bytes()
        await user.upload("voice", audio, "voice.ogg", duration=3, mime_type="audio/ogg")
        listening = await user.next_message(timeout=10)
        assert "Listening" in listening.text
        proposal = await user.next_message(timeout=60)
        assert "I heard" in proposal.text and "/buy BTC 100" in proposal.text, proposal.text
        assert proposal.button_texts == ["▶️ Run", "✖️ Cancel"]
        await user.press(proposal, text="▶️ Run")
        running = await user.next_message(timeout=10)
        assert "/buy BTC 100" in running.text and running.button_texts == []
        card = await user.next_message(timeout=15)
        assert "Buy BTC/USDT" in card.text and "✅ Confirm" in card.button_texts  # the normal order card
        await user.press(card, text="✅ Confirm")
        assert "Bought" in (await user.next_message(timeout=15)).text
        await user.expect_silence(1.0)  # the proposal lost its buttons when it ran: it cannot run twice


async def test_a_question_with_buttons_and_free_text(tmp_path: Path, sqlite_url: str) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True) as stack:
        user = stack.user(9402)
        await user.send("sell ether")
        question = await user.next_message(timeout=10)
        assert "How much of your ETH" in question.text, question.text
        assert "50%" in question.button_texts, question.button_texts
        await user.press(question, text="50%")
        proposal = await user.next_message(timeout=10)
        while "/sell" not in proposal.text:
            proposal = await user.next_message(timeout=10)
        assert "/sell ETH 50%" in proposal.text
        await user.press(proposal, text="✖️ Cancel")
        assert "nothing was done" in (await user.next_message(timeout=10)).text

        await user.send("what's my balance")
        proposal = await user.next_message(timeout=10)
        assert "/balance" in proposal.text
        await user.press(proposal, text="▶️ Run")
        await user.next_message(timeout=10)  # ▶️ /balance
        balance = await user.next_message(timeout=10)
        assert "USDT" in balance.text and "10,000" in balance.text, balance.text


async def test_voice_limits_and_an_unconfigured_bot(tmp_path: Path, sqlite_url: str) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, voice=VoiceSettings(max_seconds=10)) as stack:
        user = stack.user(9403)
        audio = (FIXTURES / "balance.ogg").read_bytes()
        await user.upload("voice", audio, "voice.ogg", duration=65, mime_type="audio/ogg")
        assert "65 s long; I can take up to 10 s" in (await user.next_message(timeout=10)).text
        await user.upload("voice", bytes(range(256)) * 64, "voice.ogg", duration=3, mime_type="audio/ogg")
        assert "Listening" in (await user.next_message(timeout=10)).text
        assert "couldn't read that audio" in (await user.next_message(timeout=30)).text
    other = tmp_path / "unconfigured"
    other.mkdir()
    unconfigured = VoiceSettings(engine="none")
    url = f"sqlite+aiosqlite:///{other}/bot.db"
    async with bot_stack(other, database_url=url, voice=unconfigured) as stack:
        user = stack.user(9404)
        await user.upload("voice", audio, "voice.ogg", duration=2, mime_type="audio/ogg")
        assert "not set up" in (await user.next_message(timeout=10)).text
