"""Auto-trade runs, one per timeframe as its candle closes; each action is told to its user."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.consensus.autotrade import run_autotrade
from services.consensus.service import ConsensusService
from services.i18n import Msg
from services.notify import Notifier
from services.trading.service import TradingService

CENT = Decimal("0.01")


async def autotrade_job(
    session_factory: async_sessionmaker[AsyncSession],
    trading_factory: Callable[[AsyncSession], TradingService],
    consensus: ConsensusService,
    notifier: Notifier,
    timeframe: str,
    tenant_id: int | None = None,
) -> int:
    actions = await run_autotrade(session_factory, trading_factory, consensus, timeframe, tenant_id)
    for action in actions:
        done = action.execution
        params: dict[str, object] = {
            "symbol": action.symbol,
            "confidence": action.confidence,
            "id": action.signal_id,
        }
        if done is not None:
            params.update(
                amount=done.amount,
                price=done.average_price.quantize(CENT) if done.average_price >= 100 else done.average_price,
                quote=done.quote,
                cost=(done.cost + done.fee).quantize(CENT),
                pnl=(done.realized_pnl or Decimal(0)).quantize(CENT),
            )
        if action.reason_key is not None:
            params["reason"] = Msg(action.reason_key, action.reason_params)
        await notifier.send(action.telegram_id, action.locale, f"autotrade.{action.kind}", **params)
    return len(actions)
