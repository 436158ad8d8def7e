"""Mirroring a leader's actions into their followers' accounts.

Recording. Every leader action is stored once (`record_action`), keyed by its source: `order:<id>` for the
leader's own trade, `post:<chat>:<message>` for a post in their channel, `signal:<id>:<leader>` for a
consensus signal. Recording the same source again returns the stored action (`created` false), so a
redelivered update never copies twice.

Fan-out. `fan_out(action_id)` copies an action to every follow of the leader, each in its own session and
task: one follower's failure never holds up another. Concurrency is bounded per exchange (an
`asyncio.Semaphore` per exchange id; paper copies share one of their own). Each (action, follow) is one
`copy_orders` row, inserted before anything is executed, and its order carries the deterministic client
order id `cp<action id>f<follow id>`: running a fan-out again replays what was done and never places an
order twice (an order stored under that id is looked up, not resent). In the bot, fan-outs run off the
update path in the application's queue (`services/copytrading/queue.py`), one worker per action at a time
(`services/copytrading/claims.py`); the lanes here are shared by every worker of the process.

* entry (buy): spends the follow's allocation (fixed USDT, or a percentage of the account's equity),
  capped by its maximum per trade; the copy is recorded in `copy_positions`. The order goes through
  `AutoTrader` (services/trading/auto.py): the same balance, minimum, risk (`check_order`) and, live,
  `live_entry` checks as a manual order, without the confirmation card (the follow authorised it).
  The leader's stop-loss goes onto the follower's position; targets are the leader's to act on.
* exit (sell; a SHORT post on spot): sells what this follow copied of the symbol (`close_pct` of it for a
  partial exit), at most what the account holds, whatever the leader's own size was. Paused follows still
  mirror exits of what they copied; entries only go to active follows.
* sl / tp: moves the follower's stop-loss / take-profit of the symbol, when the follow holds a copy of it.

Stop-copy drawdown: before each copied entry and after each copied exit the follow's copy equity (the
account's equity when followed + realised PnL of copied exits + unrealised PnL of open copies at the bid)
is compared with its high-water mark; falling `stop_drawdown_pct` below it pauses the follow (reason
`drawdown`) and the result says so.

Fees: a live copied exit that realises a profit (in a USD quote) is charged `fee_rate` (default 30 %) of
the profit as credits, in the unit the credit ledger uses for profit (1 credit per USD): what the credit
balance covers is a `fee` entry (`CreditLedger.charge`), any rest becomes debt through
`CreditLedger.consume_profit` (which blocks new live entries until paid, as uncovered profit does). This
comes on top of the ledger's own consumption of the profit by `LiveOrders.book`. A `leader_revenue` row
records the profit, the fee and the leader's share (`leader_share`, default 50 % of the fee), which is the
leader's revenue balance. The idempotency key is per copy order: `copyfee:<copy order id>`. Paper copies
pay nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import (
    CopyOrder,
    CopyPosition,
    ExchangeAccount,
    Follow,
    Leader,
    LeaderAction,
    LeaderChannel,
    LeaderRevenue,
    Order,
    Position,
    User,
)
from db.scoping import of_tenant
from db.types import utcnow
from services.consensus.service import SignalResult
from services.copytrading.signal_format import ParsedSignal, SignalRejected, parse_signal_post
from services.copytrading.views import ActionView, FollowView
from services.credits.ledger import CREDIT_QUANTUM, CreditLedger
from services.errors import AppError, ValidationError
from services.notify import Notifier
from services.trading.auto import AutoTrader
from services.trading.live import USD_QUOTES
from services.trading.parser import AmountUnit, Side, market_order
from services.trading.service import Execution, TradingService
from services.users import UserProfile, profile_of

log = structlog.get_logger(__name__)

ZERO = Decimal(0)
HUNDRED = Decimal(100)
CENT = Decimal("0.01")
ACTION_KINDS = ("entry", "exit", "sl", "tp")
SOURCES = ("trade", "post", "signal")
PAPER_LANE = "paper"

TradingFactory = Callable[[AsyncSession], TradingService]


@dataclass(frozen=True, slots=True)
class CopyConfig:
    fee_rate: Decimal = Decimal("0.30")  # of a live copy's realised profit
    leader_share: Decimal = Decimal("0.50")  # of the fee
    per_exchange_concurrency: int = 8  # live copies in flight per exchange
    paper_concurrency: int = 16  # paper copies in flight
    default_exchange: str = "binance"  # prices of paper accounts and of recorded actions
    # copying a leader's open trade late (services/copytrading/open_trade.py)
    open_trade_slippage_pct: Decimal = Decimal(2)  # refused when the price is this far above the entry
    open_trade_offer_seconds: int = 300  # how long a "Copy now" button stays valid
    stuck_copy_seconds: int = 120  # a late copy still queued after this is resumed (by its order id)


@dataclass(frozen=True, slots=True)
class NewAction:
    leader_id: int
    kind: str  # entry | exit | sl | tp
    symbol: str
    side: str  # buy | sell
    source: str  # trade | post | signal
    source_ref: str
    price: Decimal | None = None
    amount: Decimal | None = None
    pct_equity: Decimal | None = None
    close_pct: Decimal | None = None
    stop_loss: Decimal | None = None
    targets: tuple[Decimal, ...] = ()


@dataclass(frozen=True, slots=True)
class Recorded:
    action_id: int
    created: bool  # False: this source was recorded before


@dataclass(frozen=True, slots=True)
class PostResult:
    """A channel post read: a signal recorded (`action_id`), or refused with the reason's locale key."""

    leader_id: int
    signal: ParsedSignal | None
    action_id: int | None
    created: bool
    rejected: str | None = None  # copy.signal.<reason>
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FeeResult:
    profit: Decimal
    fee: Decimal
    leader_share: Decimal
    charged: Decimal  # taken from the credit balance
    debt: Decimal  # what the balance did not cover
    replayed: bool


@dataclass(frozen=True, slots=True)
class CopyResult:
    """One follow's outcome of one action, for its notification.

    status: done | failed | skipped | paused (the stop-copy drawdown paused the follow).
    reason: a locale key saying why (failed, skipped, paused), with `params`."""

    follow: FollowView
    telegram_id: int
    locale: str | None
    action_id: int
    kind: str
    symbol: str
    status: str
    reason: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    execution: Execution | None = None
    fee: FeeResult | None = None
    replayed: bool = False

    @property
    def notification_key(self) -> str:
        if self.status == "done":
            return {"entry": "copy.notify.entry", "exit": "copy.notify.exit"}.get(
                self.kind, "copy.notify.protection"
            )
        if self.status == "paused":
            return "copy.notify.paused_drawdown"
        if self.status == "skipped":
            return "copy.notify.skipped"
        reason = self.reason or ""
        if reason == "trade.errors.insufficient_balance":
            return "copy.notify.failed_balance"
        if reason.startswith("risk."):
            return "copy.notify.failed_risk"
        if reason.startswith("billing."):
            return "copy.notify.failed_plan"
        if reason in ("trade.errors.below_min_amount", "trade.errors.below_min_cost"):
            return "copy.notify.failed_minimum"
        return "copy.notify.failed"


class _Skip(Exception):
    def __init__(self, reason: str, **params: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.params = params


def client_order_id(action_id: int, follow_id: int) -> str:
    """The deterministic client order id of one action's copy for one follow."""
    return f"cp{action_id}f{follow_id}"


class MirrorEngine:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        trading_factory: TradingFactory,
        config: CopyConfig | None = None,
        *,
        notifier: Notifier | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.session_factory = session_factory
        self.trading_factory = trading_factory
        self.config = config or CopyConfig()
        self.notifier = notifier
        self.clock = clock
        self._lanes: dict[str, asyncio.Semaphore] = {}

    # ------------------------------------------------------------------------------------- recording

    async def record_action(self, action: NewAction) -> Recorded:
        """Store a leader action once per `source_ref` (idempotent). Entries and exits without a price
        get the exchange's last price."""
        if (
            action.kind not in ACTION_KINDS
            or action.source not in SOURCES
            or action.side not in ("buy", "sell")
        ):
            raise ValueError(f"not a leader action: {action.kind}/{action.side}/{action.source}")
        async with self.session_factory() as session:
            found = await self._action_id(session, action.source_ref)
            if found is not None:
                return Recorded(found, created=False)
            leader = await session.get(Leader, action.leader_id)
            if leader is None or not leader.active:
                raise ValidationError("copy.errors.leader_not_found", leader_id=action.leader_id)
            price = action.price
            if price is None and action.kind in ("entry", "exit"):
                await session.commit()
                trading = self.trading_factory(session)
                ticker = await trading.market_data.public(self.config.default_exchange).fetch_ticker(
                    action.symbol
                )
                price = ticker.last
            row = LeaderAction(
                leader_id=action.leader_id,
                kind=action.kind,
                symbol=action.symbol,
                side=action.side,
                price=price,
                amount=action.amount,
                pct_equity=action.pct_equity,
                close_pct=action.close_pct,
                stop_loss=action.stop_loss,
                targets=[format(t, "f") for t in action.targets],
                source=action.source,
                source_ref=action.source_ref,
                created_at=self.clock(),
            )
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                found = await self._action_id(session, action.source_ref)
                if found is None:
                    raise
                return Recorded(found, created=False)
            return Recorded(row.id, created=True)

    async def record_execution(
        self, leader_user_id: int, execution: Execution, *, equity_before: Decimal | None = None
    ) -> Recorded | None:
        """Record a leader's own filled order (call it after a confirmed trade). None when the user is
        not an active leader. An entry's size is its cost as a % of `equity_before`; an exit's `close_pct`
        is the part of the position it sold."""
        async with self.session_factory() as session:
            leader = await session.scalar(
                select(Leader).where(Leader.user_id == leader_user_id, Leader.active.is_(True))
            )
        if leader is None or execution.status != "filled":
            return None
        pct: Decimal | None = None
        close_pct: Decimal | None = None
        if execution.side == "buy":
            if equity_before is not None and equity_before > 0:
                pct = min(execution.cost / equity_before * HUNDRED, HUNDRED).quantize(CENT)
        else:
            before = execution.position_amount + execution.amount
            close_pct = min(execution.amount / before * HUNDRED, HUNDRED) if before > 0 else HUNDRED
            close_pct = close_pct.quantize(CENT)
        return await self.record_action(
            NewAction(
                leader_id=leader.id,
                kind="entry" if execution.side == "buy" else "exit",
                symbol=execution.symbol,
                side=execution.side,
                source="trade",
                source_ref=f"order:{execution.order_id}",
                price=execution.average_price,
                amount=execution.amount,
                pct_equity=pct,
                close_pct=close_pct,
            )
        )

    async def record_protection(
        self, leader_user_id: int, symbol: str, kind: str, price: Decimal, *, ref: str
    ) -> Recorded | None:
        """Record a leader's stop-loss (`sl`) or take-profit (`tp`) change; `ref` names it uniquely
        (e.g. the update id)."""
        async with self.session_factory() as session:
            leader = await session.scalar(
                select(Leader).where(Leader.user_id == leader_user_id, Leader.active.is_(True))
            )
        if leader is None:
            return None
        return await self.record_action(
            NewAction(
                leader_id=leader.id,
                kind=kind,
                symbol=symbol,
                side="sell",
                source="trade",
                source_ref=f"{kind}:{ref}",
                price=price,
                stop_loss=price if kind == "sl" else None,
                targets=(price,) if kind == "tp" else (),
            )
        )

    async def record_post(self, chat_id: int, message_id: int, text: str) -> PostResult | None:
        """Read a post in a linked channel or group. None: not a linked chat of an active leader, or not a
        signal. A signal that contradicts itself is not recorded (`rejected` says why)."""
        async with self.session_factory() as session:
            leader_id = await session.scalar(
                select(Leader.id)
                .join(LeaderChannel, LeaderChannel.leader_id == Leader.id)
                .where(
                    LeaderChannel.chat_id == chat_id,
                    LeaderChannel.rights_ok.is_(True),
                    Leader.active.is_(True),
                )
            )
        if leader_id is None:
            return None
        try:
            signal = parse_signal_post(text)
        except SignalRejected as exc:
            return PostResult(leader_id, None, None, False, rejected=exc.message_key, params=exc.params)
        if signal is None:
            return None
        buy = signal.side == "buy"
        recorded = await self.record_action(
            NewAction(
                leader_id=leader_id,
                kind="entry" if buy else "exit",
                symbol=signal.symbol,
                side=signal.side,
                source="post",
                source_ref=f"post:{chat_id}:{message_id}",
                price=signal.entry_price,
                pct_equity=signal.size_pct if buy else None,
                close_pct=None if buy else HUNDRED,
                stop_loss=signal.stop if buy else None,
                targets=signal.targets,
            )
        )
        return PostResult(leader_id, signal, recorded.action_id, recorded.created)

    async def record_signal(self, leader_id: int, signal: SignalResult) -> Recorded | None:
        """Record a consensus signal a leader publishes: a buy is an entry, a sell an exit; hold is
        nothing."""
        if signal.action not in ("buy", "sell"):
            return None
        trade = signal.trade
        return await self.record_action(
            NewAction(
                leader_id=leader_id,
                kind="entry" if signal.action == "buy" else "exit",
                symbol=signal.symbol,
                side=signal.action,
                source="signal",
                source_ref=f"signal:{signal.signal_id}:{leader_id}",
                price=signal.entry_price,
                close_pct=HUNDRED if signal.action == "sell" else None,
                stop_loss=trade.stop_loss if trade is not None and signal.action == "buy" else None,
                targets=(trade.take_profit,) if trade is not None and trade.take_profit else (),
            )
        )

    async def action(self, action_id: int) -> ActionView | None:
        async with self.session_factory() as session:
            row = await session.get(LeaderAction, action_id)
            return None if row is None else ActionView.of(row)

    @staticmethod
    async def _action_id(session: AsyncSession, source_ref: str) -> int | None:
        return await session.scalar(select(LeaderAction.id).where(LeaderAction.source_ref == source_ref))

    # --------------------------------------------------------------------------------------- fan-out

    def _lane(self, key: str) -> asyncio.Semaphore:
        lane = self._lanes.get(key)
        if lane is None:
            size = (
                self.config.paper_concurrency if key == PAPER_LANE else self.config.per_exchange_concurrency
            )
            lane = self._lanes[key] = asyncio.Semaphore(size)
        return lane

    async def fan_out(
        self, action_id: int, on_result: Callable[[CopyResult], Awaitable[None]] | None = None
    ) -> list[CopyResult]:
        """Copy one action to every follow of its leader (see the module docstring); one result per
        follow, in follow order. Each result goes to `on_result` as soon as its copy ends (and the
        follower is notified when the engine has a notifier)."""
        async with self.session_factory() as session:
            row = await session.get(LeaderAction, action_id)
            if row is None:
                raise ValidationError("copy.errors.action_not_found", action_id=action_id)
            action = ActionView.of(row)
            leader = await session.get(Leader, action.leader_id)
            if leader is None or not leader.active:
                return []
            statuses = ("active",) if action.kind == "entry" else ("active", "paused")
            follows = (
                await session.execute(
                    select(Follow.id, Follow.mode, ExchangeAccount.exchange)
                    .join(ExchangeAccount, ExchangeAccount.id == Follow.account_id)
                    .where(Follow.leader_id == action.leader_id, Follow.status.in_(statuses))
                    .order_by(Follow.id)
                )
            ).all()
        tasks = [
            self._run(
                action, leader.display_name, follow_id, PAPER_LANE if mode == "paper" else exchange, on_result
            )
            for follow_id, mode, exchange in follows
        ]
        results = await asyncio.gather(*tasks)
        return [result for result in results if result is not None]

    async def copy_one(
        self,
        action_id: int,
        follow_id: int,
        on_result: Callable[[CopyResult], Awaitable[None]] | None = None,
    ) -> CopyResult | None:
        """Copy one action to one follow exactly as `fan_out` copies it to each: the same lane, `copy_orders`
        row, client order id, checks, notification and `on_result` (a late copy of an open trade). None
        when the follow is gone or another run of this copy got there first."""
        async with self.session_factory() as session:
            row = await session.get(LeaderAction, action_id)
            if row is None:
                raise ValidationError("copy.errors.action_not_found", action_id=action_id)
            action = ActionView.of(row)
            found = (
                await session.execute(
                    select(Leader.display_name, Follow.mode, ExchangeAccount.exchange)
                    .join(Follow, Follow.leader_id == Leader.id)
                    .join(ExchangeAccount, ExchangeAccount.id == Follow.account_id)
                    .where(Follow.id == follow_id, Leader.id == action.leader_id)
                )
            ).first()
        if found is None:
            return None
        leader_name, mode, exchange = found
        lane = PAPER_LANE if mode == "paper" else exchange
        return await self._run(action, leader_name, follow_id, lane, on_result)

    async def _run(
        self,
        action: ActionView,
        leader_name: str,
        follow_id: int,
        lane: str,
        on_result: Callable[[CopyResult], Awaitable[None]] | None = None,
    ) -> CopyResult | None:
        async with self._lane(lane):
            try:
                result = await self._copy_one(action, leader_name, follow_id)
            except Exception:
                log.exception("copy.fan_out_failed", action_id=action.id, follow_id=follow_id)
                result = await self._mark_failed(action, follow_id, "errors.internal", {})
        if result is not None and self.notifier is not None and not result.replayed:
            await self._notify(result, action, leader_name)
        if result is not None and on_result is not None:
            try:
                await on_result(result)
            except Exception:
                log.exception("copy.on_result_failed", action_id=action.id, follow_id=follow_id)
        return result

    async def _notify(self, result: CopyResult, action: ActionView, leader_name: str) -> None:
        execution = result.execution
        params: dict[str, Any] = {
            "leader": leader_name,
            "symbol": action.symbol,
            "side": action.side,
            "mode": result.follow.mode,
            **result.params,
        }
        if execution is not None:
            params.update(
                amount=execution.amount,
                price=execution.average_price,
                cost=execution.cost,
                quote=execution.quote,
                pnl=execution.realized_pnl if execution.realized_pnl is not None else ZERO,
            )
        if result.fee is not None:
            params.update(fee=result.fee.fee)
        assert self.notifier is not None
        try:
            await self.notifier.send(result.telegram_id, result.locale, result.notification_key, **params)
        except Exception:
            log.exception("copy.notify_failed", follow_id=result.follow.id)

    async def _copy_one(self, action: ActionView, leader_name: str, follow_id: int) -> CopyResult | None:
        async with self.session_factory() as session:
            follow = await session.get(Follow, follow_id)
            if follow is None:
                return None
            user = await session.get(User, follow.follower_id)
            account = await session.get(ExchangeAccount, follow.account_id)
            assert user is not None and account is not None
            profile = profile_of(user)
            copy = await session.scalar(
                select(CopyOrder).where(CopyOrder.action_id == action.id, CopyOrder.follow_id == follow_id)
            )
            if copy is not None and copy.status != "queued":
                return await self._replayed(session, action, follow, leader_name, profile, copy)
            if copy is None:
                copy = CopyOrder(
                    action_id=action.id,
                    follow_id=follow_id,
                    status="queued",
                    client_order_id=client_order_id(action.id, follow_id),
                    created_at=self.clock(),
                    updated_at=self.clock(),
                )
                session.add(copy)
                try:
                    await session.commit()
                except IntegrityError:  # another fan-out of this action got here first
                    await session.rollback()
                    return None
            copy_id = copy.id
            trading = self.trading_factory(session)
            auto = AutoTrader(trading)
            try:
                if account.removed_at is not None:
                    raise _Skip("copy.skip.account_removed")
                if action.kind == "entry":
                    execution, fee, paused = await self._entry(
                        session, trading, auto, action, follow, account, profile, copy
                    )
                elif action.kind == "exit":
                    execution, fee, paused = await self._exit(
                        session, trading, auto, action, follow, account, profile, copy
                    )
                else:
                    await self._protect(session, action, follow, account)
                    execution, fee, paused = None, None, None
            except _Skip as skip:
                await session.rollback()
                status = "paused" if skip.reason == "copy.paused_drawdown" else "skipped"
                return await self._finish(
                    session, copy_id, follow_id, action, profile, status, skip.reason, skip.params
                )
            except AppError as exc:
                await session.rollback()
                return await self._finish(
                    session, copy_id, follow_id, action, profile, "failed", exc.message_key, exc.params
                )
            copy = await session.get(CopyOrder, copy_id)
            assert copy is not None
            copy.status, copy.updated_at = "done", self.clock()
            copy.order_id = execution.order_id if execution is not None else None
            copy.reason = "copy.paused_drawdown" if paused else None
            await session.commit()
            return CopyResult(
                follow=FollowView.of(follow, leader_name),
                telegram_id=profile.telegram_id,
                locale=profile.locale or profile.language_code,
                action_id=action.id,
                kind=action.kind,
                symbol=action.symbol,
                status="done",
                reason="copy.paused_drawdown" if paused else None,
                params=paused or {},
                execution=execution,
                fee=fee,
            )

    async def _entry(
        self,
        session: AsyncSession,
        trading: TradingService,
        auto: AutoTrader,
        action: ActionView,
        follow: Follow,
        account: ExchangeAccount,
        user: UserProfile,
        copy: CopyOrder,
    ) -> tuple[Execution, None, None]:
        if follow.status != "active":
            raise _Skip("copy.skip.inactive")
        breached = await self._drawdown(session, trading, follow)
        if breached is not None:
            raise _Skip("copy.paused_drawdown", **breached)
        spend = await self.entry_spend(session, auto, follow, account)
        if spend <= 0:
            raise _Skip("copy.skip.nothing_to_spend")
        request = market_order(action.symbol, Side.BUY, spend, AmountUnit.QUOTE, stop_loss=action.stop_loss)
        execution = await auto.execute(
            user, request, client_order_id=copy.client_order_id, account=account, reason="copy"
        )
        position_id = await session.scalar(select(Order.position_id).where(Order.id == execution.order_id))
        session.add(
            CopyPosition(
                follow_id=follow.id,
                symbol=execution.symbol,
                position_id=position_id,
                entry_action_id=action.id,
                amount=execution.amount,
                cost=execution.cost + execution.fee,
                status="open",
                opened_at=self.clock(),
            )
        )
        await session.flush()
        return execution, None, None

    async def entry_spend(
        self, session: AsyncSession, auto: AutoTrader, follow: Follow, account: ExchangeAccount
    ) -> Decimal:
        """What a copied entry of this follow spends (in the quote): its fixed allocation, or its percentage
        of the account's equity now, capped by its maximum per trade; rounded down to the cent."""
        if follow.allocation_kind == "fixed":
            spend = follow.allocation_value
        else:
            balances = await auto.holdings(account)
            await session.commit()  # no transaction (or SQLite write lock) held across network calls
            spend = await auto.equity(account, balances) * follow.allocation_value / HUNDRED
        if follow.max_per_trade is not None:
            spend = min(spend, follow.max_per_trade)
        return spend.quantize(CENT, rounding=ROUND_DOWN)

    async def _exit(
        self,
        session: AsyncSession,
        trading: TradingService,
        auto: AutoTrader,
        action: ActionView,
        follow: Follow,
        account: ExchangeAccount,
        user: UserProfile,
        copy: CopyOrder,
    ) -> tuple[Execution, FeeResult | None, dict[str, Any] | None]:
        copies = await self._open_copies(session, follow.id, action.symbol)
        copied = sum((c.amount for c in copies), ZERO)
        if copied <= 0:
            raise _Skip("copy.skip.nothing_copied")
        close_pct = min(action.close_pct if action.close_pct is not None else HUNDRED, HUNDRED)
        full = close_pct >= HUNDRED
        balances = await auto.holdings(account)
        base = action.symbol.partition("/")[0]
        held = await trading.sellable(account, action.symbol, balances)
        wanted = copied if full else copied * close_pct / HUNDRED
        amount = min(wanted, held)
        if amount <= 0:
            raise _Skip("copy.skip.nothing_held", asset=base)
        request = market_order(action.symbol, Side.SELL, amount, AmountUnit.BASE)
        execution = await auto.execute(
            user, request, client_order_id=copy.client_order_id, account=account, reason="copy"
        )
        copies = await self._open_copies(session, follow.id, action.symbol)
        left = execution.amount
        now = self.clock()
        for position in copies:
            if full or left >= position.amount:
                left -= min(left, position.amount)
                position.amount, position.cost = ZERO, ZERO
                position.status, position.closed_at = "closed", now
            elif left > 0:
                share = left / position.amount
                position.cost -= position.cost * share
                position.amount -= left
                left = ZERO
        realized = execution.realized_pnl or ZERO
        locked = await session.get(Follow, follow.id, with_for_update=True, populate_existing=True)
        assert locked is not None
        locked.realized_pnl += realized
        locked.updated_at = now
        copy.realized_pnl = realized
        copy.status, copy.order_id, copy.updated_at = "done", execution.order_id, now
        await session.flush()
        fee = await self.on_copied_exit(session, locked, copy, execution)
        breached = await self._drawdown(session, trading, locked)
        return execution, fee, breached

    async def _protect(
        self, session: AsyncSession, action: ActionView, follow: Follow, account: ExchangeAccount
    ) -> None:
        if not await self._open_copies(session, follow.id, action.symbol):
            raise _Skip("copy.skip.nothing_copied")
        position = await session.scalar(
            select(Position)
            .where(
                Position.account_id == account.id, Position.symbol == action.symbol, Position.status == "open"
            )
            .with_for_update()
        )
        if position is None:
            raise _Skip("copy.skip.nothing_held", asset=action.symbol.split("/")[0])
        if action.kind == "sl":
            position.stop_loss = action.stop_loss if action.stop_loss is not None else action.price
        else:
            position.take_profit = action.targets[0] if action.targets else action.price
        await session.flush()

    async def _finish(
        self,
        session: AsyncSession,
        copy_id: int,
        follow_id: int,
        action: ActionView,
        user: UserProfile,
        status: str,
        reason: str,
        params: dict[str, Any],
    ) -> CopyResult:
        copy = await session.get(CopyOrder, copy_id, populate_existing=True)
        follow = await session.get(Follow, follow_id, populate_existing=True)
        assert copy is not None and follow is not None
        if status == "paused":
            follow.status, follow.pause_reason, follow.updated_at = "paused", "drawdown", self.clock()
        order_id = await session.scalar(select(Order.id).where(Order.client_order_id == copy.client_order_id))
        copy.order_id = order_id
        unknown = reason == "exchange.order_outcome_unknown"
        copy.status = "queued" if unknown else ("skipped" if status in ("skipped", "paused") else "failed")
        copy.reason, copy.updated_at = reason[:64], self.clock()
        await session.commit()
        leader_name = await session.scalar(select(Leader.display_name).where(Leader.id == follow.leader_id))
        return CopyResult(
            follow=FollowView.of(follow, leader_name or ""),
            telegram_id=user.telegram_id,
            locale=user.locale or user.language_code,
            action_id=action.id,
            kind=action.kind,
            symbol=action.symbol,
            status=status,
            reason=reason,
            params=_plain(params),
        )

    async def _mark_failed(
        self, action: ActionView, follow_id: int, reason: str, params: dict[str, Any]
    ) -> CopyResult | None:
        async with self.session_factory() as session:
            copy = await session.scalar(
                select(CopyOrder).where(CopyOrder.action_id == action.id, CopyOrder.follow_id == follow_id)
            )
            follow = await session.get(Follow, follow_id)
            user = await session.get(User, follow.follower_id) if follow is not None else None
            if copy is None or follow is None or user is None:
                return None
            return await self._finish(
                session, copy.id, follow_id, action, profile_of(user), "failed", reason, params
            )

    async def _replayed(
        self,
        session: AsyncSession,
        action: ActionView,
        follow: Follow,
        leader_name: str,
        user: UserProfile,
        copy: CopyOrder,
    ) -> CopyResult:
        status = copy.status
        if status == "skipped" and copy.reason == "copy.paused_drawdown":
            status = "paused"
        return CopyResult(
            follow=FollowView.of(follow, leader_name),
            telegram_id=user.telegram_id,
            locale=user.locale or user.language_code,
            action_id=action.id,
            kind=action.kind,
            symbol=action.symbol,
            status=status,
            reason=copy.reason,
            replayed=True,
        )

    @staticmethod
    async def _open_copies(session: AsyncSession, follow_id: int, symbol: str) -> list[CopyPosition]:
        rows = await session.scalars(
            select(CopyPosition)
            .where(
                CopyPosition.follow_id == follow_id,
                CopyPosition.symbol == symbol,
                CopyPosition.status == "open",
            )
            .order_by(CopyPosition.id)
        )
        return list(rows)

    # ------------------------------------------------------------------------------------- drawdown

    async def copy_equity(self, session: AsyncSession, trading: TradingService, follow: Follow) -> Decimal:
        """The account's equity when followed + realised PnL of copied exits + unrealised PnL of the open
        copies at the bid."""
        rows = list(
            await session.scalars(
                select(CopyPosition).where(CopyPosition.follow_id == follow.id, CopyPosition.status == "open")
            )
        )
        unrealised = ZERO
        if rows:
            account = await session.get(ExchangeAccount, follow.account_id)
            exchange = (
                self.config.default_exchange if account is None or account.is_paper else account.exchange
            )
            symbols = sorted({row.symbol for row in rows})
            await session.commit()  # no transaction (or SQLite write lock) held across network calls
            tickers = await trading.market_data.public(exchange).fetch_tickers(symbols)
            for row in rows:
                ticker = tickers.get(row.symbol)
                if ticker is not None:
                    unrealised += row.amount * (ticker.bid or ticker.last) - row.cost
        return follow.start_equity + follow.realized_pnl + unrealised

    async def _drawdown(
        self, session: AsyncSession, trading: TradingService, follow: Follow
    ) -> dict[str, Any] | None:
        """Update the follow's high-water mark; pause it when its copy equity fell `stop_drawdown_pct`
        below it. Returns the figures when it did."""
        equity = await self.copy_equity(session, trading, follow)
        if follow.equity_hwm <= 0 or equity > follow.equity_hwm:
            follow.equity_hwm = equity
        limit = follow.stop_drawdown_pct
        if limit is None or follow.equity_hwm <= 0:
            return None
        drawdown = (follow.equity_hwm - equity) / follow.equity_hwm * HUNDRED
        if drawdown < limit:
            return None
        follow.status, follow.pause_reason, follow.updated_at = "paused", "drawdown", self.clock()
        return {"drawdown": drawdown.quantize(CENT), "limit": limit, "equity": equity.quantize(CENT)}

    async def watch_drawdowns(self, tenant_id: int | None = None) -> list[CopyResult]:
        """Check every active follow that has a stop-copy drawdown and open copies (a scheduled job);
        results for the follows it paused."""
        async with self.session_factory() as session:
            ids = list(
                await session.scalars(
                    select(Follow.id)
                    .where(
                        Follow.status == "active",
                        Follow.stop_drawdown_pct.is_not(None),
                        Follow.id.in_(select(CopyPosition.follow_id).where(CopyPosition.status == "open")),
                        of_tenant(Follow.follower_id, tenant_id),
                    )
                    .order_by(Follow.id)
                )
            )
        results: list[CopyResult] = []
        for follow_id in ids:
            async with self.session_factory() as session:
                follow = await session.get(Follow, follow_id)
                if follow is None or follow.status != "active":
                    continue
                trading = self.trading_factory(session)
                try:
                    breached = await self._drawdown(session, trading, follow)
                except AppError as exc:
                    log.info("copy.drawdown_check_failed", follow_id=follow_id, error=exc.message_key)
                    continue
                await session.commit()
                if breached is None:
                    continue
                user = await session.get(User, follow.follower_id)
                leader_name = await session.scalar(
                    select(Leader.display_name).where(Leader.id == follow.leader_id)
                )
                assert user is not None
                results.append(
                    CopyResult(
                        follow=FollowView.of(follow, leader_name or ""),
                        telegram_id=user.telegram_id,
                        locale=user.locale or user.language_code,
                        action_id=0,
                        kind="drawdown",
                        symbol="",
                        status="paused",
                        reason="copy.paused_drawdown",
                        params=_plain(breached),
                    )
                )
        return results

    # ------------------------------------------------------------------------------------------ fees

    async def on_copied_exit(
        self, session: AsyncSession, follow: Follow, copy: CopyOrder, execution: Execution
    ) -> FeeResult | None:
        """The platform fee on a live copy's realised profit and the leader's share (see the module
        docstring). Joins the caller's transaction; once per copy order."""
        profit = execution.realized_pnl or ZERO
        if (
            follow.mode != "live"
            or execution.mode != "live"
            or profit <= 0
            or execution.quote not in USD_QUOTES
        ):
            return None
        fee = (profit * self.config.fee_rate).quantize(CREDIT_QUANTUM, rounding=ROUND_HALF_UP)
        if fee <= 0:
            return None
        share = (fee * self.config.leader_share).quantize(CREDIT_QUANTUM, rounding=ROUND_DOWN)
        key = f"copyfee:{copy.id}"
        existing = await session.scalar(select(LeaderRevenue).where(LeaderRevenue.idempotency_key == key))
        if existing is not None:
            return FeeResult(existing.profit, existing.fee, existing.leader_share, ZERO, ZERO, replayed=True)
        ledger = CreditLedger(session, clock=self.clock)
        balance = await ledger.balance(follow.follower_id)
        charged = min(fee, balance.balance)
        reference = f"copy_order:{copy.id}"
        if charged > 0:
            await ledger.charge(
                follow.follower_id, charged, "fee", key, reference=reference, note="copy trading fee"
            )
        rest = fee - charged
        if rest > 0:
            await ledger.consume_profit(
                follow.follower_id,
                rest,
                f"{key}:debt",
                reference=reference,
                note="copy trading fee not covered by credits",
            )
        session.add(
            LeaderRevenue(
                leader_id=follow.leader_id,
                follower_id=follow.follower_id,
                copy_order_id=copy.id,
                order_id=execution.order_id,
                profit=profit,
                fee=fee,
                leader_share=share,
                idempotency_key=key,
                created_at=self.clock(),
            )
        )
        await session.flush()
        return FeeResult(profit, fee, share, charged, rest, replayed=False)


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if isinstance(value, str | int | Decimal | float)}


def summary(results: Sequence[CopyResult]) -> dict[str, int]:
    """How many copies ended in each status (for the leader's confirmation and logs)."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return counts
