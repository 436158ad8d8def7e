"""AI consensus signals end to end: /signal through the Telegram emulator, the technical voters and real
litellm calls to the local OpenAI / Anthropic / Gemini server, the card with every vote and its cost, the
Trade button opening the normal confirmation card, the daily quota, and /models."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import func, select

from db.models import ConsensusSignal, ConsensusVote
from sandbox.llm import LLMServer
from services.consensus.config import LLMVoterConfig
from tests.e2e.test_accounts_live import give_plan
from tests.stack import bot_stack

MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "anthropic/claude-haiku-4-5",
    "gemini": "gemini/gemini-2.5-flash",
}
BUY = {
    "action": "buy",
    "probability": 0.9,
    "horizon": "4h",
    "stop_loss": None,
    "take_profit": None,
    "rationale": "Momentum and volume agree.",
}


def voters(llm: LLMServer) -> list[LLMVoterConfig]:
    return [
        LLMVoterConfig(
            model=model,
            api_base=llm.client_kwargs(provider)["api_base"],
            api_key=SecretStr(llm.client_kwargs(provider)["api_key"]),
            timeout=5,
        )
        for provider, model in MODELS.items()
    ]


async def test_a_technical_signal_and_the_daily_quota(tmp_path: Path, sqlite_url: str) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, exchanges=True) as stack:
        user = stack.user(9301)
        await user.send("/signal BTC")
        card = await user.next_message(timeout=30)
        while "Asking the voters" in card.text:
            card = await user.next_message(timeout=30)
        assert "BTC/USDT" in card.text and "Verdict:" in card.text, card.text
        for voter in ("trend", "momentum", "mean_reversion"):
            assert voter in card.text
        assert "Cost of this signal: $0 " in card.text
        for _ in range(2):  # Free: 3 AI signals a day
            await user.send("/signal ETH 4h")
            reply = await user.next_message(timeout=30)
            while "Asking the voters" in reply.text:
                reply = await user.next_message(timeout=30)
        await user.send("/signal SOL")
        refusal = await user.next_message(timeout=10)
        assert "today's 3 AI signals" in refusal.text and "📋 Plans" in refusal.button_texts
        await user.send("/models")
        models = await user.next_message()
        assert "trend" in models.text and "signals 3" in models.text
        async with stack.app.session_factory() as session:
            assert await session.scalar(select(func.count(ConsensusSignal.id))) == 3


async def test_llm_voters_vote_through_litellm_and_the_signal_can_be_traded(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with LLMServer(seed=5) as llm:
        for model in MODELS.values():
            llm.set_answer(model, BUY)
        llm.set_invalid_json(MODELS["gemini"])
        async with bot_stack(
            tmp_path, database_url=sqlite_url, exchanges=True, llm_voters=voters(llm)
        ) as stack:
            user = stack.user(9302)
            await user.send("/start")
            await user.next_message()
            await give_plan(stack, 9302, plan="pro", credits=0)
            await user.send("/analyze ETH")
            await user.next_message(timeout=10)  # progress
            chart = await user.next_message(timeout=30)
            await user.press(chart, text="🤖 Get AI signal")
            card = await user.next_message(timeout=30)
            while "Asking the voters" in card.text:
                card = await user.next_message(timeout=30)
            assert "ETH/USDT" in card.text
            assert "gpt-4o-mini: 🟢 BUY 90%" in card.text, card.text
            assert "claude-haiku-4-5: 🟢 BUY 90%" in card.text
            assert "gemini-2.5-flash: abstained (not valid JSON)" in card.text
            assert "Cost of this signal: $0.0" in card.text and "Cost of this signal: $0 " not in card.text
            async with stack.app.session_factory() as session:
                votes = (await session.scalars(select(ConsensusVote))).all()
            assert len(votes) == 6 and sum(v.cost for v in votes) > 0
            assert {r.provider for r in llm.requests} == {"openai", "anthropic", "gemini"}
            assert card.button_texts[-2:] == ["❓ Why?", "🔄 Refresh"]
            await user.press(card, text="❓ Why?")
            why = await user.next_message(timeout=10)
            assert "Momentum and volume agree." in why.text and "gpt-4o-mini" in why.text
            if "💱 Trade this" in card.button_texts:  # a buy verdict: the order card, sized by the risk rules
                await user.press(card, text="💱 Trade this")
                order = await user.next_message(timeout=10)
                assert "Buy ETH/USDT" in order.text and "✅ Confirm" in order.button_texts
            await user.press(card, text="🔄 Refresh")
            fresh = await user.next_message(timeout=30)
            while "Asking the voters" in fresh.text:
                fresh = await user.next_message(timeout=30)
            assert "ETH/USDT" in fresh.text and "#2" in fresh.text


async def test_each_llm_provider_is_a_component_of_the_controller(tmp_path: Path, sqlite_url: str) -> None:
    async with LLMServer(seed=6) as llm, bot_stack(
        tmp_path, database_url=sqlite_url, exchanges=True, llm_voters=voters(llm)
    ) as stack:
        controller = stack.app.controller
        snapshot = await controller.check_all()
        names = {c.name for c in snapshot.components if c.kind == "llm"}
        assert names == {f"llm:{m}" for m in MODELS.values()}
        assert all(snapshot.get(n).last_status.value == "up" for n in names)
        pings = len(llm.requests)
        await controller.check_all()
        assert len(llm.requests) == pings  # a healthy provider is not asked again for a while

        fresh = await bot_stack_probe_failure(llm)
        assert fresh == "down"


async def bot_stack_probe_failure(llm: LLMServer) -> str:
    """A provider answering errors is reported down by its probe."""
    from services.consensus.health import LLMProbe

    llm.set_error(MODELS["openai"], 500)
    probe = LLMProbe(voters(llm)[0])
    try:
        await probe()
    except Exception:
        return "down"
    return "up"
