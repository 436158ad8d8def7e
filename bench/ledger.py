"""Credit ledger: profit consumptions per second on PostgreSQL.

    python bench/ledger.py [--concurrency 1 50] [--duration 3] [--postgres-url URL]

One consumption is what closing a live position in profit costs the ledger: a session, `consume_profit`
(lock the account row, append the entry, compare-and-set the balance), commit. Workers run in a closed
loop for the window, each with its own session per consumption, in two layouts:
  * one account  - every worker consumes from the same user's credits: the worst case, all transactions
                   queue on one row lock;
  * own account  - each worker has its own user: the usual case, no contention between workers.
A third row measures repeats of already applied keys (a redelivered close): the replay path.

Every account starts with 1,000,000,000 credits; profits are random amounts with six decimal places. After
each run the final balance is checked exactly: it equals the start minus the sum of the consumptions the
ledger reported, the debt is zero, each account holds one entry per consumption (plus its grant), and the
entries sum to the balance. Scratch databases are created and dropped on the server at --postgres-url.

Exits 0 whatever the figures are: it is a measurement.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import itertools
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from importlib.metadata import version

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench._common import (
    DEFAULT_POSTGRES_URL,
    CpuSample,
    CpuUsage,
    machine_facts,
    percentile,
    scratch_postgres_database,
)
from db import migrate
from db.engine import create_engine, create_session_factory
from db.models import CreditEntry, Tenant, User
from services.credits import CreditLedger

START = Decimal(1_000_000_000)
LAYOUTS = ("one account", "own account", "replays")


@dataclass
class RunState:
    end: float
    latencies: list[float] = field(default_factory=list)
    consumed: dict[int, list[Decimal]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    last_done: float = 0.0


@dataclass(frozen=True)
class Row:
    layout: str
    concurrency: int
    operations: int
    seconds: float
    latencies: list[float]
    cpu: CpuUsage
    errors: int
    check: str

    @property
    def per_second(self) -> float:
        return self.operations / self.seconds if self.seconds > 0 else math.nan


async def make_users(factory: async_sessionmaker[AsyncSession], count: int) -> list[int]:
    async with factory() as session:
        tenant = Tenant(slug="bench", name="Bench")
        session.add(tenant)
        await session.flush()
        users = [User(tenant_id=tenant.id, telegram_id=800_000_000 + n) for n in range(count)]
        session.add_all(users)
        await session.flush()
        ledger = CreditLedger(session)
        for user in users:
            await ledger.grant(user.id, START, "purchase", f"bench:start:{user.id}")
        await session.commit()
        return [user.id for user in users]


async def worker(
    factory: async_sessionmaker[AsyncSession],
    user_id: int,
    keys: itertools.count[int],
    rng: random.Random,
    state: RunState,
    *,
    replay_keys: Sequence[str] = (),
) -> None:
    while time.perf_counter() < state.end:
        n = next(keys)
        profit = Decimal(rng.randint(1, 50_000_000)).scaleb(-6)  # up to 50 credits
        key = replay_keys[n % len(replay_keys)] if replay_keys else f"close:{n}"
        started = time.perf_counter()
        try:
            async with factory() as session:
                ledger = CreditLedger(session)
                if replay_keys:
                    result = await ledger.consume_profit(user_id, Decimal(1), key)
                    if not result.replayed:
                        raise RuntimeError(f"{key} applied again")
                else:
                    result = await ledger.consume_profit(user_id, profit, key, reference=key)
                await session.commit()
        except Exception as exc:
            state.errors.append(f"{type(exc).__name__}: {exc}")
            continue
        done = time.perf_counter()
        if not replay_keys:
            state.consumed.setdefault(user_id, []).append(result.consumed)
        state.latencies.append(done - started)
        state.last_done = done


async def check(
    factory: async_sessionmaker[AsyncSession], users: Sequence[int], state: RunState, replays: int
) -> str:
    problems: list[str] = []
    total = 0
    async with factory() as session:
        ledger = CreditLedger(session)
        for user in users:
            consumed = state.consumed.get(user, [])
            total += len(consumed)
            balance = await ledger.balance(user)
            want = START - sum(consumed, Decimal(0)) - replays
            if balance.balance != want or balance.debt != 0:
                problems.append(f"user {user}: balance {balance.balance} debt {balance.debt}, want {want}")
            entries = await session.scalar(select(func.count()).where(CreditEntry.user_id == user))
            expected = len(consumed) + 1 + (1 if replays else 0)
            if entries != expected:
                problems.append(f"user {user}: {entries} entries, want {expected}")
            if not (await ledger.reconcile(user)).consistent:
                problems.append(f"user {user}: entries do not sum to the balance")
    if problems:
        return "MISMATCH: " + "; ".join(problems[:3])
    if replays:
        return f"exact (1 account, {len(state.latencies)} repeats of 1 key, applied once)"
    return f"exact ({len(users)} account{'s' if len(users) > 1 else ''}, {total} consumptions incl. warm-up)"


async def measure(url: str, layout: str, concurrency: int, duration: float) -> Row:
    engine = create_engine(url, pool_size=concurrency)
    try:
        await migrate.upgrade(engine)
        factory = create_session_factory(engine)
        users = await make_users(factory, concurrency if layout == "own account" else 1)
        keys = itertools.count()
        replay_keys: list[str] = []
        replays = 0
        if layout == "replays":
            async with factory() as session:
                await CreditLedger(session).consume_profit(users[0], Decimal(1), "close:replayed")
                await session.commit()
            replay_keys, replays = ["close:replayed"], 1
        # Warm-up (pool filled, statements compiled), not measured and not in the check's sums.
        warm = RunState(end=time.perf_counter() + 0.3)
        await asyncio.gather(
            *(
                worker(factory, users[w % len(users)], keys, random.Random(w), warm, replay_keys=replay_keys)
                for w in range(concurrency)
            )
        )
        state = RunState(end=math.inf)
        state.consumed = warm.consumed
        state.end = time.perf_counter() + duration
        started = time.perf_counter()
        before = CpuSample.take(None)
        await asyncio.gather(
            *(
                worker(
                    factory,
                    users[w % len(users)],
                    keys,
                    random.Random(1000 + w),
                    state,
                    replay_keys=replay_keys,
                )
                for w in range(concurrency)
            )
        )
        after = CpuSample.take(None)
        seconds = (state.last_done or time.perf_counter()) - started
        verdict = await check(factory, users, state, replays)
        return Row(
            layout=layout,
            concurrency=concurrency,
            operations=len(state.latencies),
            seconds=seconds,
            latencies=sorted(state.latencies),
            cpu=CpuUsage.between(before, after),
            errors=len(state.errors) + len(warm.errors),
            check=verdict if not state.errors else f"{verdict}; first error: {state.errors[0]}",
        )
    finally:
        await engine.dispose()


def report(rows: Sequence[Row]) -> None:
    print()
    print("Profit consumptions (session + consume_profit + commit), closed loop, PostgreSQL")
    header = (
        f"  {'layout':<13}{'workers':>8}{'ops':>8}{'ops/s':>9}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'client CPU':>11}{'host CPU':>9}{'errors':>7}  final balance"
    )
    print(header)
    print("  " + "-" * (len(header) - 2 + 14))
    for r in rows:
        host = "-" if r.cpu.host is None else f"{r.cpu.host:.0f}%"
        print(
            f"  {r.layout:<13}{r.concurrency:>8}{r.operations:>8}{r.per_second:>9,.0f}"
            f"{1000 * percentile(r.latencies, 0.5):>8.2f}{1000 * percentile(r.latencies, 0.99):>8.2f}"
            f"{r.cpu.client:>10.0f}%{host:>9}{r.errors:>7}  {r.check}"
        )
    print(
        "  client CPU = this process (the ledger, SQLAlchemy, asyncpg), host CPU = the whole machine\n"
        "  (PostgreSQL included), both in % of one core"
    )


async def run(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    for layout in LAYOUTS:
        for concurrency in args.concurrency:
            print(f"  measuring {layout}, {concurrency} workers ...", flush=True)
            async with scratch_postgres_database(args.postgres_url) as url:
                rows.append(await measure(url, layout, concurrency, args.duration))
    return rows


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 50], help="workers (1 50)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per row (3)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="admin URL for scratch DBs")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"CryptoUniverse credit ledger bench: {machine_facts()}, SQLAlchemy {version('sqlalchemy')}, "
        f"asyncpg {version('asyncpg')}"
    )
    started = time.perf_counter()
    rows = asyncio.run(run(args))
    report(rows)
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
