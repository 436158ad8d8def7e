"""Signal cards for a leader's channels and the Copy deep link.

A card is posted for an action in the leader's channels (`LeaderService.publish_targets`). The handler
renders it from the locale key `copy.card.<kind>` with `SignalCard.params`, or posts `SignalCard.text`, the
canonical signal format (`signal_format.render_signal`) with the leader's record as footer; both read back
as the same signal. The Copy button opens the bot with `/start copy_<leader id>_<action id>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from services.copytrading.leaderboard import LeaderStats
from services.copytrading.signal_format import ParsedSignal, format_number, render_signal
from services.copytrading.views import ActionView, LeaderView

START_PREFIX = "copy_"
_START = re.compile(r"copy_([0-9]{1,18})(?:_([0-9]{1,18}))?")


@dataclass(frozen=True, slots=True)
class CopyStart:
    leader_id: int
    action_id: int | None


def copy_start_payload(leader_id: int, action_id: int | None = None) -> str:
    """The `/start` payload of the Copy button (letters, digits and `_`, at most 64 characters)."""
    return f"{START_PREFIX}{leader_id}" + (f"_{action_id}" if action_id is not None else "")


def parse_copy_start(payload: str | None) -> CopyStart | None:
    """The leader (and action) a `/start` payload names, or None when it is not a Copy link."""
    match = _START.fullmatch(payload or "")
    if match is None:
        return None
    return CopyStart(int(match[1]), int(match[2]) if match[2] else None)


def copy_link(bot_username: str, leader_id: int, action_id: int | None = None) -> str:
    return f"https://t.me/{bot_username}?start={copy_start_payload(leader_id, action_id)}"


@dataclass(frozen=True, slots=True)
class SignalCard:
    key: str  # copy.card.entry | copy.card.exit | copy.card.sl | copy.card.tp
    params: dict[str, Any]
    text: str  # the canonical signal text (entries and exits), parseable by `parse_signal_post`
    start_payload: str


def signal_of(action: ActionView) -> ParsedSignal:
    """The action as a signal: an entry is a LONG at its price, an exit a SHORT (sell) on spot."""
    return ParsedSignal(
        symbol=action.symbol,
        side="buy" if action.kind == "entry" else "sell",
        entries=(action.price,) if action.price is not None else (),
        targets=action.targets if action.kind == "entry" else (),
        stop=action.stop_loss if action.kind == "entry" else None,
        size_pct=action.pct_equity if action.kind == "entry" else None,
    )


def _fmt(value: Decimal | None) -> str:
    return "-" if value is None else format_number(value)


def signal_card(action: ActionView, leader: LeaderView, stats: LeaderStats | None = None) -> SignalCard:
    record = {
        "return_pct": _fmt(stats.return_pct) if stats else "-",
        "win_rate": _fmt(stats.win_rate) if stats else "-",
        "trades": stats.trades if stats else 0,
        "days": stats.period_days if stats else 30,
    }
    params: dict[str, Any] = {
        "leader": leader.display_name,
        "pair": action.symbol,
        "side": "LONG" if action.kind == "entry" else "SHORT",
        "entry": _fmt(action.price),
        "targets": " ".join(format_number(t) for t in action.targets) or "-",
        "stop": _fmt(action.stop_loss),
        "size": _fmt(action.pct_equity),
        "close_pct": _fmt(action.close_pct),
        "price": _fmt(action.price),
        **record,
    }
    footer = [f"{leader.display_name}: {record['days']}d {record['return_pct']}%, win {record['win_rate']}%"]
    text = render_signal(signal_of(action), footer=footer) if action.kind in ("entry", "exit") else ""
    return SignalCard(
        key=f"copy.card.{action.kind}",
        params=params,
        text=text,
        start_payload=copy_start_payload(action.leader_id, action.id),
    )
