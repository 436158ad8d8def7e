"""Paper fills: market orders walk the exchange's real order book with the taker fee; limit orders fill at
their price with the maker fee when the market crosses them. Fees are charged in the quote asset."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from services.errors import ValidationError
from services.exchanges.types import OrderBook, Side

ZERO = Decimal(0)


class NotEnoughLiquidity(ValidationError):
    message_key = "trade.errors.liquidity"


@dataclass(frozen=True, slots=True)
class Fill:
    amount: Decimal  # base
    average_price: Decimal
    cost: Decimal  # quote value of the fill, before fees
    fee: Decimal  # quote

    @property
    def quote_delta_buy(self) -> Decimal:
        return self.cost + self.fee

    @property
    def quote_delta_sell(self) -> Decimal:
        return self.cost - self.fee


def round_step(value: Decimal, step: Decimal | None) -> Decimal:
    """Round down to a multiple of the exchange's step."""
    if step is None or step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def walk_book(
    book: OrderBook,
    side: Side,
    fee_rate: Decimal,
    *,
    amount: Decimal | None = None,
    quote_amount: Decimal | None = None,
    amount_step: Decimal | None = None,
) -> Fill:
    """Fill a market order against the book: `amount` in base, or `quote_amount` to spend (buys: fee
    included, so the total debit never exceeds it)."""
    if (amount is None) == (quote_amount is None):
        raise ValueError("give exactly one of amount or quote_amount")
    levels = book.asks if side == "buy" else book.bids
    if quote_amount is not None:
        budget = quote_amount / (1 + fee_rate) if side == "buy" else quote_amount
        amount = _amount_for_quote(levels, budget, book.symbol)
    assert amount is not None
    amount = round_step(amount, amount_step)
    if amount <= 0:
        raise ValidationError("trade.errors.amount_too_small")
    remaining, cost = amount, ZERO
    for price, size in levels:
        take = min(remaining, size)
        cost += take * price
        remaining -= take
        if remaining <= 0:
            break
    if remaining > 0:
        raise NotEnoughLiquidity(available=amount - remaining, symbol=book.symbol)
    return Fill(amount=amount, average_price=cost / amount, cost=cost, fee=cost * fee_rate)


def _amount_for_quote(levels: tuple[tuple[Decimal, Decimal], ...], budget: Decimal, symbol: str) -> Decimal:
    amount, left = ZERO, budget
    for price, size in levels:
        level_cost = price * size
        if level_cost >= left:
            return amount + left / price
        amount += size
        left -= level_cost
    raise NotEnoughLiquidity(available=amount, symbol=symbol)


def limit_fill(amount: Decimal, price: Decimal, fee_rate: Decimal) -> Fill:
    cost = amount * price
    return Fill(amount=amount, average_price=price, cost=cost, fee=cost * fee_rate)


def limit_crossed(side: Side, limit_price: Decimal, bid: Decimal | None, ask: Decimal | None) -> bool:
    """A resting buy fills once someone sells at or below it; a sell once someone buys at or above."""
    if side == "buy":
        return ask is not None and ask <= limit_price
    return bid is not None and bid >= limit_price
