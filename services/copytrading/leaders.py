"""Leaders: becoming one (on a plan with `copy_lead`), the channels and groups they publish to, what they
publish, and what they earn from their followers' profit.

The bot's rights in a chat are read by the handler (getChatMember) and given here as `BotRights`; this
service never calls Telegram. A chat is linked even when rights are missing (`rights_ok` false, with the
missing ones listed) so the leader can fix them and the link is re-checked (`update_rights`, e.g. on a
`my_chat_member` update); only chats with the rights are published to or read from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Follow, Leader, LeaderChannel, LeaderRevenue
from db.repositories import AuditRepository
from db.types import utcnow
from services.billing.entitlements import Entitlements
from services.copytrading.errors import (
    BadDisplayName,
    ChannelNotFound,
    ChannelTaken,
    LeaderNotFound,
    NotALeader,
)
from services.copytrading.views import ChannelView, LeaderView
from services.users import UserProfile

ZERO = Decimal(0)
MAX_NAME = 64
ADMIN_STATUSES = frozenset({"creator", "administrator"})


@dataclass(frozen=True, slots=True)
class ChatInfo:
    chat_id: int
    title: str
    kind: str  # channel | group

    @staticmethod
    def kind_of(chat_type: str) -> str:
        """Telegram's chat type (channel, group, supergroup) as a link kind."""
        return "channel" if chat_type == "channel" else "group"


@dataclass(frozen=True, slots=True)
class BotRights:
    """The bot's membership in a chat as getChatMember reports it."""

    status: str  # creator | administrator | member | restricted | left | kicked
    can_post_messages: bool | None = None  # channels
    can_edit_messages: bool | None = None  # channels
    can_delete_messages: bool | None = None

    def missing(self, kind: str) -> tuple[str, ...]:
        """Rights the bot needs and lacks: `admin` (to read every post or message), and in a channel
        `post_messages` (to publish signal cards) and `edit_messages` (to update a card when it closes)."""
        if self.status == "creator":
            return ()
        if self.status not in ADMIN_STATUSES:
            return ("admin", "post_messages", "edit_messages") if kind == "channel" else ("admin",)
        if kind != "channel":
            return ()
        lacking = []
        if not self.can_post_messages:
            lacking.append("post_messages")
        if not self.can_edit_messages:
            lacking.append("edit_messages")
        return tuple(lacking)


@dataclass(frozen=True, slots=True)
class RevenueLine:
    follower_id: int
    order_id: int | None
    profit: Decimal
    fee: Decimal
    leader_share: Decimal
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Earnings:
    """What `/earnings` shows: the leader's share of the fees on their followers' copied profit."""

    leader_id: int
    total_share: Decimal
    total_fees: Decimal
    copied_profit: Decimal
    fees_count: int
    paying_followers: int
    followers: int
    recent: tuple[RevenueLine, ...]


class LeaderService:
    def __init__(
        self,
        session: AsyncSession,
        entitlements: Entitlements,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.session = session
        self.entitlements = entitlements
        self.audit = AuditRepository(session)
        self.clock = clock

    # -------------------------------------------------------------------------------------- leaders

    async def become(self, user: UserProfile, display_name: str | None = None) -> LeaderView:
        """Make the user a leader (or active again). Needs `copy_lead` on their plan."""
        await self.entitlements.require(user.id, "copy_lead")
        name = _display_name(display_name) if display_name is not None else _default_name(user)
        row = await self._row(user.id)
        if row is None:
            row = Leader(
                user_id=user.id,
                display_name=name,
                publishes_trades=True,
                publishes_signals=False,
                active=True,
                created_at=self.clock(),
            )
            self.session.add(row)
        else:
            row.active = True
            if display_name is not None:
                row.display_name = name
        await self.session.flush()
        await self.audit.add(
            "copy.leader_on", tenant_id=user.tenant_id, user_id=user.id, details={"leader_id": row.id}
        )
        await self.session.commit()
        return LeaderView.of(row)

    async def get(self, user_id: int) -> LeaderView | None:
        row = await self._row(user_id)
        return None if row is None else LeaderView.of(row)

    async def require(self, user_id: int) -> LeaderView:
        row = await self._row(user_id)
        if row is None:
            raise NotALeader()
        return LeaderView.of(row)

    async def by_id(self, leader_id: int) -> LeaderView:
        row = await self.session.get(Leader, leader_id)
        if row is None:
            raise LeaderNotFound(leader_id=leader_id)
        return LeaderView.of(row)

    async def update_settings(
        self,
        user_id: int,
        *,
        display_name: str | None = None,
        publishes_trades: bool | None = None,
        publishes_signals: bool | None = None,
    ) -> LeaderView:
        row = await self._row(user_id)
        if row is None:
            raise NotALeader()
        if display_name is not None:
            row.display_name = _display_name(display_name)
        if publishes_trades is not None:
            row.publishes_trades = publishes_trades
        if publishes_signals is not None:
            row.publishes_signals = publishes_signals
        await self.session.commit()
        return LeaderView.of(row)

    async def stop_leading(self, user_id: int) -> LeaderView:
        """No longer a leader: nothing is published or copied any more (follows stay, idle)."""
        row = await self._row(user_id)
        if row is None:
            raise NotALeader()
        row.active = False
        await self.audit.add("copy.leader_off", user_id=user_id, details={"leader_id": row.id})
        await self.session.commit()
        return LeaderView.of(row)

    # ------------------------------------------------------------------------------------- channels

    async def link_channel(self, user_id: int, chat: ChatInfo, rights: BotRights) -> ChannelView:
        """Link a channel or group to the user's leader profile with the bot's rights there. Linking it
        again refreshes its title and rights; a chat linked to another leader is refused."""
        leader = await self._row(user_id)
        if leader is None:
            raise NotALeader()
        kind = chat.kind if chat.kind in ("channel", "group") else ChatInfo.kind_of(chat.kind)
        missing = rights.missing(kind)
        row = await self.session.scalar(select(LeaderChannel).where(LeaderChannel.chat_id == chat.chat_id))
        if row is not None and row.leader_id != leader.id:
            raise ChannelTaken(title=row.title)
        if row is None:
            row = LeaderChannel(leader_id=leader.id, chat_id=chat.chat_id, linked_at=self.clock())
            self.session.add(row)
        row.title = (chat.title or str(chat.chat_id))[:255]
        row.kind = kind
        row.rights_ok = not missing
        row.missing_rights = ",".join(missing) or None
        await self.session.flush()
        await self.audit.add(
            "copy.channel_linked",
            user_id=user_id,
            details={"chat_id": chat.chat_id, "rights_ok": not missing, "missing": list(missing)},
        )
        await self.session.commit()
        return ChannelView.of(row)

    async def update_rights(self, chat_id: int, rights: BotRights) -> ChannelView | None:
        """Re-check a linked chat's rights (the bot was promoted, restricted or removed)."""
        row = await self.session.scalar(select(LeaderChannel).where(LeaderChannel.chat_id == chat_id))
        if row is None:
            return None
        missing = rights.missing(row.kind)
        row.rights_ok = not missing
        row.missing_rights = ",".join(missing) or None
        await self.session.commit()
        return ChannelView.of(row)

    async def unlink_channel(self, user_id: int, chat_id: int) -> None:
        leader = await self._row(user_id)
        if leader is None:
            raise NotALeader()
        row = await self.session.scalar(
            select(LeaderChannel).where(
                LeaderChannel.chat_id == chat_id, LeaderChannel.leader_id == leader.id
            )
        )
        if row is None:
            raise ChannelNotFound(chat_id=chat_id)
        await self.session.delete(row)
        await self.audit.add("copy.channel_unlinked", user_id=user_id, details={"chat_id": chat_id})
        await self.session.commit()

    async def channels(self, user_id: int) -> list[ChannelView]:
        leader = await self._row(user_id)
        if leader is None:
            return []
        rows = await self.session.scalars(
            select(LeaderChannel).where(LeaderChannel.leader_id == leader.id).order_by(LeaderChannel.id)
        )
        return [ChannelView.of(row) for row in rows]

    async def leader_for_chat(self, chat_id: int) -> LeaderView | None:
        """The active leader whose linked chat (with the bot's rights) this is: posts there are read."""
        row = await self.session.scalar(
            select(Leader)
            .join(LeaderChannel, LeaderChannel.leader_id == Leader.id)
            .where(
                LeaderChannel.chat_id == chat_id, LeaderChannel.rights_ok.is_(True), Leader.active.is_(True)
            )
        )
        return None if row is None else LeaderView.of(row)

    async def publish_targets(self, leader_id: int, source: str) -> list[int]:
        """Chats to post a card to: for the leader's own trades when they publish trades, for consensus
        signals when they publish signals; never for a hand-written post (it is already there)."""
        leader = await self.session.get(Leader, leader_id)
        if leader is None or not leader.active or source == "post":
            return []
        if (source == "trade" and not leader.publishes_trades) or (
            source == "signal" and not leader.publishes_signals
        ):
            return []
        rows = await self.session.scalars(
            select(LeaderChannel.chat_id)
            .where(LeaderChannel.leader_id == leader_id, LeaderChannel.rights_ok.is_(True))
            .order_by(LeaderChannel.id)
        )
        return list(rows)

    # ------------------------------------------------------------------------------------- earnings

    async def earnings(self, user_id: int, recent: int = 10) -> Earnings:
        leader = await self._row(user_id)
        if leader is None:
            raise NotALeader()
        rows = (
            await self.session.execute(
                select(
                    LeaderRevenue.follower_id,
                    LeaderRevenue.order_id,
                    LeaderRevenue.profit,
                    LeaderRevenue.fee,
                    LeaderRevenue.leader_share,
                    LeaderRevenue.created_at,
                )
                .where(LeaderRevenue.leader_id == leader.id)
                .order_by(LeaderRevenue.id.desc())
            )
        ).all()
        lines = [RevenueLine(*row) for row in rows]
        followers = await self.session.scalar(
            select(func.count(Follow.id)).where(Follow.leader_id == leader.id, Follow.status != "stopped")
        )
        return Earnings(
            leader_id=leader.id,
            total_share=sum((line.leader_share for line in lines), ZERO),
            total_fees=sum((line.fee for line in lines), ZERO),
            copied_profit=sum((line.profit for line in lines), ZERO),
            fees_count=len(lines),
            paying_followers=len({line.follower_id for line in lines}),
            followers=int(followers or 0),
            recent=tuple(lines[:recent]),
        )

    async def _row(self, user_id: int) -> Leader | None:
        return await self.session.scalar(select(Leader).where(Leader.user_id == user_id))


def _display_name(value: str) -> str:
    name = " ".join(value.split())
    if not name or len(name) > MAX_NAME or not any(c.isalnum() for c in name):
        raise BadDisplayName(max=MAX_NAME)
    return name


def _default_name(user: UserProfile) -> str:
    for candidate in (user.first_name, user.username):
        if candidate and candidate.strip():
            return " ".join(candidate.split())[:MAX_NAME]
    return f"Leader {user.id}"
