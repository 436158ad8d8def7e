"""Paper market orders: the fill engine, the service layer and the `/buy` round trip through the emulators.

    python bench/paper_fills.py [--sections engine service e2e] [--dbs sqlite postgres] [--users 1 20]
                                [--duration 3] [--sources ccxt ccxt-nothrottle memory] [--round-trips 100]

1. Fill engine: `services.trading.paper.walk_book` alone, on the 50-level BTC/USDT book of the exchange
   emulator's market (exact Decimals), buy and sell, by quote amount and by base amount, for an order that
   fits in the best level and for one that walks ~45 of the 50 levels.
2. Service layer: `TradingService` as the bot uses it, with no Telegram in between. One market order =
   the `/buy` update (a session: `preview` + `request_confirmation`, committed) and then the Confirm press
   (a new session: `confirm`, which commits). U users run concurrently in a closed loop for the window;
   every user did one unmeasured order first (paper account created, markets loaded). Market data from:
     * ccxt            - the exchange registry exactly as the bot builds it (shared public ccxt client,
                         ccxt's own rate limiter on) against the Binance emulator over HTTP;
     * ccxt-nothrottle - the same with ccxt's rate limiter off: what ccxt + HTTP cost by themselves;
     * memory          - a stand-in `MarketData` whose `public(exchange_id)` serves the same market info and
                         the same 50-level book from memory: isolates the service + database cost from
                         ccxt/HTTP/the emulator.
   The exchange emulators run in a child process (`python -m sandbox.exchanges --frozen`), so their CPU is
   not this process's; the market is frozen, so every order fills at the same prices. After each run, every
   user's balances are checked exactly (Decimal): USDT = start - sum(cost + fee), BTC = sum(amount) of the
   fills the service reported, and the database holds exactly those orders.
3. End to end: the real bot (`tests.stack.bot_stack`, polling, as the end-to-end tests run it) against the
   Telegram emulator and the exchange emulators, all in this process. A Telegram user (the emulator's
   client, over its HTTP control API) sends `/buy BTC 100`, waits for the card, presses "✅ Confirm" and
   waits for the "Bought ..." edit: sequential round trips, timed whole and in halves (card, fill). Users
   rotate every 10 round trips so the default risk limit (25% of equity per position) is never hit; each
   user's first round trip (user and paper account creation) is not measured.

Exits 0 whatever the figures are: it is a measurement.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `keyboards` and `tests` are not installed
if sys.pycache_prefix is None:  # ccxt alone is ~10 s to compile: cache bytecode outside the project
    sys.dont_write_bytecode = False
    sys.pycache_prefix = str(Path("/tmp") / "cu-bench-pycache")

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from importlib.metadata import version
from typing import TYPE_CHECKING

from bench._common import (
    DEFAULT_POSTGRES_URL,
    ROOT,
    CpuSample,
    CpuUsage,
    machine_facts,
    percentile,
    scratch_postgres_database,
)
from services.exchanges.errors import ExchangeAuthError, ExchangeError
from services.exchanges.types import (
    Balance,
    Candle,
    MarketInfo,
    OrderBook,
    OrderResult,
    OrderType,
    Side,
    StopKind,
    StopSupport,
    Ticker,
)
from services.trading.paper import round_step

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from services.trading.service import Execution, MarketData, TradingConfig
    from services.users import UserProfile

SECTIONS = ("engine", "service", "e2e")
DBS = ("sqlite", "postgres")
SOURCES = ("ccxt", "ccxt-nothrottle", "memory")
SYMBOL = "BTC/USDT"
QUOTE = "USDT"
BASE = "BTC"
EXCHANGE = "binance"
MARKET_SEED = 7  # as tests.stack.bot_stack
FIRST_TELEGRAM_ID = 700_000_001
E2E_TRADES_PER_USER = 10  # 11 x 100 USDT per user stays under the default 25%-of-equity position limit
STARTUP_TIMEOUT = 60.0
REPLY_TIMEOUT = 15.0


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


# ------------------------------------------------------------------------------------------- 1. fill engine


@dataclass(frozen=True)
class EngineRow:
    case: str
    levels: int  # book levels the fill touched
    fills_per_second: float

    @property
    def microseconds(self) -> float:
        return 1e6 / self.fills_per_second


def emulator_book(depth: int = 50) -> tuple[OrderBook, MarketInfo]:
    """The BTC/USDT book and market rules the Binance emulator serves (seed 7, as the tests use)."""
    from sandbox.exchanges import Market

    market = Market(seed=MARKET_SEED, live=False)
    bids, asks = market.book(SYMBOL, depth)
    book = OrderBook(
        symbol=SYMBOL,
        bids=tuple((level.price, level.amount) for level in bids),
        asks=tuple((level.price, level.amount) for level in asks),
        timestamp_ms=market.now_ms(),
    )
    spec = market.spec(SYMBOL)
    info = MarketInfo(
        symbol=SYMBOL,
        base=BASE,
        quote=QUOTE,
        amount_step=spec.step,
        price_step=spec.tick,
        min_amount=spec.min_amount,
        min_cost=spec.min_notional,
        taker_fee=Decimal("0.001"),
        maker_fee=Decimal("0.001"),
    )
    return book, info


def _levels_touched(levels: Sequence[tuple[Decimal, Decimal]], amount: Decimal) -> int:
    remaining = amount
    for index, (_price, size) in enumerate(levels, start=1):
        remaining -= size
        if remaining <= 0:
            return index
    return len(levels)


def bench_engine(seconds_per_case: float) -> list[EngineRow]:
    from services.trading.paper import walk_book

    book, info = emulator_book()
    fee, step = info.taker_fee, info.amount_step
    assert step is not None
    ask_base = sum((size for _, size in book.asks), Decimal(0))
    bid_base = sum((size for _, size in book.bids), Decimal(0))
    ask_quote = sum((price * size for price, size in book.asks), Decimal(0))
    bid_quote = sum((price * size for price, size in book.bids), Decimal(0))
    deep = Decimal("0.9")  # of the whole side: walks ~45 of the 50 levels
    cases: list[tuple[str, Side, str, Decimal]] = [
        ("buy, quote 100 USDT", "buy", "quote", Decimal(100)),
        ("buy, base 0.001 BTC", "buy", "base", Decimal("0.001")),
        ("sell, quote 100 USDT", "sell", "quote", Decimal(100)),
        ("sell, base 0.001 BTC", "sell", "base", Decimal("0.001")),
        ("buy, quote 90% of the asks", "buy", "quote", (ask_quote * deep).quantize(Decimal("0.01"))),
        ("buy, base 90% of the asks", "buy", "base", (ask_base * deep).quantize(step)),
        ("sell, quote 90% of the bids", "sell", "quote", (bid_quote * deep).quantize(Decimal("0.01"))),
        ("sell, base 90% of the bids", "sell", "base", (bid_base * deep).quantize(step)),
    ]
    rows: list[EngineRow] = []
    for case, side, unit, value in cases:

        def fill(side: Side = side, unit: str = unit, value: Decimal = value) -> Decimal:
            if unit == "quote":
                return walk_book(book, side, fee, quote_amount=value, amount_step=step).amount
            return walk_book(book, side, fee, amount=value, amount_step=step).amount

        amount = fill()
        levels = _levels_touched(book.asks if side == "buy" else book.bids, amount)
        calls, batch = 0, 100
        started = time.perf_counter()
        while True:
            for _ in range(batch):
                fill()
            calls += batch
            elapsed = time.perf_counter() - started
            if elapsed >= seconds_per_case:
                break
        rows.append(EngineRow(case=case, levels=levels, fills_per_second=calls / elapsed))
    return rows


def report_engine(rows: Sequence[EngineRow]) -> None:
    print()
    print("1. Fill engine: walk_book on the emulator's 50-level BTC/USDT book (one core, no I/O)")
    header = f"  {'order':<30}{'levels':>8}{'fills/s':>12}{'us/fill':>10}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    for row in rows:
        print(f"  {row.case:<30}{row.levels:>8}{row.fills_per_second:>12,.0f}{row.microseconds:>10.1f}")


# ------------------------------------------------------------------------------------------- 2. service layer


class BookOnlyClient:
    """A public `ExchangeClient` serving one market and its book from memory (only what paper orders use)."""

    def __init__(self, exchange_id: str, info: MarketInfo, book: OrderBook, ticker: Ticker) -> None:
        self.exchange_id = exchange_id
        self._info = info
        self._book = book
        self._ticker = ticker

    async def load_markets(self, reload: bool = False) -> dict[str, MarketInfo]:
        return {self._info.symbol: self._info}

    async def market(self, symbol: str) -> MarketInfo:
        if symbol.upper() != self._info.symbol:
            raise KeyError(symbol)
        return self._info

    async def fetch_ticker(self, symbol: str) -> Ticker:
        return self._ticker

    async def fetch_tickers(self, symbols: list[str] | None = None) -> dict[str, Ticker]:
        return {self._info.symbol: self._ticker}

    async def fetch_order_book(
        self, symbol: str, limit: int = 50, *, max_age: float | None = None
    ) -> OrderBook:
        return self._book

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since_ms: int | None = None, limit: int = 500
    ) -> list[Candle]:
        raise ExchangeError("exchange.not_supported", exchange=self.exchange_id)

    # A public client has no account: private calls refuse exactly as the real public client does.
    def _private(self) -> ExchangeAuthError:
        return ExchangeAuthError("exchange.credentials_required", exchange=self.exchange_id)

    async def fetch_balance(self) -> dict[str, Balance]:
        raise self._private()

    async def place_order(
        self,
        symbol: str,
        side: Side,
        order_type: OrderType,
        amount: Decimal,
        price: Decimal | None,
        client_order_id: str,
    ) -> OrderResult:
        raise self._private()

    async def find_order(self, symbol: str, client_order_id: str) -> OrderResult | None:
        raise self._private()

    async def fetch_order(self, symbol: str, exchange_order_id: str) -> OrderResult:
        raise self._private()

    async def cancel_order(self, symbol: str, exchange_order_id: str) -> OrderResult | None:
        raise self._private()

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderResult]:
        raise self._private()

    def stop_support(self) -> StopSupport:
        return StopSupport()  # paper protections are watched, never placed

    async def place_stop(
        self, symbol: str, kind: StopKind, amount: Decimal, trigger_price: Decimal, client_order_id: str
    ) -> OrderResult:
        raise self._private()

    async def find_stop(self, symbol: str, client_order_id: str) -> OrderResult | None:
        raise self._private()

    async def cancel_stop(
        self, symbol: str, exchange_order_id: str | None, client_order_id: str
    ) -> OrderResult | None:
        raise self._private()

    async def withdrawal_enabled(self) -> bool | None:
        return None

    def amount_to_precision(self, symbol: str, amount: Decimal) -> Decimal:
        return round_step(amount, self._info.amount_step)

    def price_to_precision(self, symbol: str, price: Decimal) -> Decimal:
        return round_step(price, self._info.price_step)

    async def close(self) -> None:
        return None


class BookOnlyMarketData:
    """The `MarketData` the service needs (`public(exchange_id)`), without ccxt, HTTP or an emulator."""

    def __init__(self, client: BookOnlyClient) -> None:
        self._client = client

    def public(self, exchange_id: str) -> BookOnlyClient:
        return self._client


@dataclass
class ExchangeProcess:
    binance_url: str
    pid: int


def _child_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "cu-bench-pycache"))
    return env


@contextlib.asynccontextmanager
async def exchange_emulators_process() -> AsyncIterator[ExchangeProcess]:
    """`python -m sandbox.exchanges --frozen` in a child process; yields the Binance emulator's URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox.exchanges",
        "--frozen",
        "--seed",
        str(MARKET_SEED),
        cwd=str(ROOT),
        env=_child_environment(),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), STARTUP_TIMEOUT)
        if not line:
            raise RuntimeError(f"the exchange emulators exited during startup (code {await process.wait()})")
        info = json.loads(line)
        yield ExchangeProcess(binance_url=str(info[EXCHANGE]["base_url"]), pid=process.pid)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


@dataclass
class ServiceResult:
    db: str
    source: str
    users: int
    seconds: float
    latencies: list[float]  # one order (preview session + confirm session), seconds, sorted
    errors: int
    cpu: CpuUsage
    check: str  # the balance check's verdict

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds > 0 else math.nan

    @property
    def cpu_ms_per_order(self) -> float:
        """This process's CPU time (service, SQLAlchemy, drivers, ccxt) per order, in ms."""
        return 10 * self.cpu.client / self.throughput if self.latencies else math.nan


@dataclass
class ServiceState:
    end: float
    latencies: list[float] = field(default_factory=list)
    executions: dict[int, list[Execution]] = field(default_factory=lambda: defaultdict(list))
    errors: int = 0
    first_error: str | None = None
    last_done: float = 0.0

    def error(self, what: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = what


async def prepare_database(url: str) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession], int]:
    from db import migrate
    from db.engine import create_engine, create_session_factory
    from services.tenants import TenantService

    engine = create_engine(url)
    await migrate.upgrade(engine)
    factory = create_session_factory(engine)
    async with factory() as session:
        tenant = await TenantService(session).ensure(
            slug="default", name="Bench", default_locale="en", bot_id=None
        )
        await session.commit()
    return engine, factory, tenant.id


async def make_users(
    factory: async_sessionmaker[AsyncSession], tenant_id: int, count: int
) -> list[UserProfile]:
    from services.users import UserService

    users = []
    async with factory() as session:
        service = UserService(session)
        for index in range(count):
            telegram_id = FIRST_TELEGRAM_ID + index
            users.append(
                await service.touch(
                    tenant_id=tenant_id,
                    telegram_id=telegram_id,
                    username=None,
                    first_name=f"Bench{telegram_id}",
                    language_code="en",
                )
            )
        await session.commit()
    return users


async def market_order(
    factory: async_sessionmaker[AsyncSession],
    market_data: MarketData,
    config: TradingConfig,
    user: UserProfile,
    args: str,
) -> Execution:
    """One `/buy` as the bot runs it: the command's session (preview + confirmation, committed), then the
    Confirm press's session (confirm commits the fill itself)."""
    from services.trading.parser import parse_trade_command
    from services.trading.service import RiskRefused, TradingService

    async with factory() as session:
        trading = TradingService(session, market_data, config)
        preview = await trading.preview(user, parse_trade_command("buy", args))
        if not preview.risk.allowed:
            raise RiskRefused(preview.risk)
        confirmation = await trading.request_confirmation(user, preview)
        await session.commit()
    async with factory() as session:
        return await TradingService(session, market_data, config).confirm(user, confirmation.token)


async def service_user(
    factory: async_sessionmaker[AsyncSession],
    market_data: MarketData,
    config: TradingConfig,
    user: UserProfile,
    args: str,
    state: ServiceState,
) -> None:
    while time.perf_counter() < state.end:
        started = time.perf_counter()
        try:
            execution = await market_order(factory, market_data, config, user, args)
        except Exception as exc:
            state.error(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(0.01)
            continue
        done = time.perf_counter()
        state.executions[user.id].append(execution)
        state.latencies.append(done - started)
        state.last_done = done


async def check_balances(
    factory: async_sessionmaker[AsyncSession],
    users: Sequence[UserProfile],
    executions: dict[int, list[Execution]],
    start_balance: Decimal,
) -> str:
    """Every user's USDT went down by exactly the sum of cost + fee of the fills, BTC up by their amounts,
    and the database holds exactly those orders."""
    from sqlalchemy import select

    from db.models import ExchangeAccount, Order, PaperBalance

    problems: list[str] = []
    total_orders = 0
    async with factory() as session:
        for user in users:
            fills = executions.get(user.id, [])
            total_orders += len(fills)
            account_ids = list(
                await session.scalars(select(ExchangeAccount.id).where(ExchangeAccount.user_id == user.id))
            )
            rows = (
                await session.scalars(select(PaperBalance).where(PaperBalance.account_id.in_(account_ids)))
            ).all()
            money = {row.asset: row.free + row.locked for row in rows}
            orders = (await session.scalars(select(Order).where(Order.user_id == user.id))).all()
            want_quote = start_balance - sum((f.cost + f.fee for f in fills), Decimal(0))
            want_base = sum((f.amount for f in fills), Decimal(0))
            if money.get(QUOTE) != want_quote:
                problems.append(f"user {user.id}: {QUOTE} {money.get(QUOTE)} != {want_quote}")
            if money.get(BASE, Decimal(0)) != want_base:
                problems.append(f"user {user.id}: {BASE} {money.get(BASE)} != {want_base}")
            if sorted(o.id for o in orders) != sorted(f.order_id for f in fills):
                problems.append(f"user {user.id}: {len(orders)} orders stored, {len(fills)} reported")
            elif sum((o.cost + o.fee for o in orders), Decimal(0)) != start_balance - want_quote:
                problems.append(f"user {user.id}: stored orders' cost + fee differ from the fills")
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        return "MISMATCH: " + "; ".join(problems[:3]) + more
    return f"exact ({len(users)} users, {total_orders} orders)"


async def fetch_reference(binance_url: str) -> BookOnlyClient:
    """Market info, the 50-level book and the ticker, fetched once through the real ccxt client."""
    from services.exchanges.registry import ExchangeConfig, ExchangeRegistry

    registry = ExchangeRegistry({EXCHANGE: ExchangeConfig(api_url=binance_url, rate_limit=False)})
    try:
        client = registry.public(EXCHANGE)
        info = await client.market(SYMBOL)
        book = await client.fetch_order_book(SYMBOL, 50)
        ticker = await client.fetch_ticker(SYMBOL)
    finally:
        await registry.close()
    if len(book.asks) < 50 or len(book.bids) < 50:
        raise RuntimeError(f"the emulator's book has {len(book.bids)}/{len(book.asks)} levels, not 50")
    return BookOnlyClient(EXCHANGE, info, book, ticker)


async def measure_service(
    db: str,
    source: str,
    users_count: int,
    *,
    duration: float,
    order_args: str,
    exchange: ExchangeProcess,
    reference: BookOnlyClient,
    postgres_url: str,
) -> ServiceResult:
    from services.exchanges.registry import ExchangeConfig, ExchangeRegistry
    from services.risk.limits import RiskLimits
    from services.trading.service import TradingConfig

    # The bot's defaults (bot/settings.py), with a large paper balance: thousands of 100 USDT orders per
    # user fit under the 25%-of-equity position limit.
    config = TradingConfig(paper_starting_balance=Decimal(10_000_000), limits=RiskLimits())
    async with contextlib.AsyncExitStack() as stack:
        if db == "sqlite":
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cu-bench-")))
            url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        else:
            url = await stack.enter_async_context(scratch_postgres_database(postgres_url))
        engine, factory, tenant_id = await prepare_database(url)
        stack.push_async_callback(engine.dispose)
        market_data: MarketData
        if source == "memory":
            market_data = BookOnlyMarketData(reference)
        else:
            registry = ExchangeRegistry(
                {EXCHANGE: ExchangeConfig(api_url=exchange.binance_url, rate_limit=source == "ccxt")}
            )
            stack.push_async_callback(registry.close)
            market_data = registry
        users = await make_users(factory, tenant_id, users_count)
        # One order per user, concurrently and not measured (paper accounts created, markets loaded, the
        # connection pool filled); those orders are in the balance check.
        state = ServiceState(end=math.inf)
        warmup = await asyncio.gather(
            *(market_order(factory, market_data, config, user, order_args) for user in users)
        )
        for user, execution in zip(users, warmup, strict=True):
            state.executions[user.id].append(execution)
        before = CpuSample.take(exchange.pid if source != "memory" else None)
        state.end = before.wall + duration
        state.last_done = before.wall
        await asyncio.gather(
            *(service_user(factory, market_data, config, user, order_args, state) for user in users)
        )
        after = CpuSample.take(exchange.pid if source != "memory" else None)
        check = await check_balances(factory, users, state.executions, config.paper_starting_balance)
    if state.first_error is not None:
        print(f"  ! {db}/{source} U={users_count}: {state.errors} errors; first: {state.first_error}")
    return ServiceResult(
        db=db,
        source=source,
        users=users_count,
        seconds=state.last_done - before.wall,
        latencies=sorted(state.latencies),
        errors=state.errors,
        cpu=CpuUsage.between(before, after),
        check=check,
    )


def report_service(results: Sequence[ServiceResult], order_args: str) -> None:
    print()
    print(
        f"2. Service layer: market orders (`/buy {order_args}`: preview + request_confirmation, committed; "
        "then confirm, committed) per second"
    )
    header = (
        f"  {'db':<9}{'market data':<17}{'users':>6}{'orders/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'errors':>8}{'CPU ms/ord':>12}{'bench CPU%':>12}{'emul CPU%':>11}{'host CPU%':>11}  balances"
    )
    print(header)
    print("  " + "-" * (len(header) - 2 + 24))
    for r in results:
        print(
            f"  {r.db:<9}{r.source:<17}{r.users:>6}{r.throughput:>10.1f}"
            f"{1000 * percentile(r.latencies, 0.5):>9.2f}{1000 * percentile(r.latencies, 0.99):>9.2f}"
            f"{r.errors:>8}{_fmt(r.cpu_ms_per_order, '.2f'):>12}{_fmt(r.cpu.client, '.0f'):>12}"
            f"{_fmt(r.cpu.server, '.0f'):>11}{_fmt(r.cpu.host, '.0f'):>11}  {r.check}"
        )
    print(
        "  p50/p99: one order (both sessions) as its user waited for it; CPU ms/ord: this process's CPU per "
        "order;\n  emul CPU%: the exchange emulators' process (100 = one core); host CPU%: the whole machine "
        f"({os.cpu_count()} cores = {100 * (os.cpu_count() or 1)}%)"
    )


# ------------------------------------------------------------------------------------------- 3. end to end


@dataclass
class E2EResult:
    db: str
    card: list[float]  # seconds, sorted
    fill: list[float]
    whole: list[float]
    errors: int
    check: str


async def measure_e2e(db: str, round_trips: int, *, postgres_url: str) -> E2EResult:
    from sqlalchemy import select

    from db.models import ExchangeAccount, Order, PaperBalance, User
    from sandbox.telegram.client import ChatUser
    from tests.stack import bot_stack

    users_needed = max(1, math.ceil(round_trips / E2E_TRADES_PER_USER))
    card: list[float] = []
    fill: list[float] = []
    whole: list[float] = []
    errors: list[str] = []
    bought: dict[int, int] = defaultdict(int)

    async def round_trip(user: ChatUser) -> tuple[float, float] | None:
        started = time.perf_counter()
        await user.send("/buy BTC 100")
        message = await user.next_message(timeout=REPLY_TIMEOUT)
        shown = time.perf_counter()
        if "✅ Confirm" not in message.button_texts:
            errors.append(f"no confirmation card: {message.text[:80]!r}")
            return None
        await user.press(message, text="✅ Confirm")
        done = await user.next_message(timeout=REPLY_TIMEOUT)
        finished = time.perf_counter()
        if "Bought" not in done.text or done.message_id != message.message_id:
            errors.append(f"no fill: {done.text[:80]!r}")
            return None
        bought[user.user_id] += 1
        return shown - started, finished - shown

    async with contextlib.AsyncExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cu-bench-")))
        if db == "sqlite":
            url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        else:
            url = await stack.enter_async_context(scratch_postgres_database(postgres_url))
        bot = await stack.enter_async_context(
            bot_stack(workdir, database_url=url, exchanges=True, log_level="WARNING")
        )
        done_trips = 0
        for index in range(users_needed):
            user = bot.user(FIRST_TELEGRAM_ID + index)
            await round_trip(user)  # creates the user and the paper account: not measured
            for _ in range(min(E2E_TRADES_PER_USER, round_trips - done_trips)):
                halves = await round_trip(user)
                done_trips += 1
                if halves is not None:
                    card.append(halves[0])
                    fill.append(halves[1])
                    whole.append(halves[0] + halves[1])
        problems: list[str] = []
        async with bot.app.session_factory() as session:
            for telegram_id, count in bought.items():
                user_id = await session.scalar(select(User.id).where(User.telegram_id == telegram_id))
                accounts = select(ExchangeAccount.id).where(ExchangeAccount.user_id == user_id)
                orders = (await session.scalars(select(Order).where(Order.account_id.in_(accounts)))).all()
                usdt = await session.scalar(
                    select(PaperBalance.free).where(
                        PaperBalance.account_id.in_(accounts), PaperBalance.asset == QUOTE
                    )
                )
                spent = sum((o.cost + o.fee for o in orders), Decimal(0))
                start = bot.settings.trading.paper_starting_balance
                if len(orders) != count or usdt != start - spent:
                    problems.append(f"telegram user {telegram_id}: {len(orders)} orders, {QUOTE} {usdt}")
        fills = sum(bought.values())
        check = "MISMATCH: " + "; ".join(problems[:3]) if problems else f"exact ({fills} fills)"
    if errors:
        print(f"  ! e2e {db}: {len(errors)} errors; first: {errors[0]}")
    return E2EResult(
        db=db, card=sorted(card), fill=sorted(fill), whole=sorted(whole), errors=len(errors), check=check
    )


def report_e2e(results: Sequence[E2EResult]) -> None:
    print()
    print(
        '3. End to end: `/buy BTC 100` -> card -> press Confirm -> "Bought" (Telegram emulator, real bot '
        "in polling mode, ccxt, Binance emulator; one process)"
    )
    header = (
        f"  {'db':<9}{'trips':>6}{'whole p50':>11}{'p99':>9}{'card p50':>10}{'p99':>9}"
        f"{'fill p50':>10}{'p99':>9}{'errors':>8}  balances"
    )
    print(header)
    print("  " + "-" * (len(header) - 2 + 16))

    def ms(values: Sequence[float], fraction: float) -> str:
        return _fmt(1000 * percentile(values, fraction), ".1f")

    for r in results:
        print(
            f"  {r.db:<9}{len(r.whole):>6}{ms(r.whole, 0.5):>11}{ms(r.whole, 0.99):>9}"
            f"{ms(r.card, 0.5):>10}{ms(r.card, 0.99):>9}{ms(r.fill, 0.5):>10}{ms(r.fill, 0.99):>9}"
            f"{r.errors:>8}  {r.check}"
        )
    print(
        "  milliseconds, as the user sees them: card = /buy sent -> card received; fill = Confirm pressed -> "
        "\"Bought\" edit received;\n  each includes the emulator's long poll and the bot's polling of "
        "getUpdates (the bot, the emulators and this client share one event loop)"
    )


# --------------------------------------------------------------------------------------------- main


async def run_service(args: argparse.Namespace) -> list[ServiceResult]:
    results: list[ServiceResult] = []
    async with exchange_emulators_process() as exchange:
        reference = await fetch_reference(exchange.binance_url)
        for users in args.users:
            for db in args.dbs:
                for source in args.sources:
                    print(f"  measuring the service layer: {db}, {source}, {users} users ...", flush=True)
                    try:
                        results.append(
                            await measure_service(
                                db,
                                source,
                                users,
                                duration=args.duration,
                                order_args=args.order,
                                exchange=exchange,
                                reference=reference,
                                postgres_url=args.postgres_url,
                            )
                        )
                    except OSError as exc:
                        print(f"  ! {db}/{source} skipped: {type(exc).__name__}: {exc}", flush=True)
    return results


async def run_e2e(args: argparse.Namespace) -> list[E2EResult]:
    results: list[E2EResult] = []
    for db in args.dbs:
        print(f"  measuring end to end: {db}, {args.round_trips} round trips ...", flush=True)
        try:
            results.append(await measure_e2e(db, args.round_trips, postgres_url=args.postgres_url))
        except OSError as exc:
            print(f"  ! e2e {db} skipped: {type(exc).__name__}: {exc}", flush=True)
    return results


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--dbs", nargs="+", choices=DBS, default=list(DBS))
    parser.add_argument("--engine-seconds", type=float, default=0.3, help="per fill-engine case (0.3)")
    parser.add_argument("--users", type=int, nargs="+", default=[1, 20], help="concurrent users (1 20)")
    parser.add_argument("--sources", nargs="+", choices=SOURCES, default=list(SOURCES))
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per service-layer row (3)")
    parser.add_argument("--order", default="BTC 100", help="the /buy arguments of each order ('BTC 100')")
    parser.add_argument("--round-trips", type=int, default=100, help="measured /buy round trips per db")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="admin URL for scratch DBs")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from bot.logging import setup_logging

    setup_logging("WARNING", "console")
    print(
        f"CryptoUniverse paper fills bench: {machine_facts()}, ccxt {version('ccxt')}, "
        f"SQLAlchemy {version('sqlalchemy')}, aiogram {version('aiogram')}"
    )
    started = time.perf_counter()
    sections: list[Callable[[], None]] = []
    if "engine" in args.sections:
        print("  measuring the fill engine ...", flush=True)
        engine_rows = bench_engine(args.engine_seconds)
        sections.append(lambda: report_engine(engine_rows))
    if "service" in args.sections:
        service_rows = asyncio.run(run_service(args))
        sections.append(lambda: report_service(service_rows, args.order))
    if "e2e" in args.sections:
        e2e_rows = asyncio.run(run_e2e(args))
        sections.append(lambda: report_e2e(e2e_rows))
    for show in sections:
        show()
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
