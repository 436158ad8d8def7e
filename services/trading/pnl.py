"""Position accounting for spot (long only): average entry, fees, realised and unrealised PnL."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class PositionState:
    amount: Decimal = ZERO  # base held by this position
    cost_basis: Decimal = ZERO  # quote paid for what is held, fees included
    fees: Decimal = ZERO
    realized_pnl: Decimal = ZERO

    @property
    def average_entry(self) -> Decimal:
        return self.cost_basis / self.amount if self.amount else ZERO

    @property
    def is_open(self) -> bool:
        return self.amount > 0

    def unrealized(self, price: Decimal) -> Decimal:
        return self.amount * price - self.cost_basis

    def after_buy(self, amount: Decimal, cost: Decimal, fee: Decimal) -> PositionState:
        return replace(
            self, amount=self.amount + amount, cost_basis=self.cost_basis + cost + fee, fees=self.fees + fee
        )

    def after_sell(self, amount: Decimal, cost: Decimal, fee: Decimal) -> tuple[PositionState, Decimal]:
        """The new state and the PnL realised by this sale (proceeds less fee, less the basis sold)."""
        if amount > self.amount:
            raise ValueError("selling more than the position holds")
        basis_out = self.cost_basis * amount / self.amount if self.amount else ZERO
        pnl = cost - fee - basis_out
        remaining = self.amount - amount
        state = replace(
            self,
            amount=remaining,
            cost_basis=self.cost_basis - basis_out if remaining else ZERO,
            fees=self.fees + fee,
            realized_pnl=self.realized_pnl + pnl,
        )
        return state, pnl
