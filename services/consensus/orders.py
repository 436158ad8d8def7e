"""A signal's trade as an order request: a buy of a quote amount with the signal's stop-loss and
take-profit, or (on spot) leaving the whole position for a sell."""

from __future__ import annotations

from decimal import Decimal

from services.consensus.service import TradeSuggestion
from services.trading.parser import AmountUnit, OrderType, RequestKind, Side, TradeRequest


def signal_order(trade: TradeSuggestion, spend: Decimal | None = None) -> TradeRequest:
    """`spend`: the quote amount of a buy (required for buys, ignored for sells)."""
    base, quote = trade.symbol.split("/")
    if trade.side == "buy":
        if spend is None:
            raise ValueError("a buy needs the amount to spend")
        return TradeRequest(
            kind=RequestKind.ORDER,
            side=Side.BUY,
            symbol=trade.symbol,
            base=base,
            quote=quote,
            amount=spend,
            amount_unit=AmountUnit.QUOTE,
            order_type=OrderType.MARKET,
            stop_loss=trade.stop_loss,
            take_profit=trade.take_profit,
        )
    return TradeRequest(
        kind=RequestKind.ORDER,
        side=Side.SELL,
        symbol=trade.symbol,
        base=base,
        quote=quote,
        amount=None,
        amount_unit=AmountUnit.ALL,
        order_type=OrderType.MARKET,
    )
