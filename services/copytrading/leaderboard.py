"""Leaders ranked by their record, and a leader's profile.

Method. Each leader's actions are replayed on a model portfolio that starts at 100: an entry puts its
`pct_equity` (10 % when the action does not say) of the portfolio's current equity into the symbol at the
action's price, an exit sells its `close_pct` of the holding at its price; stop-loss and take-profit
changes move nothing. Holdings are valued at the latest action price of their symbol (or at `prices` when
given). So the record measures the leader's decisions and their sizing, not the size of anyone's account.
Over a period of N days:

* return %: equity at the end / equity just before the period - 1;
* win rate %: exits in the period that realised a profit / exits in the period;
* max drawdown %: the deepest fall from a running peak of the equity curve within the period;
* trades: entries and exits in the period; followers: follows not stopped.

Ranking: return desc, then win rate desc, max drawdown asc, trades desc. Leaders without a trade in the
period are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Follow, Leader, LeaderAction, LeaderChannel
from db.types import utcnow
from services.copytrading.errors import LeaderNotFound
from services.copytrading.views import ActionView, LeaderView

ZERO = Decimal(0)
HUNDRED = Decimal(100)
START = Decimal(100)
DEFAULT_ENTRY_PCT = Decimal(10)
PERIODS = (7, 30, 90)
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class LeaderStats:
    period_days: int
    return_pct: Decimal
    win_rate: Decimal | None  # None without a closed trade
    max_drawdown_pct: Decimal
    trades: int
    wins: int
    closed: int


@dataclass(frozen=True, slots=True)
class LeaderRow:
    rank: int
    leader_id: int
    user_id: int
    display_name: str
    stats: LeaderStats
    followers: int


@dataclass(frozen=True, slots=True)
class LeaderProfile:
    leader: LeaderView
    stats: dict[int, LeaderStats]  # by period (7, 30, 90 days)
    followers: int
    channels: int
    equity: tuple[tuple[datetime, Decimal], ...]  # the model portfolio over the longest period
    recent: tuple[ActionView, ...]


@dataclass(frozen=True, slots=True)
class _Point:
    at: datetime
    equity: Decimal


def replay(
    actions: Sequence[ActionView], since: datetime, prices: Mapping[str, Decimal] | None = None
) -> tuple[LeaderStats, list[_Point]]:
    """The record of one leader's actions (oldest first) over the period starting at `since`."""
    cash = START
    held: dict[str, tuple[Decimal, Decimal]] = {}  # symbol -> (quantity, cost)
    last: dict[str, Decimal] = {}
    before = START
    points: list[_Point] = []
    trades = wins = closed = 0

    def equity() -> Decimal:
        return cash + sum((qty * last.get(symbol, ZERO) for symbol, (qty, _) in held.items()), ZERO)

    for action in actions:
        price = action.price
        if price is None or price <= 0 or action.kind not in ("entry", "exit"):
            continue
        in_period = action.created_at >= since
        last[action.symbol] = price
        value = equity()
        if action.kind == "entry":
            pct = action.pct_equity if action.pct_equity is not None else DEFAULT_ENTRY_PCT
            spend = min(value * min(pct, HUNDRED) / HUNDRED, cash)
            if spend > 0:
                qty, cost = held.get(action.symbol, (ZERO, ZERO))
                held[action.symbol] = (qty + spend / price, cost + spend)
                cash -= spend
        else:
            qty, cost = held.get(action.symbol, (ZERO, ZERO))
            if qty <= 0:
                continue
            fraction = min(action.close_pct if action.close_pct is not None else HUNDRED, HUNDRED) / HUNDRED
            sold, basis = qty * fraction, cost * fraction
            proceeds = sold * price
            cash += proceeds
            held[action.symbol] = (qty - sold, cost - basis)
            if held[action.symbol][0] <= 0:
                del held[action.symbol]
            if in_period:
                closed += 1
                wins += proceeds > basis
        if in_period:
            trades += 1
            points.append(_Point(action.created_at, equity()))
        else:
            before = equity()
    if prices:
        last.update({symbol: price for symbol, price in prices.items() if symbol in held})
        if points:
            points.append(_Point(points[-1].at, equity()))
    series = [_Point(since, before), *points]
    end = series[-1].equity
    peak, deepest = series[0].equity, ZERO
    for point in series:
        peak = max(peak, point.equity)
        if peak > 0:
            deepest = max(deepest, (peak - point.equity) / peak * HUNDRED)
    stats = LeaderStats(
        period_days=0,
        return_pct=((end / before - 1) * HUNDRED).quantize(CENT) if before > 0 else ZERO,
        win_rate=(Decimal(wins) / closed * HUNDRED).quantize(CENT) if closed else None,
        max_drawdown_pct=deepest.quantize(CENT),
        trades=trades,
        wins=wins,
        closed=closed,
    )
    return stats, series


def _with_days(stats: LeaderStats, days: int) -> LeaderStats:
    return LeaderStats(
        days, stats.return_pct, stats.win_rate, stats.max_drawdown_pct, stats.trades, stats.wins, stats.closed
    )


class Leaderboard:
    def __init__(self, session: AsyncSession, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.session = session
        self.clock = clock

    async def rank(
        self, period_days: int = 30, *, limit: int = 20, prices: Mapping[str, Decimal] | None = None
    ) -> list[LeaderRow]:
        """Active leaders with trades in the last `period_days`, best first (see the module docstring)."""
        if period_days <= 0:
            raise ValueError("a period has at least one day")
        since = self.clock() - timedelta(days=period_days)
        leaders = list(await self.session.scalars(select(Leader).where(Leader.active.is_(True))))
        if not leaders:
            return []
        actions = await self._actions([leader.id for leader in leaders])
        followers = await self._followers()
        rows = []
        for leader in leaders:
            stats, _ = replay(actions.get(leader.id, []), since, prices)
            if stats.trades == 0:
                continue
            rows.append((leader, _with_days(stats, period_days)))
        rows.sort(
            key=lambda item: (
                -item[1].return_pct,
                -(item[1].win_rate if item[1].win_rate is not None else Decimal(-1)),
                item[1].max_drawdown_pct,
                -item[1].trades,
                item[0].id,
            )
        )
        return [
            LeaderRow(
                rank=index,
                leader_id=leader.id,
                user_id=leader.user_id,
                display_name=leader.display_name,
                stats=stats,
                followers=followers.get(leader.id, 0),
            )
            for index, (leader, stats) in enumerate(rows[:limit], start=1)
        ]

    async def stats(self, leader_id: int, period_days: int = 30) -> LeaderStats:
        since = self.clock() - timedelta(days=period_days)
        stats, _ = replay((await self._actions([leader_id])).get(leader_id, []), since)
        return _with_days(stats, period_days)

    async def profile(
        self, leader_id: int, *, recent: int = 10, prices: Mapping[str, Decimal] | None = None
    ) -> LeaderProfile:
        """A leader's record over 7, 30 and 90 days, their followers, and the equity curve for the chart
        (`services.copytrading.chart.equity_chart_png(profile.equity, name)`)."""
        leader = await self.session.get(Leader, leader_id)
        if leader is None:
            raise LeaderNotFound(leader_id=leader_id)
        actions = (await self._actions([leader_id])).get(leader_id, [])
        now = self.clock()
        stats: dict[int, LeaderStats] = {}
        series: list[_Point] = []
        for days in PERIODS:
            result, points = replay(actions, now - timedelta(days=days), prices)
            stats[days] = _with_days(result, days)
            series = points
        series.append(_Point(now, series[-1].equity))
        channels = await self.session.scalar(
            select(func.count(LeaderChannel.id)).where(LeaderChannel.leader_id == leader_id)
        )
        return LeaderProfile(
            leader=LeaderView.of(leader),
            stats=stats,
            followers=(await self._followers()).get(leader_id, 0),
            channels=int(channels or 0),
            equity=tuple((point.at, point.equity.quantize(CENT)) for point in series),
            recent=tuple(reversed(actions[-recent:])) if recent > 0 else (),
        )

    async def _actions(self, leader_ids: list[int]) -> dict[int, list[ActionView]]:
        rows = await self.session.scalars(
            select(LeaderAction)
            .where(LeaderAction.leader_id.in_(leader_ids))
            .order_by(LeaderAction.created_at, LeaderAction.id)
        )
        found: dict[int, list[ActionView]] = {}
        for row in rows:
            found.setdefault(row.leader_id, []).append(ActionView.of(row))
        return found

    async def _followers(self) -> dict[int, int]:
        rows = await self.session.execute(
            select(Follow.leader_id, func.count(Follow.id))
            .where(Follow.status != "stopped")
            .group_by(Follow.leader_id)
        )
        return {leader_id: int(count) for leader_id, count in rows.all()}
