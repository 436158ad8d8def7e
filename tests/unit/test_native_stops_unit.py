"""Which protection a live position places natively, and how the reply names the outcome."""

from __future__ import annotations

from decimal import Decimal

from db.models import Position
from services.exchanges.types import StopSupport
from services.trading.protections import Protection, primary


def test_primary_is_the_stop_loss_then_the_take_profit() -> None:
    assert primary(Position(stop_loss=Decimal(5), take_profit=Decimal(9))) == ("sl", Decimal(5))
    assert primary(Position(stop_loss=None, take_profit=Decimal(9))) == ("tp", Decimal(9))
    assert primary(Position(stop_loss=None, take_profit=None)) is None


def test_reply_codes() -> None:
    assert Protection("native", "sl").code == "native_sl"
    assert Protection("native", "sl", why="tp_watched").code == "native_sl_tp_watched"
    assert Protection("native", "tp").code == "native_tp"
    assert Protection("watched", why="minimum").code == "watched_minimum"
    assert Protection("none").code is None


def test_stop_support() -> None:
    support = StopSupport(stop_loss=True)
    assert support.supports("sl") and not support.supports("tp") and not support.oco
