"""Auto-trade (opt-in): consensus signals on a user's chosen symbols executed when confident enough.

Each run asks the consensus about every chosen symbol as its timeframe's candle closes. A buy verdict at or
above the user's confidence opens a position (no pyramiding: a symbol already held is left alone), sized
to risk 1% of equity down to the signal's stop within the position limit, with the signal's stop-loss and
take-profit; a sell verdict closes a held position. Orders go through the same risk checks, credits and
exchange layer as manual ones (`AutoTrader`), with a client order id derived from the signal, so a rerun
places nothing twice. Every action, and every refusal, is told to the user. One command stops it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import AutoTradeSetting, User
from db.scoping import of_tenant
from db.types import utcnow
from services.billing.entitlements import Feature
from services.consensus.orders import signal_order
from services.consensus.service import ConsensusService
from services.errors import AppError, ValidationError
from services.market.data import MarketDataService
from services.risk.sizing import size_by_risk
from services.trading.auto import AutoTrader
from services.trading.service import Execution, TradingService
from services.users import UserProfile, profile_of

log = structlog.get_logger(__name__)
MAX_SYMBOLS = 10
TIMEFRAMES = ("15m", "1h", "4h", "1d")  # the runs are scheduled as these candles close


@dataclass(frozen=True, slots=True)
class AutoTradeView:
    active: bool
    symbols: tuple[str, ...]
    timeframe: str
    min_confidence: int


@dataclass(frozen=True, slots=True)
class AutoAction:
    """What one run did for one user and symbol, for the notification."""

    telegram_id: int
    locale: str | None
    kind: str  # bought | sold | failed | stopped
    symbol: str
    signal_id: int | None
    confidence: int | None
    execution: Execution | None = None
    reason_key: str | None = None
    reason_params: dict[str, object] | None = None


def _view(row: AutoTradeSetting) -> AutoTradeView:
    return AutoTradeView(row.active, tuple(row.symbols or ()), row.timeframe, row.min_confidence)



class AutoTradeSettings:
    """The user's opt-in, from `/autotrade`."""

    def __init__(self, session: AsyncSession, trading: TradingService, market: MarketDataService) -> None:
        self.session = session
        self.trading = trading
        self.market = market

    async def get(self, user_id: int) -> AutoTradeView | None:
        row = await self.session.get(AutoTradeSetting, user_id)
        return _view(row) if row is not None else None

    async def enable(
        self, user: UserProfile, symbols: Sequence[str], timeframe: str, min_confidence: int
    ) -> AutoTradeView:
        if self.trading.entitlements is not None:
            await self.trading.entitlements.require(user.id, Feature.AUTO_TRADE)
        if not symbols or len(symbols) > MAX_SYMBOLS:
            raise ValidationError("autotrade.errors.symbols", max=MAX_SYMBOLS)
        if timeframe not in TIMEFRAMES:
            raise ValidationError(
                "market.errors.timeframe", timeframe=timeframe, allowed=", ".join(TIMEFRAMES)
            )
        if not 50 <= min_confidence <= 99:
            raise ValidationError("autotrade.errors.confidence", value=min_confidence)
        resolved = []
        for symbol in symbols:
            market = await self.market.market(symbol)
            if market.symbol not in resolved:
                resolved.append(market.symbol)
        row = await self.session.get(AutoTradeSetting, user.id)
        if row is None:
            row = AutoTradeSetting(user_id=user.id)
            self.session.add(row)
        row.active, row.symbols, row.timeframe = True, resolved, timeframe
        row.min_confidence, row.updated_at = min_confidence, utcnow()
        await self.session.commit()
        return _view(row)

    async def disable(self, user_id: int) -> bool:
        row = await self.session.get(AutoTradeSetting, user_id)
        if row is None or not row.active:
            return False
        row.active, row.updated_at = False, utcnow()
        await self.session.commit()
        return True


async def run_autotrade(
    session_factory: async_sessionmaker[AsyncSession],
    trading_factory: Callable[[AsyncSession], TradingService],
    consensus: ConsensusService,
    timeframe: str,
    tenant_id: int | None = None,
) -> list[AutoAction]:
    """One run for every user auto-trading on `timeframe`."""
    async with session_factory() as session:
        rows = (
            await session.execute(
                select(AutoTradeSetting, User)
                .join(User, User.id == AutoTradeSetting.user_id)
                .where(
                    AutoTradeSetting.active.is_(True),
                    AutoTradeSetting.timeframe == timeframe,
                    of_tenant(AutoTradeSetting.user_id, tenant_id),
                )
            )
        ).all()
        work = [(profile_of(user), _view(setting)) for setting, user in rows]
    actions: list[AutoAction] = []
    for user, setting in work:
        actions += await _run_user(session_factory, trading_factory, consensus, user, setting)
    return actions


async def _run_user(
    session_factory: async_sessionmaker[AsyncSession],
    trading_factory: Callable[[AsyncSession], TradingService],
    consensus: ConsensusService,
    user: UserProfile,
    setting: AutoTradeView,
) -> list[AutoAction]:
    locale = user.locale or user.language_code
    actions: list[AutoAction] = []
    async with session_factory() as session:
        trading = trading_factory(session)
        if trading.entitlements is not None:
            allowed = await trading.entitlements.check(user.id, Feature.AUTO_TRADE)
            if not allowed.allowed:  # the plan lapsed: auto-trade stops, and the user is told
                row = await session.get(AutoTradeSetting, user.id)
                if row is not None:
                    row.active = False
                await session.commit()
                return [AutoAction(user.telegram_id, locale, "stopped", "", None, None)]
            plan = allowed.plan
        else:
            plan = "free"
        await session.commit()
    for symbol in setting.symbols:
        try:
            action = await _run_symbol(
                session_factory, trading_factory, consensus, user, setting, symbol, plan
            )
        except AppError as exc:
            action = AutoAction(
                user.telegram_id,
                locale,
                "failed",
                symbol,
                None,
                None,
                None,
                exc.message_key,
                dict(exc.params),
            )
        except Exception:
            log.exception("autotrade.failed", user_id=user.id, symbol=symbol)
            continue
        if action is not None:
            actions.append(action)
    return actions


async def _run_symbol(
    session_factory: async_sessionmaker[AsyncSession],
    trading_factory: Callable[[AsyncSession], TradingService],
    consensus: ConsensusService,
    user: UserProfile,
    setting: AutoTradeView,
    symbol: str,
    plan: str,
) -> AutoAction | None:
    locale = user.locale or user.language_code
    async with session_factory() as session:
        trading = trading_factory(session)
        if trading.entitlements is not None:
            await trading.entitlements.use(user.id, Feature.AI_SIGNAL)  # counted like any signal
        await session.commit()
    result = await consensus.signal(user.id, symbol, setting.timeframe, plan=plan)
    trade = result.trade
    confidence = round((result.probability or 0) * 100)
    if trade is None or confidence < setting.min_confidence:
        return None
    async with session_factory() as session:
        trading = trading_factory(session)
        auto = AutoTrader(trading)
        _, account = await trading.active_account(user)
        position = await trading.repo.open_position(account.id, trade.symbol)
        if trade.side == "buy":
            if position is not None and position.amount > 0:
                return None  # no pyramiding
            profile, _ = await trading.active_account(user)
            equity = await auto.equity(account)
            limits = await trading.limits_in_force(user.id, profile)
            amount = size_by_risk(equity, trade.entry_price, trade.stop_loss, limits.max_position_pct)
            if amount <= 0:
                return None
            request = signal_order(trade, amount)
            kind = "bought"
        else:
            if position is None or position.amount <= 0:
                return None
            request = signal_order(trade)
            kind = "sold"
        execution = await auto.execute(
            user, request, client_order_id=f"au{result.signal_id}u{user.id}", account=account, reason="auto"
        )
        await session.commit()
    return AutoAction(user.telegram_id, locale, kind, trade.symbol, result.signal_id, confidence, execution)


__all__ = ["TIMEFRAMES", "AutoAction", "AutoTradeSettings", "AutoTradeView", "run_autotrade"]
