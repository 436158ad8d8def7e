"""Copy trading: /leader (channels, what is published), /link, /leaders with profiles, /follow (also from a
card's Copy button: /start copy_<leader>_<action>), /following, /earnings, /publish; posts in linked channels
and groups are read and copied; the bot's rights there are followed through my_chat_member updates."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import structlog
from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command, CommandObject, CommandStart, Filter
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    ChatMemberAdministrator,
    ChatMemberUpdated,
    InlineKeyboardMarkup,
    Message,
)
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import format as fmt
from handlers.filters import GROUPS, PRIVATE
from handlers.render import plain, show
from handlers.trading import render_copy_report
from keyboards.copytrading import (
    BoardCB,
    ChannelCB,
    CopyMenuCB,
    CopyOpenCB,
    FollowCB,
    FollowManageCB,
    LeaderCB,
    ProfileCB,
    back_to_copy,
    become_keyboard,
    board_keyboard,
    copy_menu,
    copy_open_keyboard,
    default_setup,
    following_keyboard,
    leader_keyboard,
    profile_keyboard,
    setup_keyboard,
)
from keyboards.menu import MenuCB
from services.billing.entitlements import Entitlements
from services.billing.plans import Catalogue
from services.consensus.service import ConsensusService
from services.copytrading.chart import equity_chart_png
from services.copytrading.errors import BadAllocation
from services.copytrading.follows import FollowService, validate_allocation
from services.copytrading.leaderboard import PERIODS, Leaderboard, LeaderProfile
from services.copytrading.leaders import BotRights, ChatInfo, LeaderService
from services.copytrading.open_trade import REFUSED, LateCopy, OpenTradeOffer
from services.copytrading.publishing import START_PREFIX, SignalCard, parse_copy_start
from services.copytrading.relay import CopyRelay
from services.copytrading.views import ChannelView, FollowView, LeaderView
from services.errors import ValidationError
from services.i18n import Html, Msg, Translator
from services.trading.service import TradingService
from services.users import UserProfile

log = structlog.get_logger(__name__)


class ChannelLike(Filter):
    """A chat whose posts can be signals: a group or supergroup (channels come as channel_post)."""

    async def __call__(self, event: ChatMemberUpdated) -> bool:
        return event.chat.type in ("channel", "group", "supergroup")


class GroupPost(Filter):
    """A message in a group that is not a command: text or a captioned media."""

    async def __call__(self, message: Message) -> bool:
        text = message.text or message.caption or ""
        return bool(text) and not text.startswith("/")


def build_router() -> Router:
    router = Router(name="copytrading")
    router.message.register(
        on_copy_start, PRIVATE, CommandStart(deep_link=True, magic=F.args.startswith(START_PREFIX))
    )
    router.message.register(cmd_leader, PRIVATE, Command("leader"))
    router.message.register(cmd_link, Command("link"))
    router.message.register(cmd_leaders, PRIVATE, Command("leaders"))
    router.message.register(cmd_follow, PRIVATE, Command("follow"))
    router.message.register(cmd_following, PRIVATE, Command("following"))
    router.message.register(cmd_earnings, PRIVATE, Command("earnings"))
    router.message.register(cmd_publish, PRIVATE, Command("publish"))
    router.message.register(on_group_post, GROUPS, GroupPost())
    router.channel_post.register(on_channel_post)
    router.my_chat_member.register(on_my_chat_member, ChannelLike())
    router.callback_query.register(on_copy_menu, MenuCB.filter(F.section == "copy"))
    router.callback_query.register(on_copy_view, CopyMenuCB.filter())
    router.callback_query.register(on_leader_action, LeaderCB.filter())
    router.callback_query.register(on_channel_action, ChannelCB.filter())
    router.callback_query.register(on_board, BoardCB.filter())
    router.callback_query.register(on_profile, ProfileCB.filter())
    router.callback_query.register(on_setup, FollowCB.filter())
    router.callback_query.register(on_manage, FollowManageCB.filter())
    router.callback_query.register(on_copy_open, CopyOpenCB.filter())
    return router


def _leaders(session: AsyncSession, catalogue: Catalogue) -> LeaderService:
    return LeaderService(session, Entitlements(session, catalogue))


def _follows(session: AsyncSession, catalogue: Catalogue, trading: TradingService) -> FollowService:
    return FollowService(session, Entitlements(session, catalogue), trading)


def _num(value: Decimal | None) -> str:
    return "—" if value is None else fmt.amount(value, 2)


# ---------------------------------------------------------------------------------------------- render


def render_card(t: Translator, card: SignalCard) -> str:
    """A signal card for a channel, in the leader's language; it reads back as the same signal."""
    return t(card.key, **card.params)


def _rights(t: Translator, missing: tuple[str, ...]) -> str:
    return ", ".join(t(f"copy.rights.{name}") for name in missing)


def _channel_line(t: Translator, channel: ChannelView) -> str:
    kind = t(f"copy.leader.kind_{channel.kind}")
    if channel.rights_ok:
        return t("copy.leader.channel_ok", title=channel.title, kind=kind)
    return t(
        "copy.leader.channel_missing", title=channel.title, kind=kind, missing=_rights(t, channel.missing)
    )


def render_leader(t: Translator, leader: LeaderView, channels: list[ChannelView], followers: int) -> str:
    lines = "\n".join(_channel_line(t, c) for c in channels) or t("copy.leader.no_channels")
    yes, no = t("copy.leader.yes"), t("copy.leader.no")
    return t(
        "copy.leader.panel" if leader.active else "copy.leader.inactive",
        name=leader.display_name,
        id=leader.id,
        trades=yes if leader.publishes_trades else no,
        signals=yes if leader.publishes_signals else no,
        followers=followers,
        channels=Html(lines),
    )


def _allocation(t: Translator, kind: str, value: Decimal) -> str:
    key = "copy.setup.alloc_fixed" if kind == "fixed" else "copy.setup.alloc_percent"
    return t(key, value=_num(value))


def render_follow(t: Translator, follow: FollowView) -> str:
    return t(
        "copy.following.line",
        id=follow.id,
        leader=follow.leader_name,
        status=t(f"copy.status.{follow.status}")
        + (f" ({t(f'copy.pause_reason.{follow.pause_reason}')})" if follow.pause_reason else ""),
        mode=t(f"trade.mode.{follow.mode}"),
        allocation=_allocation(t, follow.allocation_kind, follow.allocation_value),
        cap=_num(follow.max_per_trade),
        dd=_num(follow.stop_drawdown_pct),
        pnl=fmt.signed(follow.realized_pnl),
    )


def render_setup(t: Translator, state: FollowCB, leader: LeaderView, extra: str = "") -> str:
    cap, dd = Decimal(state.cap), Decimal(state.dd)
    return t(
        "copy.setup.text",
        leader=leader.display_name,
        id=leader.id,
        mode=t(f"trade.mode.{state.mode}"),
        allocation=_allocation(t, state.kind, Decimal(state.value)),
        cap=t("copy.setup.cap_value", value=_num(cap)) if cap > 0 else t("copy.setup.none"),
        dd=t("copy.setup.dd_value", value=_num(dd)) if dd > 0 else t("copy.setup.none"),
        extra=Html(extra),
    )


def render_profile(t: Translator, profile: LeaderProfile) -> str:
    lines = []
    for days, stats in sorted(profile.stats.items()):
        lines.append(
            t(
                "copy.profile.period",
                days=days,
                ret=fmt.pct(stats.return_pct),
                win=_num(stats.win_rate),
                dd=_num(stats.max_drawdown_pct),
                trades=stats.trades,
            )
        )
    return t(
        "copy.profile.text",
        name=profile.leader.display_name,
        id=profile.leader.id,
        followers=profile.followers,
        channels=profile.channels,
        lines=Html("\n".join(lines)),
    )


# ------------------------------------------------------------------------------------------- the menu


async def on_copy_menu(
    query: CallbackQuery, user: UserProfile, i18n: Translator, session: AsyncSession, catalogue: Catalogue
) -> None:
    leader = await _leaders(session, catalogue).get(user.id)
    is_leader = leader is not None and leader.active
    await show(query, i18n("copy.menu"), copy_menu(i18n, is_leader))


async def on_copy_view(
    query: CallbackQuery,
    callback_data: CopyMenuCB,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    catalogue: Catalogue,
    trading: TradingService,
) -> None:
    if callback_data.view == "leaders":
        text, markup = await _board(i18n, session, 30)
    elif callback_data.view == "following":
        text, markup = await _following(i18n, session, catalogue, trading, user)
    elif callback_data.view == "earnings":
        text, markup = await _earnings(i18n, session, catalogue, user), back_to_copy(i18n)
    else:
        text, markup = await _leader_panel(i18n, session, catalogue, user, trading)
    await show(query, text, markup)


# --------------------------------------------------------------------------------------------- leaders


async def _leader_panel(
    t: Translator, session: AsyncSession, catalogue: Catalogue, user: UserProfile, trading: TradingService
) -> tuple[str, InlineKeyboardMarkup]:
    service = _leaders(session, catalogue)
    leader = await service.get(user.id)
    if leader is None:
        return t("copy.leader.intro"), become_keyboard(t)
    channels = await service.channels(user.id)
    followers = await _follows(session, catalogue, trading).followers(leader.id)
    return render_leader(t, leader, channels, followers), leader_keyboard(t, leader, channels)


async def cmd_leader(
    message: Message,
    command: CommandObject,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    catalogue: Catalogue,
    trading: TradingService,
) -> None:
    args = (command.args or "").strip()
    service = _leaders(session, catalogue)
    if args:
        word, _, rest = args.partition(" ")
        if word.lower() != "name" or not rest.strip():
            raise ValidationError("copy.errors.leader_usage")
        if await service.get(user.id) is None:
            await service.become(user, rest)
        else:
            await service.update_settings(user.id, display_name=rest)
    text, markup = await _leader_panel(i18n, session, catalogue, user, trading)
    await message.answer(text, reply_markup=markup)


async def on_leader_action(
    query: CallbackQuery,
    callback_data: LeaderCB,
    bot: Bot,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    catalogue: Catalogue,
    trading: TradingService,
) -> None:
    service = _leaders(session, catalogue)
    action = callback_data.action
    if action == "start":
        await service.become(user)
    elif action in ("trades", "signals"):
        leader = await service.require(user.id)
        if action == "trades":
            await service.update_settings(user.id, publishes_trades=not leader.publishes_trades)
        else:
            await service.update_settings(user.id, publishes_signals=not leader.publishes_signals)
    elif action == "stop":
        await service.stop_leading(user.id)
    elif action == "recheck":
        for channel in await service.channels(user.id):
            rights = await _bot_rights(bot, channel.chat_id)
            await service.update_rights(channel.chat_id, rights)
    text, markup = await _leader_panel(i18n, session, catalogue, user, trading)
    await show(query, text, markup)


async def on_channel_action(
    query: CallbackQuery,
    callback_data: ChannelCB,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    catalogue: Catalogue,
    trading: TradingService,
) -> None:
    await _leaders(session, catalogue).unlink_channel(user.id, callback_data.chat_id)
    text, markup = await _leader_panel(i18n, session, catalogue, user, trading)
    await show(query, text, markup)


async def _bot_rights(bot: Bot, chat_id: int) -> BotRights:
    try:
        member = await bot.get_chat_member(chat_id, bot.id)
    except TelegramAPIError:
        return BotRights("left")
    if isinstance(member, ChatMemberAdministrator):
        return BotRights(
            member.status,
            can_post_messages=member.can_post_messages,
            can_edit_messages=member.can_edit_messages,
            can_delete_messages=member.can_delete_messages,
        )
    return BotRights(member.status)


def _chat_ref(text: str) -> int | str:
    text = text.strip()
    if text.startswith("https://t.me/"):
        text = "@" + text.removeprefix("https://t.me/").split("/")[0]
    try:
        return int(text)
    except ValueError:
        if not text.startswith("@"):
            text = "@" + text
        return text


async def cmd_link(
    message: Message,
    command: CommandObject,
    bot: Bot,
    user: UserProfile | None,
    i18n: Translator,
    session: AsyncSession,
    catalogue: Catalogue,
) -> None:
    """`/link @channel` (or its id) in a private chat; `/link` inside a group links that group."""
    if user is None:
        return
    service = _leaders(session, catalogue)
    if message.chat.type == "private":
        if not (command.args or "").strip():
            raise ValidationError("copy.errors.link_usage")
        try:
            chat = await bot.get_chat(_chat_ref(command.args or ""))
        except TelegramAPIError:
            raise ValidationError("copy.errors.chat_not_found", chat=(command.args or "").strip()) from None
        chat_id, title, chat_type = chat.id, chat.title or str(chat.id), chat.type
    else:
        chat_id, title, chat_type = (
            message.chat.id,
            message.chat.title or str(message.chat.id),
            message.chat.type,
        )
    if chat_type not in ("channel", "group", "supergroup"):
        raise ValidationError("copy.errors.not_a_channel")
    try:
        member = await bot.get_chat_member(chat_id, user.telegram_id)
    except TelegramAPIError:
        member = None
    if member is None or member.status not in ("creator", "administrator"):
        raise ValidationError("copy.errors.not_chat_admin", chat=title)
    rights = await _bot_rights(bot, chat_id)
    channel = await service.link_channel(
        user.id, ChatInfo(chat_id, title, ChatInfo.kind_of(chat_type)), rights
    )
    if channel.rights_ok:
        text = i18n("copy.link.ok", title=channel.title, kind=i18n(f"copy.leader.kind_{channel.kind}"))
    else:
        text = i18n("copy.link.missing", title=channel.title, missing=_rights(i18n, channel.missing))
    await message.answer(text)


async def on_my_chat_member(
    event: ChatMemberUpdated, session: AsyncSession, catalogue: Catalogue, copy_relay: CopyRelay
) -> None:
    """The bot was promoted, restricted or removed in a chat: a linked one is re-checked, its leader told."""
    member = event.new_chat_member
    if isinstance(member, ChatMemberAdministrator):
        rights = BotRights(
            member.status,
            can_post_messages=member.can_post_messages,
            can_edit_messages=member.can_edit_messages,
            can_delete_messages=member.can_delete_messages,
        )
    else:
        rights = BotRights(member.status)
    channel = await _leaders(session, catalogue).update_rights(event.chat.id, rights)
    if channel is not None:
        await copy_relay.rights_changed(channel)


# ---------------------------------------------------------------------------------------------- posts


async def on_channel_post(message: Message, session: AsyncSession, copy_relay: CopyRelay) -> None:
    text = message.text or message.caption
    if text:
        await session.commit()  # nothing of this update's session is held while the copies run
        await copy_relay.after_post(message.chat.id, message.message_id, text)


async def on_group_post(message: Message, session: AsyncSession, copy_relay: CopyRelay) -> None:
    text = message.text or message.caption
    if text and message.from_user is not None:
        await session.commit()  # nothing of this update's session is held while the copies run
        await copy_relay.after_post(
            message.chat.id, message.message_id, text, author_telegram_id=message.from_user.id
        )


async def cmd_publish(
    message: Message,
    command: CommandObject,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    catalogue: Catalogue,
    consensus: ConsensusService,
    copy_relay: CopyRelay,
) -> None:
    """`/publish <signal id>`: a consensus signal goes to the leader's followers and channels."""
    leader = await _leaders(session, catalogue).require(user.id)
    try:
        signal_id = int((command.args or "").strip().lstrip("#"))
    except ValueError:
        raise ValidationError("copy.errors.publish_usage") from None
    if not leader.publishes_signals:
        raise ValidationError("copy.errors.signals_off")
    await session.commit()  # the consensus and the relay use sessions of their own
    signal = await consensus.get_signal(signal_id)
    if signal.action not in ("buy", "sell"):
        await message.answer(i18n("copy.publish.hold"))
        return
    report = await copy_relay.publish_signal(leader, signal)
    if report is None:  # the fan-out workers copy it; their report follows
        await message.answer(i18n("copy.publish.queued", id=signal_id, symbol=signal.symbol))
        return
    await message.answer(render_copy_report(i18n, report))


# ------------------------------------------------------------------------------------ leaderboard, profile


async def _board(t: Translator, session: AsyncSession, days: int) -> tuple[str, InlineKeyboardMarkup]:
    rows = await Leaderboard(session).rank(days, limit=10)
    if not rows:
        return t("copy.board.empty", days=days), board_keyboard(t, rows, days)
    lines = "\n".join(
        t(
            "copy.board.line",
            rank=row.rank,
            name=row.display_name,
            ret=fmt.pct(row.stats.return_pct),
            win=_num(row.stats.win_rate),
            dd=_num(row.stats.max_drawdown_pct),
            trades=row.stats.trades,
            followers=row.followers,
        )
        for row in rows
    )
    return t("copy.board.text", days=days, lines=Html(lines)), board_keyboard(t, rows, days)


async def cmd_leaders(
    message: Message, command: CommandObject, i18n: Translator, session: AsyncSession
) -> None:
    arg = (command.args or "").strip().lower().rstrip("d")
    days = int(arg) if arg.isdigit() and int(arg) in PERIODS else 30
    text, markup = await _board(i18n, session, days)
    await message.answer(text, reply_markup=markup)


async def on_board(
    query: CallbackQuery, callback_data: BoardCB, i18n: Translator, session: AsyncSession
) -> None:
    days = callback_data.days if callback_data.days in PERIODS else 30
    text, markup = await _board(i18n, session, days)
    await show(query, text, markup)


async def _send_profile(
    bot: Bot, chat_id: int, t: Translator, session: AsyncSession, leader_id: int, user: UserProfile
) -> None:
    profile = await Leaderboard(session).profile(leader_id)
    png = await asyncio.to_thread(equity_chart_png, profile.equity, profile.leader.display_name)
    can_follow = profile.leader.active and profile.leader.user_id != user.id
    await bot.send_photo(
        chat_id,
        BufferedInputFile(png, filename=f"leader_{leader_id}.png"),
        caption=render_profile(t, profile),
        reply_markup=profile_keyboard(t, leader_id, can_follow),
    )


async def on_profile(
    query: CallbackQuery,
    callback_data: ProfileCB,
    bot: Bot,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
) -> None:
    await query.answer()
    await _send_profile(bot, query.from_user.id, i18n, session, callback_data.leader_id, user)


# ---------------------------------------------------------------------------------------------- follow


async def on_copy_start(
    message: Message,
    command: CommandObject,
    bot: Bot,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    catalogue: Catalogue,
    copy_relay: CopyRelay,
) -> None:
    """The Copy button of a channel card: the leader's profile, then the follow setup card (which offers
    the card's open trade once followed); a follower of the leader gets that offer right away."""
    start = parse_copy_start(command.args)
    if start is None:
        raise ValidationError("copy.errors.bad_link")
    leader = await _leaders(session, catalogue).by_id(start.leader_id)
    await _send_profile(bot, message.chat.id, i18n, session, leader.id, user)
    if leader.user_id == user.id:
        return
    offer = await _offer(session, copy_relay, user, leader.id, start.action_id)
    if offer is not None and offer.following:
        text, markup = render_offer(i18n, offer)
        await message.answer(text, reply_markup=markup)
        return
    state = default_setup(leader.id).model_copy(update={"act": offer.action_id if offer else 0})
    await message.answer(render_setup(i18n, state, leader), reply_markup=setup_keyboard(i18n, state))


async def _offer(
    session: AsyncSession, copy_relay: CopyRelay, user: UserProfile, leader_id: int, action_id: int | None
) -> OpenTradeOffer | None:
    """The offer of the leader's entry `action_id` to the user (None: not an entry of that leader)."""
    if not action_id:
        return None
    await session.commit()  # the relay uses sessions of its own
    offer = await copy_relay.open_trade_offer(user.id, action_id)
    return offer if offer is not None and offer.leader_id == leader_id else None


def _parse_follow_args(args: list[str], leader_id: int) -> FollowCB:
    """`/follow <leader id> [100 | 5%] [max 500] [dd 20] [live | paper]`."""
    state = default_setup(leader_id)
    changes: dict[str, str] = {}
    words = iter(a.lower() for a in args)
    try:
        for word in words:
            if word in ("live", "paper"):
                changes["mode"] = word
            elif word in ("max", "cap"):
                changes["cap"] = str(Decimal(next(words)))
            elif word in ("dd", "drawdown", "stop"):
                changes["dd"] = str(Decimal(next(words).rstrip("%")))
            elif word.endswith("%"):
                changes["kind"], changes["value"] = "percent", str(Decimal(word.rstrip("%")))
            else:
                changes["kind"], changes["value"] = "fixed", str(Decimal(word.removesuffix("usdt")))
    except (InvalidOperation, StopIteration):
        raise ValidationError("copy.errors.follow_usage") from None
    return state.model_copy(update=changes)


def _check(state: FollowCB) -> tuple[Decimal, Decimal | None, Decimal | None]:
    try:
        value, cap, dd = Decimal(state.value), Decimal(state.cap), Decimal(state.dd)
    except InvalidOperation:
        raise BadAllocation(field="value", value=state.value) from None
    max_per_trade = cap if cap > 0 else None
    drawdown = dd if dd > 0 else None
    validate_allocation(state.kind, value, max_per_trade, drawdown)
    return value, max_per_trade, drawdown


async def cmd_follow(
    message: Message,
    command: CommandObject,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    catalogue: Catalogue,
) -> None:
    args = (command.args or "").split()
    if not args:
        text, markup = await _board(i18n, session, 30)
        await message.answer(i18n("copy.errors.follow_pick") + "\n\n" + text, reply_markup=markup)
        return
    try:
        leader_id = int(args[0].lstrip("#"))
    except ValueError:
        raise ValidationError("copy.errors.follow_usage") from None
    leader = await _leaders(session, catalogue).by_id(leader_id)
    state = _parse_follow_args(args[1:], leader.id)
    _check(state)
    await message.answer(render_setup(i18n, state, leader), reply_markup=setup_keyboard(i18n, state))


async def on_setup(
    query: CallbackQuery,
    callback_data: FollowCB,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    catalogue: Catalogue,
    trading: TradingService,
    copy_relay: CopyRelay,
) -> None:
    state = callback_data
    if state.action == "cancel":
        await show(query, i18n("copy.setup.cancelled"), back_to_copy(i18n))
        return
    leader = await _leaders(session, catalogue).by_id(state.leader_id)
    value, cap, dd = _check(state)
    if state.action != "go":
        await show(query, render_setup(i18n, state, leader), setup_keyboard(i18n, state))
        return
    follow = await _follows(session, catalogue, trading).follow(
        user,
        leader.id,
        mode=state.mode,
        allocation_kind=state.kind,
        allocation_value=value,
        max_per_trade=cap,
        stop_drawdown_pct=dd,
    )
    text = i18n("copy.setup.done", leader=leader.display_name) + "\n\n" + render_follow(i18n, follow)
    markup = following_keyboard(i18n, [follow])
    offer = await _offer(session, copy_relay, user, leader.id, state.act)
    if (
        offer is not None
    ):  # followed through a card's Copy link: that card's trade, offered in the same message
        offer_text, offer_markup = render_offer(i18n, offer)
        text += "\n\n" + offer_text
        if offer_markup is not None:
            markup = InlineKeyboardMarkup(
                inline_keyboard=[*offer_markup.inline_keyboard, *markup.inline_keyboard]
            )
    await show(query, text, markup)


async def _following(
    t: Translator, session: AsyncSession, catalogue: Catalogue, trading: TradingService, user: UserProfile
) -> tuple[str, InlineKeyboardMarkup]:
    follows = await _follows(session, catalogue, trading).following(user.id)
    if not follows:
        return t("copy.following.empty"), following_keyboard(t, [])
    lines = "\n\n".join(render_follow(t, f) for f in follows)
    return t("copy.following.text", lines=Html(lines)), following_keyboard(t, follows)


async def cmd_following(
    message: Message,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    catalogue: Catalogue,
    trading: TradingService,
) -> None:
    text, markup = await _following(i18n, session, catalogue, trading, user)
    await message.answer(text, reply_markup=markup)


async def on_manage(
    query: CallbackQuery,
    callback_data: FollowManageCB,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    catalogue: Catalogue,
    trading: TradingService,
) -> None:
    service = _follows(session, catalogue, trading)
    follow_id = callback_data.follow_id
    if callback_data.action == "edit":
        follow = await service.get(user.id, follow_id)
        leader = await _leaders(session, catalogue).by_id(follow.leader_id)
        state = FollowCB(
            action="set",
            leader_id=leader.id,
            mode=follow.mode,
            kind=follow.allocation_kind,
            value=str(follow.allocation_value.normalize()),
            cap=str(follow.max_per_trade.normalize()) if follow.max_per_trade else "0",
            dd=str(follow.stop_drawdown_pct.normalize()) if follow.stop_drawdown_pct else "0",
        )
        await show(query, render_setup(i18n, state, leader), setup_keyboard(i18n, state))
        return
    if callback_data.action == "pause":
        done = await service.pause(user.id, follow_id)
    elif callback_data.action == "resume":
        done = await service.resume(user.id, follow_id)
    else:
        done = await service.stop(user.id, follow_id)
    notice = i18n(f"copy.following.{done.status}", leader=done.leader_name)
    text, markup = await _following(i18n, session, catalogue, trading, user)
    await show(query, notice + "\n\n" + text, markup)


# ------------------------------------------------------------------------------ the open trade, copied late


def _offer_params(t: Translator, offer: OpenTradeOffer) -> dict[str, object]:
    return {
        "leader": offer.leader_name,
        "symbol": offer.symbol,
        "base": offer.base,
        "quote": offer.quote,
        "entry": fmt.price(offer.entry) if offer.entry is not None else None,
        "price": fmt.price(offer.price) if offer.price is not None else None,
        "move": fmt.pct(offer.move_pct) if offer.move_pct is not None else None,
        "spend": fmt.money(offer.spend) if offer.spend is not None else None,
        "amount": fmt.amount(offer.amount) if offer.amount is not None else None,
        "mode": t(f"trade.mode.{offer.mode}") if offer.mode else None,
    }


def render_refusal(t: Translator, offer: OpenTradeOffer) -> str:
    params: dict[str, object] = _offer_params(t, offer)
    for name, value in offer.params.items():
        params[name] = fmt.price(value) if isinstance(value, Decimal) else value
    if "status" in offer.params:
        params["status"] = t(f"copy_open.status.{offer.params['status']}")
    return t(offer.refused or REFUSED + "closed", **params)


def render_offer(t: Translator, offer: OpenTradeOffer) -> tuple[str, InlineKeyboardMarkup | None]:
    """The "Copy this open trade now?" card, or why the trade cannot be copied (no button)."""
    if not offer.ok or offer.priced_at is None:
        return render_refusal(t, offer), None
    text = t("copy_open.offer", minutes=max(1, offer.valid_seconds // 60), **_offer_params(t, offer))
    return text, copy_open_keyboard(t, offer.action_id, int(offer.priced_at.timestamp()))


def render_late_copy(t: Translator, late: LateCopy) -> str:
    offer, result = late.offer, late.result
    if offer is None:
        return t("copy_open.unavailable")
    if not offer.ok:
        return render_refusal(t, offer)
    params = _offer_params(t, offer)
    if result is None:
        return t("copy_open.gone", **params)
    if result.status == "done":
        return t("copy_open.done", **params)
    return t("copy_open.not_done", reason=Msg(result.reason or "errors.internal", result.params), **params)


async def on_copy_open(
    query: CallbackQuery,
    callback_data: CopyOpenCB,
    user: UserProfile,
    i18n: Translator,
    session: AsyncSession,
    copy_relay: CopyRelay,
) -> None:
    """Copy now (through the fan-out's own path for this one follow, once), or skip."""
    if callback_data.op != "go":
        await show(query, i18n("copy_open.skipped"))
        return
    # the buttons go at once; the text stays, so a second press that loses never hides the first's outcome
    if isinstance(query.message, Message):
        with contextlib.suppress(TelegramBadRequest):  # already gone
            await query.message.edit_reply_markup(reply_markup=None)
    await session.commit()  # the relay uses sessions of its own
    offered_at = datetime.fromtimestamp(callback_data.ts, UTC)
    late = await copy_relay.copy_open_trade(user.id, callback_data.action_id, offered_at=offered_at)
    text = render_late_copy(i18n, late)
    if late.refused in (REFUSED + "in_progress", REFUSED + "already_copied"):
        await query.answer(plain(text), show_alert=True)  # another press is (or was) the one copying
        return
    await show(query, text)


# -------------------------------------------------------------------------------------------- earnings


async def _earnings(t: Translator, session: AsyncSession, catalogue: Catalogue, user: UserProfile) -> str:
    earnings = await _leaders(session, catalogue).earnings(user.id)
    lines = "\n".join(
        t(
            "copy.earnings.line",
            date=line.created_at.strftime("%Y-%m-%d"),
            profit=fmt.money(line.profit),
            share=fmt.money(line.leader_share),
        )
        for line in earnings.recent
    ) or t("copy.earnings.none")
    return t(
        "copy.earnings.text",
        share=fmt.money(earnings.total_share),
        fees=fmt.money(earnings.total_fees),
        profit=fmt.money(earnings.copied_profit),
        count=earnings.fees_count,
        paying=earnings.paying_followers,
        followers=earnings.followers,
        lines=Html(lines),
    )


async def cmd_earnings(
    message: Message, user: UserProfile, i18n: Translator, session: AsyncSession, catalogue: Catalogue
) -> None:
    await message.answer(await _earnings(i18n, session, catalogue, user), reply_markup=back_to_copy(i18n))
