"""Copy-trading fan-out: one leader action copied to N paper followers, each told through Telegram.

    python bench/copy_fanout.py [--followers 1000] [--dbs sqlite postgres] [--concurrency 16] [--workers 4]

The way the bot does it: the leader's entry (BTC/USDT) is recorded and its id enqueued (what the leader's
update handler waits for: "handler ms"), then the application's fan-out queue (`FanOutQueue`, `--workers`
actions at once) copies it to every follower through `CopyRelay.run_fan_out`: a market buy of 100 USDT per
follower through `AutoTrader` (balances, market rules, risk check, paper fill against the Binance emulator's
order book over ccxt/HTTP, all in this process), a `copy_orders` row and a `copy_positions` row each, at most
`--concurrency` copies in flight. Each follower is told as their copy ends, through the paced sender to the
Telegram emulator, and the leader gets the report when the fan-out is finished. Then the exit is carried out
the same way (a market sell of what was copied).

Printed per phase: the leader's handler time; the time until every follower's copy is filled ("filled s"),
per-follower time (from taking a slot to the commit, without the wait for a slot) p50/p99 and orders per
second; the time until the fan-out finished with every notification queued ("queued s") and until all are
sent ("sent s"), the send rate over the phase, and the most requests the emulator saw in any second overall
and for one chat (Telegram allows about 30 and 1). Every follower's copy is checked to be done.

Exits 0 whatever the figures are: it is a measurement.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests` is not installed

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from sqlalchemy import select

from bench._common import DEFAULT_POSTGRES_URL, machine_facts, percentile, scratch_postgres_database
from bot.notifier import TelegramNotifier
from bot.sender import Sender
from db import migrate
from db.engine import create_engine, create_session_factory
from db.models import ExchangeAccount, Follow, PaperBalance, TradingProfile, User
from sandbox.telegram import TelegramEmulator
from services.billing.entitlements import Entitlements
from services.billing.plans import Catalogue
from services.copytrading.mirror import CopyResult, MirrorEngine, NewAction
from services.copytrading.queue import FanOutQueue
from services.copytrading.relay import CopyRelay
from services.copytrading.views import ActionView
from services.i18n import I18n
from tests.integration.copy_support import CopyStack, copy_stack


class TimedMirror(MirrorEngine):
    """Records how long each follower's copy took once it had a slot, and when the last one ended."""

    durations: list[float]
    last_done: float = 0.0

    async def _copy_one(self, action: ActionView, leader_name: str, follow_id: int) -> CopyResult | None:
        started = time.perf_counter()
        try:
            return await super()._copy_one(action, leader_name, follow_id)
        finally:
            self.last_done = time.perf_counter()
            self.durations.append(self.last_done - started)


async def populate(stack: CopyStack, followers: int) -> int:
    """A leader and N followers with a paper account of 10,000 USDT each, following it with 100 USDT."""
    _, leader = await _leader(stack)
    async with stack.factory() as session:
        users = [User(tenant_id=stack.tenant_id, telegram_id=900_000_000 + i) for i in range(followers)]
        session.add_all(users)
        await session.flush()
        accounts = [ExchangeAccount(user_id=u.id, exchange="paper", is_paper=True) for u in users]
        session.add_all(accounts)
        await session.flush()
        for user, account in zip(users, accounts, strict=True):
            session.add(TradingProfile(user_id=user.id, active_account_id=account.id))
            session.add(PaperBalance(account_id=account.id, asset="USDT", free=Decimal(10_000), locked=0))
            session.add(
                Follow(
                    follower_id=user.id,
                    leader_id=leader,
                    mode="paper",
                    account_id=account.id,
                    allocation_kind="fixed",
                    allocation_value=Decimal(100),
                    status="active",
                    start_equity=Decimal(10_000),
                    realized_pnl=0,
                    equity_hwm=Decimal(10_000),
                )
            )
        await session.commit()
    return leader


async def _leader(stack: CopyStack) -> tuple[object, int]:
    from services.billing.entitlements import Entitlements
    from services.copytrading.leaders import LeaderService
    from tests.integration.copy_support import CATALOGUE

    user = await stack.user(plan="pro")
    async with stack.factory() as session:
        leader = await LeaderService(session, Entitlements(session, CATALOGUE)).become(user, "Bench")
    return user, leader.id


@dataclass
class Phase:
    handler: float  # record + enqueue: what the leader's update waits for
    filled: float  # until the last follower's copy committed
    finished: float  # until the fan-out finished: every notification and the leader's report queued
    durations: list[float]
    done: int


async def phase(relay: CopyRelay, queue: FanOutQueue, action: NewAction, followers: int) -> Phase:
    mirror = relay.mirror
    assert isinstance(mirror, TimedMirror)
    mirror.durations = []
    started = time.perf_counter()
    recorded = await mirror.record_action(action)
    assert await relay.dispatch(recorded) is None  # queued
    handler = time.perf_counter() - started
    await queue.join()
    finished = time.perf_counter() - started
    [report] = [r for r in queue.reports if r.action_id == recorded.action_id]
    done = report.counts.get("done", 0)
    if done != followers:
        failed = [(r.status, r.reason) for r in report.results if r.status != "done"][:5]
        print(f"  !! {followers - done} copies not done, e.g. {failed}")
    return Phase(handler, mirror.last_done - started, finished, sorted(mirror.durations), done)


async def run(db: str, url: str, followers: int, concurrency: int, workers: int) -> None:
    engine = create_engine(url)
    await migrate.upgrade(engine)
    factory = create_session_factory(engine)
    telegram = TelegramEmulator()
    await telegram.start()
    token = telegram.add_bot(username="cryptouniverse_bot", first_name="CryptoUniverse")
    bot = Bot(
        token,
        session=AiohttpSession(api=TelegramAPIServer.from_base(telegram.base_url)),
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )
    sender = Sender(bot)
    try:
        async with copy_stack(factory) as stack:
            leader = await populate(stack, followers)
            async with factory() as session:
                for user in await session.scalars(select(User)):
                    telegram.add_user(user.telegram_id, f"Trader{user.telegram_id}", language_code="en")
            mirror = TimedMirror(factory, stack.trading)
            mirror.config = type(mirror.config)(paper_concurrency=concurrency)
            notifier = TelegramNotifier(bot, I18n(), sender, wait_for_delivery=False)
            relay = CopyRelay(factory, mirror, lambda session: Entitlements(session, Catalogue()), notifier)
            queue = FanOutQueue(relay, workers=workers)
            await stack.registry.public("binance").load_markets()
            await bot.get_me()
            sender.start()
            queue.start()
            print(
                f"\n{db}: {followers} paper followers, {concurrency} copies in flight, "
                f"{workers} fan-out workers"
            )
            print(
                f"  {'phase':<6} {'handler ms':>10} {'filled s':>9} {'p50 ms':>8} {'p99 ms':>8} "
                f"{'orders/s':>9} {'queued s':>9} {'sent s':>7} {'msg/s':>6} {'max/s':>6} {'chat/s':>6}"
            )
            for name, action in (
                ("entry", NewAction(leader, "entry", "BTC/USDT", "buy", "post", "bench:entry")),
                (
                    "exit",
                    NewAction(
                        leader, "exit", "BTC/USDT", "sell", "post", "bench:exit", close_pct=Decimal(100)
                    ),
                ),
            ):
                telegram.clear_calls()
                started = time.perf_counter()
                result = await phase(relay, queue, action, followers)
                await sender.join()
                sent = time.perf_counter() - started
                p50 = percentile(result.durations, 0.50) * 1000
                p99 = percentile(result.durations, 0.99) * 1000
                rate = (result.done + 1) / max(sent, 1e-9)  # followers and the leader's report
                overall = telegram.total_requests_per_second(window=1.0)
                per_chat = telegram.max_requests_per_second(window=1.0)
                print(
                    f"  {name:<6} {result.handler * 1000:>10.1f} {result.filled:>9.2f} {p50:>8.1f} "
                    f"{p99:>8.1f} {result.done / result.filled:>9.1f} {result.finished:>9.2f} {sent:>7.2f} "
                    f"{rate:>6.1f} {overall:>6} {per_chat:>6}"
                )
            await queue.stop()
            undelivered = sender.stats.undeliverable + sender.stats.failed
            stats = sender.stats
            print(
                f"  notifications: {stats.sent} sent, {undelivered} not delivered, 429s {stats.flood_waits}"
            )
    finally:
        await sender.stop(drain_timeout=1)
        await bot.session.close()
        await telegram.stop()
        await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--followers", type=int, default=1000)
    parser.add_argument("--dbs", nargs="+", default=["sqlite"], choices=["sqlite", "postgres"])
    parser.add_argument("--concurrency", type=int, default=16, help="paper copies in flight")
    parser.add_argument("--workers", type=int, default=4, help="leader actions fanned out at once")
    args = parser.parse_args()
    print(machine_facts())
    for db in args.dbs:
        if db == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                await run(
                    db, f"sqlite+aiosqlite:///{tmp}/bench.db", args.followers, args.concurrency, args.workers
                )
        else:
            async with scratch_postgres_database(DEFAULT_POSTGRES_URL) as url:
                await run(db, url, args.followers, args.concurrency, args.workers)


if __name__ == "__main__":
    asyncio.run(main())
