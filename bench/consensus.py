"""AI consensus: the time of one consensus signal and the cost of aggregating it.

    python bench/consensus.py [--runs 40] [--delay 0.0] [--database sqlite|postgres]

1. One signal end to end (`ConsensusService.signal`): candles and ticker from an in-memory market, the
   shared snapshot (analysis of 500 candles), 3 technical-analysis voters and 3 LLM voters (gpt-4o-mini,
   anthropic/claude-haiku-4-5, gemini/gemini-2.5-flash) through the real litellm client against the local
   LLM server (sandbox/llm, each model answering after `--delay` seconds), weighing, and storing the
   signal with its 6 votes in a scratch database. "cold": a fresh cache every run (new snapshot, every
   model asked); "cached": the same candle again (snapshot and answers from the cache, no model asked).
   p50 / p99 wall time over `--runs` runs, after one unmeasured warm-up run.
2. Aggregation overhead: `aggregate` over 6 weighted votes, and `run_voters` with 6 voters that answer
   at once (the task, timeout and deadline machinery alone), per call.

3. Five LLM voters answering after 100, 275, 450, 625 and 800 ms (plus the 3 TA voters): the signal's time
   minus its slowest valid voter's, i.e. what the consensus adds (target under 50 ms).
4. TA-only consensus for 100 symbols: signals per second, each with its own snapshot, stored.

Exits 0 whatever the figures are: it is a measurement.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")

import argparse
import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from importlib.metadata import version

import structlog

from bench._common import machine_facts, percentile, scratch_postgres_database
from db import migrate
from db.engine import create_engine, create_session_factory
from sandbox.llm import LLMServer
from services.consensus.aggregate import WeightedVote, aggregate, run_voters
from services.consensus.cache import MemoryAnswerCache
from services.consensus.config import ConsensusSettings, LLMVoterConfig
from services.consensus.service import ConsensusService
from services.consensus.snapshot import Snapshot
from services.consensus.voters import Vote, VoterKind
from tests.integration.consensus_support import Clock, llm_voter_configs, market_service
from tests.unit.consensus_samples import uptrend


@contextlib.asynccontextmanager
async def database(kind: str) -> AsyncIterator[str]:
    if kind == "postgres":
        async with scratch_postgres_database() as url:
            yield url
    else:
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite+aiosqlite:///{directory}/bench.db"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


async def signals(args: argparse.Namespace) -> None:
    async with database(args.database) as url, LLMServer() as llm:
        engine = create_engine(url)
        await migrate.upgrade(engine)
        factory = create_session_factory(engine)
        clock = Clock()
        data, _ = market_service(clock)
        settings = ConsensusSettings(daily_budget_usd={"free": Decimal(1_000_000)})
        configs = llm_voter_configs(llm, timeout=10)
        for config in configs:
            llm.set_delay(config.model, args.delay)

        def service(cache: MemoryAnswerCache) -> ConsensusService:
            return ConsensusService.from_settings(factory, data, settings, configs, cache=cache, clock=clock)

        await service(MemoryAnswerCache()).signal(None, "BTC", "1h")  # warm-up: imports, connections
        cold: list[float] = []
        costs: list[Decimal] = []
        for _ in range(args.runs):
            started = time.perf_counter()
            result = await service(MemoryAnswerCache()).signal(None, "BTC", "1h")
            cold.append(time.perf_counter() - started)
            costs.append(result.total_cost)
            assert sum(v.valid for v in result.votes) == 6, [v.abstain_reason for v in result.votes]
        shared = MemoryAnswerCache()
        await service(shared).signal(None, "BTC", "1h")
        warm: list[float] = []
        asked = len(llm.requests)
        for _ in range(args.runs):
            started = time.perf_counter()
            result = await service(shared).signal(None, "BTC", "1h")
            warm.append(time.perf_counter() - started)
        assert len(llm.requests) == asked
        await engine.dispose()
    cold.sort()
    warm.sort()
    print(
        f"1. one consensus signal, 3 TA + 3 LLM voters, {args.runs} runs, model delay {args.delay:g} s, "
        f"{args.database}"
    )
    print(
        f"   cold   (snapshot built, 3 models asked): p50 {ms(percentile(cold, 0.5))}   "
        f"p99 {ms(percentile(cold, 0.99))}   max {ms(cold[-1])}"
    )
    print(
        f"   cached (same candle, answers cached)   : p50 {ms(percentile(warm, 0.5))}   "
        f"p99 {ms(percentile(warm, 0.99))}   max {ms(warm[-1])}"
    )
    print(f"   cost per cold signal (litellm price map): ${sum(costs) / len(costs):.6f}")


async def overhead(iterations: int) -> None:
    snapshot: Snapshot = uptrend()
    votes = [
        WeightedVote(Vote(f"v{i}", "llm", ("buy", "sell", "hold")[i % 3], 0.55 + i / 20, "4h"), 1.0 + i / 10)
        for i in range(5)
    ] + [WeightedVote(Vote.abstain("v5", "llm", "timeout"), 1.0)]
    started = time.perf_counter()
    for _ in range(iterations):
        aggregate(votes)
    per_aggregate = (time.perf_counter() - started) / iterations

    class Instant:
        kind: VoterKind = "ta"
        prior_weight = 1.0
        timeout = 5.0

        def __init__(self, name: str) -> None:
            self.name = name

        async def vote(self, snapshot: Snapshot) -> Vote:
            return Vote(self.name, "ta", "buy", 0.6, "4h")

    voters = [Instant(f"i{i}") for i in range(6)]
    rounds = max(iterations // 20, 100)
    started = time.perf_counter()
    for _ in range(rounds):
        await run_voters(voters, snapshot, deadline=5)
    per_run = (time.perf_counter() - started) / rounds
    print("2. aggregation overhead")
    print(f"   aggregate, 6 votes (1 abstention)      : {per_aggregate * 1e6:8.2f} us per call")
    print(f"   run_voters, 6 instant voters           : {per_run * 1e6:8.2f} us per call")


SPREAD_DELAYS = (0.1, 0.275, 0.45, 0.625, 0.8)
SPREAD_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1", "gpt-4.1-nano")


async def spread(args: argparse.Namespace) -> None:
    """5 LLM voters answering after 100-800 ms: the consensus latency against the slowest valid voter."""
    async with database(args.database) as url, LLMServer() as llm:
        engine = create_engine(url)
        await migrate.upgrade(engine)
        factory = create_session_factory(engine)
        clock = Clock()
        data, _ = market_service(clock)
        settings = ConsensusSettings(daily_budget_usd={"free": Decimal(1_000_000)}, deadline_seconds=5)
        kwargs = llm.client_kwargs("openai")
        configs = [
            LLMVoterConfig(model=model, api_base=kwargs["api_base"], api_key=kwargs["api_key"], timeout=5)
            for model in SPREAD_MODELS
        ]
        for model, delay in zip(SPREAD_MODELS, SPREAD_DELAYS, strict=True):
            llm.set_delay(model, delay)
        service = ConsensusService.from_settings(
            factory, data, settings, [], cache=MemoryAnswerCache(), clock=clock
        )
        await ConsensusService.from_settings(
            factory, data, settings, configs, cache=MemoryAnswerCache(), clock=clock
        ).signal(None, "BTC", "1h")  # warm-up
        overheads: list[float] = []
        for _ in range(max(5, args.runs // 4)):
            fresh = ConsensusService.from_settings(
                factory, data, settings, configs, cache=MemoryAnswerCache(), clock=clock
            )
            started = time.perf_counter()
            result = await fresh.signal(None, "BTC", "1h")
            took = time.perf_counter() - started
            slowest = max(v.latency_ms for v in result.votes if v.kind == "llm" and v.valid) / 1000
            overheads.append(took - slowest)
        symbols = [f"S{i:03d}/USDT" for i in range(100)]
        started = time.perf_counter()
        cpu = time.process_time()
        for symbol in symbols:
            await service.signal(None, symbol, "1h")
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        await engine.dispose()
    overheads.sort()
    print(
        f"3. 5 LLM voters answering after {SPREAD_DELAYS[0]:g}-{SPREAD_DELAYS[-1]:g} s (+3 TA voters), "
        f"{args.database}"
    )
    print(
        f"   overhead over the slowest valid voter: p50 {ms(percentile(overheads, 0.5))}   "
        f"max {ms(overheads[-1])}   (target < 50 ms)"
    )
    print(
        f"4. TA-only consensus for 100 symbols (snapshot, 3 voters, stored): {wall:.2f} s wall, "
        f"{cpu:.2f} s CPU, {len(symbols) / wall:.0f} signals/s"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(f"{machine_facts()}; litellm {version('litellm')}")
    await signals(args)
    await overhead(args.iterations)
    await spread(args)


if __name__ == "__main__":
    asyncio.run(main())
