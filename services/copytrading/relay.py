"""What happens after a leader acts: record the action, copy it to every follower, tell each follower what
was done (or why not), post the signal card to the leader's channels and tell the leader how it went.

Recording happens in the caller's path (fast, durable, idempotent by source). The rest, the fan-out, runs
off it when a queue is attached (`services/copytrading/queue.py`, the bot's worker pool): the action id is
enqueued and the leader's report follows through the notifier once the fan-out finishes. Without a queue
(scripts, tests) it runs inline and the report is returned. Either way `run_fan_out` claims the action first
(`FanOutClaims`): of every process sharing the database one carries it out, the card is posted once and the
leader is told once.

The relay knows nothing of Telegram: followers are told through a `Notifier`, cards are posted through a
`Publisher` the bot implements (it renders the card and its Copy button).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Follow, Leader, LeaderChannel, User
from services.billing.entitlements import Entitlements
from services.consensus.service import SignalResult
from services.copytrading.claims import Claim, FanOutClaims
from services.copytrading.leaderboard import Leaderboard
from services.copytrading.leaders import LeaderService
from services.copytrading.mirror import CopyResult, MirrorEngine, PostResult, Recorded, summary
from services.copytrading.open_trade import LateCopy, OpenTradeCopier, OpenTradeOffer
from services.copytrading.publishing import SignalCard, signal_card
from services.copytrading.views import ActionView, ChannelView, LeaderView
from services.errors import AppError
from services.i18n import Msg, MsgList
from services.notify import Notifier
from services.trading.service import Execution

log = structlog.get_logger(__name__)

CENT = Decimal("0.01")
ZERO = Decimal(0)
_POST_REF = re.compile(r"post:(-?[0-9]{1,20}):[0-9]{1,20}")  # `MirrorEngine.record_post`


class Dispatch(Protocol):
    def enqueue(self, action_id: int) -> bool:
        """Hand an action to the fan-out workers; False when it is already waiting or the queue is closed."""
        ...


class Publisher(Protocol):
    async def publish(self, chat_id: int, card: SignalCard, locale: str | None) -> bool:
        """Post a signal card (with its Copy button) to a channel or group; False when it failed."""
        ...


@dataclass(frozen=True, slots=True)
class RelayReport:
    """One leader action carried out: how the copies ended (by status) and how many cards were posted."""

    action_id: int
    created: bool
    results: tuple[CopyResult, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    published: int = 0


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT) if abs(value) >= 1 else value


class CopyRelay:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        mirror: MirrorEngine,
        entitlements: Callable[[AsyncSession], Entitlements],
        notifier: Notifier,
        publisher: Publisher | None = None,
        *,
        claims: FanOutClaims | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.mirror = mirror
        self.entitlements = entitlements
        self.notifier = notifier
        self.publisher = publisher
        self.claims = claims or FanOutClaims(session_factory, clock=mirror.clock)
        self.queue: Dispatch | None = None  # the fan-out workers, when the application runs them
        self.open_trades = OpenTradeCopier(mirror)

    async def is_leader(self, user_id: int) -> bool:
        async with self.session_factory() as session:
            found = await session.scalar(
                select(Leader.id).where(Leader.user_id == user_id, Leader.active.is_(True))
            )
        return found is not None

    async def followers(self, leader_id: int) -> int:
        async with self.session_factory() as session:
            count = await session.scalar(
                select(func.count(Follow.id)).where(Follow.leader_id == leader_id, Follow.status != "stopped")
            )
        return int(count or 0)

    async def rights_changed(self, channel: ChannelView) -> None:
        """Tell the leader that the bot's rights in their linked chat changed (and what is missing)."""
        async with self.session_factory() as session:
            row = (
                await session.execute(
                    select(User.telegram_id, User.locale, User.language_code)
                    .join(Leader, Leader.user_id == User.id)
                    .where(Leader.id == channel.leader_id)
                )
            ).first()
        if row is None:
            return
        missing = MsgList(tuple(Msg(f"copy.rights.{name}") for name in channel.missing))
        key = "copy.link.rights_ok" if channel.rights_ok else "copy.link.rights_lost"
        await self._send(row[0], row[1] or row[2], key, title=channel.title, missing=missing)

    # ------------------------------------------------------------------------------------- leader acts

    async def after_execution(
        self, user_id: int, execution: Execution, *, equity_before: Decimal | None = None
    ) -> RelayReport | None:
        """A leader's confirmed order: recorded, then copied and published. None when the user is not an
        active leader or the order did not fill, and when the fan-out was queued (the leader's report
        follows through the notifier)."""
        recorded = await self.mirror.record_execution(user_id, execution, equity_before=equity_before)
        return None if recorded is None else await self.dispatch(recorded)

    async def after_protection(
        self, user_id: int, symbol: str, kind: str, price: Decimal, *, ref: str
    ) -> RelayReport | None:
        recorded = await self.mirror.record_protection(user_id, symbol, kind, price, ref=ref)
        return None if recorded is None else await self.dispatch(recorded)

    async def publish_signal(self, leader: LeaderView, signal: SignalResult) -> RelayReport | None:
        """A consensus signal the leader publishes: recorded as their action, copied and posted. None for
        a hold, and when the fan-out was queued."""
        recorded = await self.mirror.record_signal(leader.id, signal)
        return None if recorded is None else await self.dispatch(recorded)

    async def after_post(
        self, chat_id: int, message_id: int, text: str, *, author_telegram_id: int | None = None
    ) -> PostResult | None:
        """A post in a linked channel (or a message of the leader in a linked group). A signal is copied
        (the leader is told how it went); a signal that contradicts itself is refused and the leader is
        told why."""
        leader = await self._chat_leader(chat_id)
        if leader is None:
            return None
        _, user, title = leader
        if author_telegram_id is not None and author_telegram_id != user.telegram_id:
            return None
        result = await self.mirror.record_post(chat_id, message_id, text)
        if result is None:
            return None
        if result.rejected is not None:
            await self._send(
                user.telegram_id,
                user.locale or user.language_code,
                "copy.post.rejected",
                chat=title,
                reason=Msg(result.rejected, result.params),
            )
            return result
        if result.action_id is not None and result.created:
            await self.dispatch(Recorded(result.action_id, created=True), tell_leader=True)
        return result

    # ------------------------------------------------------------------------------ late copy, one follow

    async def open_trade_offer(self, user_id: int, action_id: int) -> OpenTradeOffer | None:
        """The leader's entry `action_id` as the user's follow would copy it now, or why it cannot be
        (`services/copytrading/open_trade.py`); None when the action is not an entry."""
        return await self.open_trades.offer(user_id, action_id)

    async def copy_open_trade(
        self, user_id: int, action_id: int, *, offered_at: datetime | None = None
    ) -> LateCopy:
        """ "Copy now": the open trade copied to the user's follow once, through the fan-out's path for one
        follow; the follower is told how it went as a fan-out tells them."""
        return await self.open_trades.copy_now(
            user_id, action_id, offered_at=offered_at, on_result=self._told
        )

    # ---------------------------------------------------------------------------------------- fan-out

    async def dispatch(self, recorded: Recorded, *, tell_leader: bool = False) -> RelayReport | None:
        """Queue the action's fan-out (None: the leader's report follows through the notifier), or, with
        no queue attached, carry it out now and return the report (`tell_leader`: also send it)."""
        if self.queue is not None:
            self.queue.enqueue(recorded.action_id)
            return None
        return await self.run_fan_out(recorded.action_id, tell_leader=tell_leader)

    async def run_fan_out(self, action_id: int, *, tell_leader: bool = True) -> RelayReport | None:
        """Carry out one recorded action, once across every process on the database: claim it (None when
        it is finished or another worker holds it), copy it to the followers (each told), post its card
        (once), mark it finished and, the one worker that finished it, tell the leader how it went."""
        claim = await self.claims.claim(action_id)
        if claim is None:
            return None
        heartbeat = asyncio.create_task(self._keep_lease(claim))
        try:
            results = tuple(await self.mirror.fan_out(action_id, self._told))
            published = await self._publish(action_id) if await self.claims.claim_publication(claim) else 0
        except BaseException:
            heartbeat.cancel()
            with contextlib.suppress(Exception):  # the sweep takes it again (the lease ends anyway)
                await self.claims.release(claim)
            raise
        heartbeat.cancel()
        report = RelayReport(action_id, claim.attempt == 1, results, summary(results), published)
        if await self.claims.finish(claim):
            if tell_leader:
                try:
                    await self._report(report)
                except Exception:
                    log.exception("copy.report_failed", action_id=action_id)
        else:
            log.warning("copy.fan_out_claim_lost", action_id=action_id)
        return report

    async def _told(self, result: CopyResult) -> None:
        """Each follower is told as their copy ends (a replayed copy was told the first time)."""
        if not result.replayed:
            await self.notify(result)

    async def _keep_lease(self, claim: Claim) -> None:
        while True:
            await asyncio.sleep(self.claims.lease.total_seconds() / 3)
            try:
                if not await self.claims.renew(claim):
                    log.warning("copy.fan_out_lease_lost", action_id=claim.action_id)
                    return
            except Exception:
                log.exception("copy.fan_out_lease_renewal_failed", action_id=claim.action_id)

    async def _report(self, report: RelayReport) -> None:
        """The leader's copy report: for a post in their chat, which chat and symbol."""
        action = await self.mirror.action(report.action_id)
        if action is None:
            return
        async with self.session_factory() as session:
            row = (
                await session.execute(
                    select(User.telegram_id, User.locale, User.language_code)
                    .join(Leader, Leader.user_id == User.id)
                    .where(Leader.id == action.leader_id)
                )
            ).first()
            title: str | None = None
            post = _POST_REF.fullmatch(action.source_ref) if action.source == "post" else None
            if post is not None:
                chat_id = int(post[1])
                title = await session.scalar(
                    select(LeaderChannel.title).where(LeaderChannel.chat_id == chat_id)
                )
        if row is None:
            return
        counts = {
            "done": report.counts.get("done", 0),
            "failed": report.counts.get("failed", 0) + report.counts.get("paused", 0),
            "skipped": report.counts.get("skipped", 0),
        }
        locale = row[1] or row[2]
        if post is not None:
            await self._send(
                row[0], locale, "copy.post.copied", chat=title or "", symbol=action.symbol, **counts
            )
        else:
            await self._send(row[0], locale, "copy.leader.copied", published=report.published, **counts)

    async def watch_drawdowns(self, tenant_id: int | None = None) -> list[CopyResult]:
        """The scheduled check of stop-copy drawdowns; each follow it paused is told."""
        results = await self.mirror.watch_drawdowns(tenant_id)
        for result in results:
            await self.notify(result)
        return results

    async def notify(self, result: CopyResult) -> None:
        params: dict[str, Any] = {
            "leader": result.follow.leader_name,
            "symbol": result.symbol,
            "mode": Msg(f"trade.mode.{result.follow.mode}"),
            "kind": Msg(f"copy.kinds.{result.kind}"),
            **result.params,
        }
        execution = result.execution
        if execution is not None:
            params.update(
                side=Msg(f"trade.side.{execution.side}"),
                amount=execution.amount,
                base=execution.symbol.split("/")[0],
                price=_money(execution.average_price),
                cost=_money(execution.cost + execution.fee),
                quote=execution.quote,
                pnl=_money(execution.realized_pnl if execution.realized_pnl is not None else ZERO),
            )
        if result.fee is not None:
            params["fee"] = _money(result.fee.fee)
        if result.status != "done":
            params["reason"] = Msg(result.reason or "errors.internal", result.params)
        await self._send(result.telegram_id, result.locale, result.notification_key, **params)

    async def _publish(self, action_id: int) -> int:
        if self.publisher is None:
            return 0
        action = await self.mirror.action(action_id)
        if action is None:
            return 0
        async with self.session_factory() as session:
            leaders = LeaderService(session, self.entitlements(session))
            targets = await leaders.publish_targets(action.leader_id, action.source)
            if not targets:
                return 0
            leader = await leaders.by_id(action.leader_id)
            stats = await Leaderboard(session).stats(action.leader_id, 30)
            locale = await self._leader_locale(session, leader)
        card = signal_card(action, leader, stats)
        posted = 0
        for chat_id in targets:
            try:
                posted += bool(await self.publisher.publish(chat_id, card, locale))
            except Exception:
                log.exception("copy.publish_failed", chat_id=chat_id, action_id=action_id)
        return posted

    async def card(self, action: ActionView) -> SignalCard:
        async with self.session_factory() as session:
            leader = await LeaderService(session, self.entitlements(session)).by_id(action.leader_id)
            stats = await Leaderboard(session).stats(action.leader_id, 30)
        return signal_card(action, leader, stats)

    # ---------------------------------------------------------------------------------------- helpers

    async def _chat_leader(self, chat_id: int) -> tuple[Leader, User, str] | None:
        async with self.session_factory() as session:
            row = (
                await session.execute(
                    select(Leader, User, LeaderChannel.title)
                    .join(LeaderChannel, LeaderChannel.leader_id == Leader.id)
                    .join(User, User.id == Leader.user_id)
                    .where(
                        LeaderChannel.chat_id == chat_id,
                        LeaderChannel.rights_ok.is_(True),
                        Leader.active.is_(True),
                    )
                )
            ).first()
        return None if row is None else (row[0], row[1], row[2])

    @staticmethod
    async def _leader_locale(session: AsyncSession, leader: LeaderView) -> str | None:
        user = await session.get(User, leader.user_id)
        return None if user is None else (user.locale or user.language_code)

    async def _send(self, telegram_id: int, locale: str | None, key: str, **params: Any) -> None:
        try:
            await self.notifier.send(telegram_id, locale, key, **params)
        except AppError:
            log.info("copy.notify_refused", key=key)
        except Exception:
            log.exception("copy.notify_failed", key=key)
