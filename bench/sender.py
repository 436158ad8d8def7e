"""Outbound notifications: 1,000 messages to 300 chats through the paced sender, against the emulator.

    python bench/sender.py [--messages 1000] [--chats 300] [--groups 10] [--scenarios telegram strict]

Every chat gets one message, the rest go to chats picked at random (seeded), all queued at once, as a
scheduler job with many fills would. The sender (`bot.sender.Sender`, Telegram's limits: 30/s per bot,
one a second per chat with a burst of 3, 20 a minute per group) sends them with a real aiogram `Bot` over
HTTP to the emulator, whose call log gives the rates actually seen by "Telegram" (per 1 s window).

Scenarios (each with a fresh emulator):

* ``telegram``: the emulator enforces Telegram's limits as we model them (3 per chat and 30 per bot in any
  second); a correct sender never meets a 429.
* ``strict``: the emulator is stricter than the sender (1 per chat, 20 per bot a second): 429s come back
  and must be waited out, and every message must still arrive once, in order.

The emulator and the sender share one process (asyncio); the rates are far below what either needs.
Exits 0 whatever the figures are: it is a measurement; checks are printed as ok / FAILED.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests`-style imports from the project root

import argparse
import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode

from bench._common import CpuSample, CpuUsage, machine_facts, percentile
from bot.logging import setup_logging
from bot.sender import Delivery, Sender, SendLimits
from sandbox.telegram import TelegramEmulator
from sandbox.telegram.server import SENDING_METHODS

FIRST_USER = 800_000_001
FIRST_GROUP = -1_002_000_000_001
# the emulator's enforced limits per scenario: (per chat, per bot) a second
SCENARIOS = {"telegram": (3, 30), "strict": (1, 20)}


@dataclass
class Result:
    scenario: str
    messages: int
    chats: int
    seconds: float
    delivered: int
    lost: int
    duplicated: int
    out_of_order: int
    requests: int
    flood_429s: int
    global_pauses: int
    max_overall_1s: int
    max_chat_1s: int
    max_group_60s: int
    latency_p50: float
    latency_p95: float
    latency_max: float
    cpu: CpuUsage

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0


def _plan(messages: int, chats: list[int], seed: int) -> list[int]:
    rng = random.Random(seed)
    plan = list(chats[:messages]) + [rng.choice(chats) for _ in range(max(0, messages - len(chats)))]
    rng.shuffle(plan)
    return plan


def _stopwatch(latencies: list[float]) -> Callable[[asyncio.Future[Delivery]], None]:
    """A done-callback recording the seconds from now until the future is resolved."""
    queued = time.monotonic()

    def stop(_future: asyncio.Future[Delivery]) -> None:
        latencies.append(time.monotonic() - queued)

    return stop


def _max_in_window(times: Sequence[float], window: float) -> int:
    ordered = sorted(times)
    best = start = 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def measure(scenario: str, messages: int, users: int, groups: int, seed: int) -> Result:
    per_chat, per_bot = SCENARIOS[scenario]
    emulator = TelegramEmulator()
    await emulator.start()
    token = emulator.add_bot(username="cryptouniverse_bot", first_name="CryptoUniverse")
    chats = [FIRST_USER + n for n in range(users)]
    for chat_id in chats:
        emulator.add_user(chat_id, f"User{chat_id}", language_code="en")
    for n in range(groups):
        emulator.add_group(FIRST_GROUP - n, f"Group {n}")
        chats.append(FIRST_GROUP - n)
    emulator.set_rate_limits(per_chat=per_chat, per_bot=per_bot)
    bot = Bot(
        token,
        session=AiohttpSession(api=TelegramAPIServer.from_base(emulator.base_url)),
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )
    sender = Sender(bot, limits=SendLimits())
    plan = _plan(messages, chats, seed)
    expected: dict[int, list[str]] = defaultdict(list)
    latencies: list[float] = []
    try:
        await bot.get_me()  # warm the connection
        sender.start()
        before = CpuSample.take(None)
        started = time.monotonic()
        futures: list[asyncio.Future[Delivery]] = []
        for chat_id in plan:
            text = f"🔔 Notification {len(expected[chat_id]) + 1} for chat {chat_id}"
            expected[chat_id].append(text)
            future = sender.send_text(chat_id, text)
            future.add_done_callback(_stopwatch(latencies))
            futures.append(future)
        results = await asyncio.gather(*futures)
        seconds = time.monotonic() - started
        after = CpuSample.take(None)
    finally:
        await sender.stop(drain_timeout=1)
        await bot.session.close()
        await emulator.stop()

    lost = duplicated = out_of_order = 0
    for chat_id, wanted in expected.items():
        got = [m.get("text", "") for m in emulator.messages(chat_id) if (m.get("from") or {}).get("is_bot")]
        lost += len(set(wanted) - set(got))
        duplicated += len(got) - len(set(got))
        out_of_order += int(got != wanted and sorted(got) == sorted(wanted))
    calls = [c for c in emulator.calls_of() if c.method.lower() in SENDING_METHODS]
    by_group: dict[int, list[float]] = defaultdict(list)
    for call in calls:
        if call.chat_id is not None and call.chat_id < 0:
            by_group[call.chat_id].append(call.at)
    latencies.sort()
    return Result(
        scenario=scenario,
        messages=len(plan),
        chats=len(chats),
        seconds=seconds,
        delivered=sum(1 for r in results if r.ok),
        lost=lost,
        duplicated=duplicated,
        out_of_order=out_of_order,
        requests=len(calls),
        flood_429s=sum(1 for c in calls if (c.error or "").startswith("Too Many Requests")),
        global_pauses=sender.stats.global_pauses,
        max_overall_1s=emulator.total_requests_per_second(window=1.0),
        max_chat_1s=emulator.max_requests_per_second(window=1.0),
        max_group_60s=max((_max_in_window(t, 60.0) for t in by_group.values()), default=0),
        latency_p50=percentile(latencies, 0.5),
        latency_p95=percentile(latencies, 0.95),
        latency_max=latencies[-1] if latencies else float("nan"),
        cpu=CpuUsage.between(before, after),
    )


def _verdict(ok: bool) -> str:
    return "ok" if ok else "FAILED"


def report(result: Result) -> None:
    per_chat, per_bot = SCENARIOS[result.scenario]
    limits = SendLimits()
    print(f"\n[{result.scenario}] emulator enforces {per_chat}/s per chat and {per_bot}/s per bot")
    print(f"  messages                  {result.messages} to {result.chats} chats")
    print(f"  total time                {result.seconds:.2f} s")
    print(f"  achieved overall rate     {result.rate:.1f} msg/s (limit {limits.per_bot}/s)")
    print(f"  max overall in any 1 s    {result.max_overall_1s} requests (emulator log)")
    print(f"  max one chat in any 1 s   {result.max_chat_1s} requests (burst allowed: {limits.chat_burst})")
    print(f"  max one group in any 60 s {result.max_group_60s} requests (limit {limits.per_group})")
    print(f"  requests sent             {result.requests} ({result.requests - result.messages} retries)")
    print(f"  429 answers received      {result.flood_429s} (whole-bot pauses: {result.global_pauses})")
    print(
        f"  delivery latency          p50 {result.latency_p50:.2f} s, p95 {result.latency_p95:.2f} s, "
        f"max {result.latency_max:.2f} s (queued -> delivered)"
    )
    print(f"  CPU of this process       {result.cpu.client:.0f}% of one core (sender + emulator)")
    intact = result.delivered == result.messages and not (
        result.lost or result.duplicated or result.out_of_order
    )
    print(
        f"  delivered                 {result.delivered}/{result.messages}, lost {result.lost}, "
        f"duplicated {result.duplicated}, chats out of order {result.out_of_order}  {_verdict(intact)}"
    )
    within = (
        result.max_overall_1s <= limits.per_bot
        and result.max_chat_1s <= limits.chat_burst
        and result.max_group_60s <= limits.per_group
    )
    print(f"  within Telegram's limits  {_verdict(within)}")
    if result.scenario == "telegram":
        print(f"  no 429 at Telegram's own limits  {_verdict(result.flood_429s == 0)}")


async def run_all(args: argparse.Namespace) -> None:
    for scenario in args.scenarios:
        print(f"  running {scenario} ...", flush=True)
        result = await measure(scenario, args.messages, args.chats - args.groups, args.groups, args.seed)
        report(result)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1000, help="notifications queued (default 1000)")
    parser.add_argument("--chats", type=int, default=300, help="distinct chats, groups included (300)")
    parser.add_argument("--groups", type=int, default=10, help="of which groups (10)")
    parser.add_argument("--scenarios", nargs="+", choices=tuple(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging("ERROR", "console")
    print(
        f"CryptoUniverse outbound sender bench: {machine_facts()}, aiogram {version('aiogram')}, "
        f"aiohttp {version('aiohttp')}"
    )
    print(
        f"{args.messages} notifications to {args.chats} chats ({args.groups} groups), all queued at once; "
        "rates read from the emulator's call log"
    )
    started = time.perf_counter()
    asyncio.run(run_all(args))
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
