"""Copying a leader's open trade late: a follower who comes through the Copy button of an entry's card (or
already follows that leader) is offered the very trade on the card, while the leader still holds it.

The offer (`OpenTradeCopier.offer`) says what a copy would be now: the pair, the leader's entry price, the
price a buy pays now (the ask of the follow's exchange), the move since the entry in %, and what this follow
would spend (its allocation, sized as a fan-out sizes it: `MirrorEngine.entry_spend`). It is refused, with a
locale key `copy_open.refused.<reason>`, when:

* closed: the leader exited the trade (a full exit of the symbol recorded after the entry, or, for the
  leader's own order, its position is closed) or stopped leading; a partial exit leaves it open;
* slippage: the price is more than `CopyConfig.open_trade_slippage_pct` (default 2 %) above the leader's
  entry (buying far above it is not copying it); below_stop: the price is at or below the leader's stop;
* paused / stopped / not_following: the follow cannot copy entries;
* already_copied / already_tried / in_progress: a `copy_orders` row of this action exists for the follow
  (done; failed or skipped; or being carried out, also while the action's own fan-out runs);
* expired: the button is older than `CopyConfig.open_trade_offer_seconds`; no_price, account_removed.

"Copy now" (`copy_now`) checks all of it again, then claims the copy by inserting its `copy_orders` row
(`queued`, with the deterministic client order id `client_order_id(action, follow)`): the unique
(action, follow) pair lets one press through, every other press (or a stale card) finds the row and is
refused. The claimed copy then runs through `MirrorEngine.copy_one`, the fan-out's own path for one
follow (lane, risk checks, credits, paper or live exchange layer, `copy_positions` row, notification), so
the leader's later exit of the symbol is mirrored to it like to any other copy. A claimed row that stays
`queued` longer than `CopyConfig.stuck_copy_seconds` (the process died, the outcome was unknown) may be
taken again by one press (a conditional UPDATE): the run resumes it by its client order id and never places
the order twice.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import CopyOrder, ExchangeAccount, Follow, Leader, LeaderAction, Order, Position
from services.copytrading.mirror import CopyResult, MirrorEngine, client_order_id
from services.copytrading.views import ActionView
from services.trading.auto import AutoTrader

HUNDRED = Decimal(100)
CENT = Decimal("0.01")
REFUSED = "copy_open.refused."
_ORDER_REF = re.compile(r"order:([0-9]{1,20})")  # `MirrorEngine.record_execution`


@dataclass(frozen=True, slots=True)
class OpenTradeOffer:
    """A leader's entry as a follow would copy it now; `refused` (a locale key) says why it cannot be."""

    action_id: int
    leader_id: int
    leader_name: str
    symbol: str
    entry: Decimal | None  # the leader's entry price
    follow_id: int | None = None
    follow_status: str | None = None  # active | paused | stopped; None: the user never followed
    mode: str | None = None  # paper | live
    price: Decimal | None = None  # what a buy pays now
    move_pct: Decimal | None = None  # (price - entry) / entry, in %
    spend: Decimal | None = None  # quote this follow would spend
    amount: Decimal | None = None  # base that buys, about
    refused: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    priced_at: datetime | None = None  # when it was evaluated (its "Copy now" button carries it)
    valid_seconds: int = 0  # how long that button is valid

    @property
    def ok(self) -> bool:
        return self.refused is None

    @property
    def following(self) -> bool:
        """The user follows the leader (actively or paused)."""
        return self.follow_status in ("active", "paused")

    @property
    def base(self) -> str:
        return self.symbol.partition("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.partition("/")[2]


@dataclass(frozen=True, slots=True)
class LateCopy:
    """What "Copy now" did: refused (`offer.refused`; nothing was done), or the copy's result (None when
    the action or the follow is gone)."""

    offer: OpenTradeOffer | None
    result: CopyResult | None = None

    @property
    def refused(self) -> str | None:
        if self.offer is None:
            return REFUSED + "closed"
        return self.offer.refused


class OpenTradeCopier:
    def __init__(self, mirror: MirrorEngine) -> None:
        self.mirror = mirror

    async def offer(self, user_id: int, action_id: int) -> OpenTradeOffer | None:
        """The offer for the user's follow of the action's leader; None when the action is not a leader's
        entry (nothing to offer)."""
        return await self._evaluate(user_id, action_id)

    async def copy_now(
        self,
        user_id: int,
        action_id: int,
        *,
        offered_at: datetime | None = None,
        on_result: Callable[[CopyResult], Awaitable[None]] | None = None,
    ) -> LateCopy:
        """Copy the open trade to the user's follow, once (see the module docstring)."""
        offer = await self._evaluate(user_id, action_id, offered_at=offered_at)
        if offer is None or not offer.ok:
            return LateCopy(offer)
        assert offer.follow_id is not None
        if not await self._claim(action_id, offer.follow_id):
            return LateCopy(replace(offer, refused=REFUSED + "in_progress"))
        result = await self.mirror.copy_one(action_id, offer.follow_id, on_result)
        return LateCopy(offer, result)

    # ---------------------------------------------------------------------------------------- checks

    async def _evaluate(
        self, user_id: int, action_id: int, *, offered_at: datetime | None = None
    ) -> OpenTradeOffer | None:
        config, now = self.mirror.config, self.mirror.clock()
        async with self.mirror.session_factory() as session:
            row = await session.get(LeaderAction, action_id)
            if row is None or row.kind != "entry":
                return None
            action = ActionView.of(row)
            leader = await session.get(Leader, action.leader_id)
            if leader is None:
                return None
            offer = OpenTradeOffer(
                action.id,
                leader.id,
                leader.display_name,
                action.symbol,
                action.price,
                priced_at=now,
                valid_seconds=config.open_trade_offer_seconds,
            )

            def refuse(reason: str, **params: Any) -> OpenTradeOffer:
                return replace(offer, refused=REFUSED + reason, params=params)

            follow = await self._follow(session, user_id, leader.id)
            if follow is None:
                return refuse("not_following")
            offer = replace(offer, follow_id=follow.id, follow_status=follow.status, mode=follow.mode)
            if follow.status != "active":
                return refuse("paused" if follow.status == "paused" else "stopped")
            if offered_at is not None and now - offered_at > timedelta(seconds=offer.valid_seconds):
                return refuse("expired")
            copy = await session.scalar(
                select(CopyOrder).where(CopyOrder.action_id == action.id, CopyOrder.follow_id == follow.id)
            )
            if copy is not None:
                if copy.status == "done":
                    return refuse("already_copied")
                if copy.status != "queued":
                    return refuse("already_tried", status=copy.status)
                if copy.updated_at > now - timedelta(seconds=config.stuck_copy_seconds):
                    return refuse("in_progress")
            if not leader.active or await self._closed(session, action):
                return refuse("closed")
            if row.fanout_lease_until is not None and row.fanout_lease_until > now:
                return refuse("in_progress")  # its own fan-out runs now (and may reach this follow)
            if action.price is None or action.price <= 0:
                return refuse("no_price")
            account = await session.get(ExchangeAccount, follow.account_id)
            if account is None or account.removed_at is not None:
                return refuse("account_removed")
            exchange = config.default_exchange if account.is_paper else account.exchange
            trading = self.mirror.trading_factory(session)
            await session.commit()  # no transaction (or SQLite write lock) held across network calls
            ticker = await trading.market_data.public(exchange).fetch_ticker(action.symbol)
            price = ticker.ask or ticker.last
            move = ((price - action.price) / action.price * HUNDRED).quantize(CENT)
            offer = replace(offer, price=price, move_pct=move)
            if action.stop_loss is not None and price <= action.stop_loss:
                return refuse("below_stop", stop=action.stop_loss)
            if move > config.open_trade_slippage_pct:
                return refuse("slippage", limit=config.open_trade_slippage_pct)
            spend = await self.mirror.entry_spend(session, AutoTrader(trading), follow, account)
            await session.commit()
        if spend <= 0:
            return refuse("nothing_to_spend")
        amount = (spend / price).quantize(Decimal("1e-8"), rounding=ROUND_DOWN)
        return replace(offer, spend=spend, amount=amount)

    @staticmethod
    async def _follow(session: AsyncSession, user_id: int, leader_id: int) -> Follow | None:
        """The user's follow of the leader: the one not stopped, else the latest stopped one."""
        rows = await session.scalars(
            select(Follow)
            .where(Follow.follower_id == user_id, Follow.leader_id == leader_id)
            .order_by(Follow.id.desc())
        )
        follows = list(rows)
        return next((f for f in follows if f.status != "stopped"), follows[0] if follows else None)

    @staticmethod
    async def _closed(session: AsyncSession, action: ActionView) -> bool:
        """The leader exited the trade: a full exit of the symbol after the entry, or (their own order)
        the position it opened is closed."""
        exits = await session.scalars(
            select(LeaderAction.close_pct).where(
                LeaderAction.leader_id == action.leader_id,
                LeaderAction.symbol == action.symbol,
                LeaderAction.kind == "exit",
                LeaderAction.id > action.id,
            )
        )  # compared here: money is a string on SQLite
        if any(pct is None or pct >= HUNDRED for pct in exits):
            return True
        ref = _ORDER_REF.fullmatch(action.source_ref) if action.source == "trade" else None
        if ref is None:
            return False
        status = await session.scalar(
            select(Position.status)
            .join(Order, Order.position_id == Position.id)
            .where(Order.id == int(ref[1]))
        )
        return status is not None and status != "open"

    async def _claim(self, action_id: int, follow_id: int) -> bool:
        """Take this copy: insert its `copy_orders` row (the unique (action, follow) pair lets one caller
        through), or take over a row stuck in `queued` (a conditional UPDATE, one caller wins)."""
        mirror = self.mirror
        now = mirror.clock()
        async with mirror.session_factory() as session:
            copy = await session.scalar(
                select(CopyOrder).where(CopyOrder.action_id == action_id, CopyOrder.follow_id == follow_id)
            )
            if copy is None:
                session.add(
                    CopyOrder(
                        action_id=action_id,
                        follow_id=follow_id,
                        status="queued",
                        client_order_id=client_order_id(action_id, follow_id),
                        created_at=now,
                        updated_at=now,
                    )
                )
                try:
                    await session.commit()
                except IntegrityError:
                    await session.rollback()
                    return False
                return True
            stale = now - timedelta(seconds=mirror.config.stuck_copy_seconds)
            if copy.status != "queued" or copy.updated_at > stale:
                return False
            result = await session.execute(
                update(CopyOrder)
                .where(
                    CopyOrder.id == copy.id,
                    CopyOrder.status == "queued",
                    CopyOrder.updated_at == copy.updated_at,
                )
                .values(updated_at=now)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        return int(getattr(result, "rowcount", 0) or 0) == 1
