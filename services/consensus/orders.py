"""A signal's trade as an order request: a buy of a quote amount with the signal's stop-loss and
take-profit, or (on spot) leaving the whole position for a sell."""

from __future__ import annotations

from decimal import Decimal

from services.consensus.service import TradeSuggestion
from services.trading.parser import AmountUnit, Side, TradeRequest, market_order


def signal_order(trade: TradeSuggestion, spend: Decimal | None = None) -> TradeRequest:
    """`spend`: the quote amount of a buy (required for buys, ignored for sells)."""
    if trade.side == "buy":
        if spend is None:
            raise ValueError("a buy needs the amount to spend")
        return market_order(
            trade.symbol,
            Side.BUY,
            spend,
            AmountUnit.QUOTE,
            stop_loss=trade.stop_loss,
            take_profit=trade.take_profit,
        )
    return market_order(trade.symbol, Side.SELL, None, AmountUnit.ALL)
