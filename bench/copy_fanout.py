"""Copy-trading fan-out: one leader action copied to N paper followers, each told through Telegram.

    python bench/copy_fanout.py [--followers 1000] [--dbs sqlite postgres] [--concurrency 16]

The leader's entry (BTC/USDT) is recorded once and `MirrorEngine.fan_out` copies it to every follower: a
market buy of 100 USDT per follower through `AutoTrader` (balances, market rules, risk check, paper fill
against the Binance emulator's order book over ccxt/HTTP, all in this process), a `copy_orders` row and a
`copy_positions` row each. Then the exit is fanned out the same way (a market sell of what was copied).
Printed per phase: total wall time, per-follower time (from taking a slot to the commit, without the wait
for a slot) p50/p99, and orders per second. Every follower's copy is checked to be done. Then every
follower's notification goes through the paced sender to the Telegram emulator: the time until all are
queued and until all are sent, the achieved send rate, and the most requests the emulator saw in any second
overall and for one chat (Telegram allows about 30 and 1).

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
from services.copytrading.relay import CopyRelay
from services.copytrading.views import ActionView
from services.i18n import I18n
from tests.integration.copy_support import CopyStack, copy_stack


class TimedMirror(MirrorEngine):
    """Records how long each follower's copy took once it had a slot."""

    durations: list[float]

    async def _copy_one(self, action: ActionView, leader_name: str, follow_id: int) -> CopyResult | None:
        started = time.perf_counter()
        try:
            return await super()._copy_one(action, leader_name, follow_id)
        finally:
            self.durations.append(time.perf_counter() - started)


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


async def phase(
    mirror: TimedMirror, action: NewAction, followers: int
) -> tuple[float, list[float], int, list[CopyResult]]:
    recorded = await mirror.record_action(action)
    mirror.durations = []
    started = time.perf_counter()
    results = await mirror.fan_out(recorded.action_id)
    total = time.perf_counter() - started
    done = sum(r.status == "done" for r in results)
    if done != followers:
        failed = [(r.status, r.reason) for r in results if r.status != "done"][:5]
        print(f"  !! {followers - done} copies not done, e.g. {failed}")
    return total, sorted(mirror.durations), done, results


async def run(db: str, url: str, followers: int, concurrency: int) -> None:
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
            await stack.registry.public("binance").load_markets()
            await bot.get_me()
            sender.start()
            print(f"\n{db}: {followers} paper followers, {concurrency} copies in flight")
            print(
                f"  {'phase':<6} {'total s':>8} {'p50 ms':>8} {'p99 ms':>8} {'orders/s':>9} "
                f"{'queued s':>9} {'sent s':>7} {'msg/s':>6} {'max/s':>6} {'chat/s':>6}"
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
                total, durations, done, results = await phase(mirror, action, followers)
                for result in results:  # every follower is told, through the paced sender
                    await relay.notify(result)
                queued = time.perf_counter() - started
                await sender.join()
                sent = time.perf_counter() - started
                p50 = percentile(durations, 0.50) * 1000
                p99 = percentile(durations, 0.99) * 1000
                rate = len(results) / max(sent - queued, 1e-9)
                overall = telegram.total_requests_per_second(window=1.0)
                per_chat = telegram.max_requests_per_second(window=1.0)
                print(
                    f"  {name:<6} {total:>8.2f} {p50:>8.1f} {p99:>8.1f} {done / total:>9.1f} "
                    f"{queued:>9.2f} {sent:>7.2f} {rate:>6.1f} {overall:>6} {per_chat:>6}"
                )
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
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    print(machine_facts())
    for db in args.dbs:
        if db == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                await run(db, f"sqlite+aiosqlite:///{tmp}/bench.db", args.followers, args.concurrency)
        else:
            async with scratch_postgres_database(DEFAULT_POSTGRES_URL) as url:
                await run(db, url, args.followers, args.concurrency)


if __name__ == "__main__":
    asyncio.run(main())
