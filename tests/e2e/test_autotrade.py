"""Auto-trade end to end: the opt-in through Telegram (a plan that includes it), a run as the candle
closes asking the real consensus (LLM voters through litellm to the local server), a paper order placed
without a card but through the same checks, one action per signal, each told to the user, and the stop."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.notifier import TelegramNotifier
from db.models import Order
from sandbox.llm import LLMServer
from scheduler.autotrade import autotrade_job
from services.consensus.cache import MemoryAnswerCache
from services.consensus.config import ConsensusSettings
from tests.e2e.test_accounts_live import give_plan
from tests.e2e.test_signals import BUY, MODELS, voters
from tests.stack import bot_stack

SELL = {**BUY, "action": "sell", "rationale": "Momentum has turned."}


async def test_auto_trade_buys_and_sells_on_confident_signals(tmp_path: Path, sqlite_url: str) -> None:
    async with LLMServer(seed=8) as llm:
        for model in MODELS.values():
            llm.set_answer(model, BUY)
        async with bot_stack(
            tmp_path,
            database_url=sqlite_url,
            exchanges=True,
            llm_voters=voters(llm),
            consensus=ConsensusSettings(ta_voters="trend"),
        ) as stack:
            user = stack.user(9601)
            await user.send("/start")
            await user.next_message()
            await user.send("/autotrade ETH 60")
            refusal = await user.next_message(timeout=10)
            assert "Auto-trading is not part of your plan (Free)" in refusal.text, refusal.text
            await give_plan(stack, 9601, plan="pro", credits=0)
            await user.send("/autotrade ETH 60 1h")
            assert "Auto-trade is on: ETH/USDT on 1h" in (await user.next_message(timeout=10)).text

            notifier = TelegramNotifier(stack.app.bot, stack.app.i18n)
            run = (stack.app.session_factory, stack.app.services.trading, stack.app.consensus, notifier, "1h")
            assert await autotrade_job(*run) == 1
            bought = await user.next_message(timeout=15)
            assert "bought" in bought.text and "ETH/USDT" in bought.text, bought.text
            assert await autotrade_job(*run) == 0  # already holding: no second entry
            for model in MODELS.values():
                llm.set_answer(model, SELL)
            cache = stack.app.consensus.cache
            assert isinstance(cache, MemoryAnswerCache)
            cache.clear()  # the next candle: the same question is asked afresh
            assert await autotrade_job(*run) == 1
            sold = await user.next_message(timeout=15)
            assert "sold" in sold.text and "ETH/USDT" in sold.text, sold.text
            async with stack.app.session_factory() as session:
                orders = (await session.scalars(select(Order).order_by(Order.id))).all()
            assert [(o.side, o.reason) for o in orders] == [("buy", "auto"), ("sell", "auto")]

            await user.send("/autotrade off")
            assert "Auto-trade is off" in (await user.next_message(timeout=10)).text
            for model in MODELS.values():
                llm.set_answer(model, BUY)
            cache.clear()
            assert await autotrade_job(*run) == 0  # stopped: nothing runs
