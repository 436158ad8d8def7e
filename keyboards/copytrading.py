"""Buttons of copy trading: the section menu, the leader panel, the leaderboard, profiles, the follow setup
card and the follows list; the Copy button of channel cards and the "Copy this open trade now?" card."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from keyboards.menu import MenuCB
from services.copytrading.leaderboard import PERIODS, LeaderRow
from services.copytrading.views import ChannelView, FollowView, LeaderView
from services.i18n import Translator

FIXED_PRESETS = ("50", "100", "250")
PERCENT_PRESETS = ("2", "5", "10")
CAP_PRESETS = ("0", "200", "500")
DRAWDOWN_PRESETS = ("0", "10", "20", "30")


class CopyMenuCB(CallbackData, prefix="cpm"):
    view: str  # leaders | following | leader | earnings


class LeaderCB(CallbackData, prefix="ldr"):
    action: str  # start | trades | signals | stop | recheck


class ChannelCB(CallbackData, prefix="lch"):
    action: str  # unlink
    chat_id: int


class BoardCB(CallbackData, prefix="lbd"):
    days: int


class ProfileCB(CallbackData, prefix="lpf"):
    leader_id: int


class FollowCB(CallbackData, prefix="fsu"):
    """The follow setup card: its whole state travels in the button."""

    action: str  # set | go | cancel
    leader_id: int
    mode: str  # paper | live
    kind: str  # fixed | percent
    value: str
    cap: str  # "0": no maximum per trade
    dd: str  # "0": no stop-copy drawdown
    act: int = 0  # the entry whose Copy link led here (offered once the follow is set up); 0: none


class CopyOpenCB(CallbackData, prefix="cot"):
    """The "Copy this open trade now?" card: copy (`go`) or `skip` the leader's entry `action_id`,
    offered at `ts` (unix seconds; the button expires)."""

    op: str  # go | skip
    action_id: int
    ts: int


class FollowManageCB(CallbackData, prefix="fmg"):
    action: str  # pause | resume | stop | edit
    follow_id: int


def copy_menu(t: Translator, is_leader: bool) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=t("copy.buttons.leaders"), callback_data=CopyMenuCB(view="leaders"))
    builder.button(text=t("copy.buttons.following"), callback_data=CopyMenuCB(view="following"))
    builder.button(text=t("copy.buttons.leader_panel"), callback_data=CopyMenuCB(view="leader"))
    if is_leader:
        builder.button(text=t("copy.buttons.earnings"), callback_data=CopyMenuCB(view="earnings"))
    builder.button(text=t("menu.back"), callback_data=MenuCB(section="home"))
    builder.adjust(2)
    return builder.as_markup()


def back_to_copy(t: Translator) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=t("copy.buttons.back"), callback_data=MenuCB(section="copy"))
    return builder.as_markup()


def become_keyboard(t: Translator) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=t("copy.buttons.become"), callback_data=LeaderCB(action="start"))
    builder.button(text=t("copy.buttons.back"), callback_data=MenuCB(section="copy"))
    builder.adjust(1)
    return builder.as_markup()


def leader_keyboard(
    t: Translator, leader: LeaderView, channels: Sequence[ChannelView]
) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    mark = {True: "✅", False: "⬜"}
    if leader.active:
        builder.button(
            text=t("copy.buttons.publish_trades", mark=mark[leader.publishes_trades]),
            callback_data=LeaderCB(action="trades"),
        )
        builder.button(
            text=t("copy.buttons.publish_signals", mark=mark[leader.publishes_signals]),
            callback_data=LeaderCB(action="signals"),
        )
        if channels:
            builder.button(text=t("copy.buttons.recheck"), callback_data=LeaderCB(action="recheck"))
        for channel in channels:
            builder.button(
                text=t("copy.buttons.unlink", title=channel.title),
                callback_data=ChannelCB(action="unlink", chat_id=channel.chat_id),
            )
        builder.button(text=t("copy.buttons.profile"), callback_data=ProfileCB(leader_id=leader.id))
        builder.button(text=t("copy.buttons.earnings"), callback_data=CopyMenuCB(view="earnings"))
        builder.button(text=t("copy.buttons.stop_leading"), callback_data=LeaderCB(action="stop"))
    else:
        builder.button(text=t("copy.buttons.become"), callback_data=LeaderCB(action="start"))
    builder.button(text=t("copy.buttons.back"), callback_data=MenuCB(section="copy"))
    builder.adjust(1)
    return builder.as_markup()


def board_keyboard(t: Translator, rows: Sequence[LeaderRow], days: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for row in rows:
        builder.button(
            text=t("copy.buttons.view_leader", rank=row.rank, name=row.display_name),
            callback_data=ProfileCB(leader_id=row.leader_id),
        )
    periods = InlineKeyboardBuilder()
    for period in PERIODS:
        label = t("copy.buttons.period", days=period)
        periods.button(text=f"• {label} •" if period == days else label, callback_data=BoardCB(days=period))
    builder.adjust(1)
    builder.attach(periods)
    builder.row(
        InlineKeyboardButton(text=t("copy.buttons.back"), callback_data=MenuCB(section="copy").pack())
    )
    return builder.as_markup()


def profile_keyboard(t: Translator, leader_id: int, can_follow: bool) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    if can_follow:
        builder.button(text=t("copy.buttons.follow"), callback_data=default_setup(leader_id))
    builder.button(text=t("copy.buttons.leaders"), callback_data=CopyMenuCB(view="leaders"))
    builder.adjust(1)
    return builder.as_markup()


def default_setup(leader_id: int, action: str = "set") -> FollowCB:
    return FollowCB(
        action=action, leader_id=leader_id, mode="paper", kind="fixed", value="100", cap="0", dd="0"
    )


def _with(state: FollowCB, **changes: str) -> FollowCB:
    return state.model_copy(update={"action": "set", **changes})


def setup_keyboard(t: Translator, state: FollowCB) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()

    def tick(selected: bool, label: str) -> str:
        return f"✓ {label}" if selected else label

    sizes = [("fixed", v, t("copy.setup.fixed_button", value=v)) for v in FIXED_PRESETS] + [
        ("percent", v, t("copy.setup.percent_button", value=v)) for v in PERCENT_PRESETS
    ]
    for kind, value, label in sizes:
        chosen = state.kind == kind and Decimal(state.value) == Decimal(value)
        builder.button(text=tick(chosen, label), callback_data=_with(state, kind=kind, value=value))
    for cap in CAP_PRESETS:
        label = t("copy.setup.cap_none") if cap == "0" else t("copy.setup.cap_button", value=cap)
        builder.button(
            text=tick(Decimal(state.cap) == Decimal(cap), label), callback_data=_with(state, cap=cap)
        )
    for dd in DRAWDOWN_PRESETS:
        label = t("copy.setup.dd_none") if dd == "0" else t("copy.setup.dd_button", value=dd)
        builder.button(text=tick(Decimal(state.dd) == Decimal(dd), label), callback_data=_with(state, dd=dd))
    for mode in ("paper", "live"):
        builder.button(
            text=tick(state.mode == mode, t(f"trade.mode.{mode}")), callback_data=_with(state, mode=mode)
        )
    builder.button(
        text=t("copy.buttons.confirm_follow"), callback_data=state.model_copy(update={"action": "go"})
    )
    builder.button(
        text=t("trade.buttons.cancel"), callback_data=state.model_copy(update={"action": "cancel"})
    )
    builder.adjust(3, 3, 3, 4, 2, 2)
    return builder.as_markup()


def following_keyboard(t: Translator, follows: Sequence[FollowView]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for follow in follows:
        if follow.status == "active":
            builder.button(
                text=t("copy.buttons.pause", name=follow.leader_name),
                callback_data=FollowManageCB(action="pause", follow_id=follow.id),
            )
        else:
            builder.button(
                text=t("copy.buttons.resume", name=follow.leader_name),
                callback_data=FollowManageCB(action="resume", follow_id=follow.id),
            )
        builder.button(
            text=t("copy.buttons.edit"), callback_data=FollowManageCB(action="edit", follow_id=follow.id)
        )
        builder.button(
            text=t("copy.buttons.stop"), callback_data=FollowManageCB(action="stop", follow_id=follow.id)
        )
    builder.button(text=t("copy.buttons.leaders"), callback_data=CopyMenuCB(view="leaders"))
    builder.button(text=t("copy.buttons.back"), callback_data=MenuCB(section="copy"))
    builder.adjust(*([3] * len(follows)), 2)
    return builder.as_markup()


def copy_button(t: Translator, url: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=t("copy.buttons.copy"), url=url)
    return builder.as_markup()


def copy_open_keyboard(t: Translator, action_id: int, ts: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=t("copy_open.buttons.copy"), callback_data=CopyOpenCB(op="go", action_id=action_id, ts=ts)
    )
    builder.button(
        text=t("copy_open.buttons.skip"), callback_data=CopyOpenCB(op="skip", action_id=action_id, ts=ts)
    )
    builder.adjust(2)
    return builder.as_markup()
