"""Copy trading: leaders publish to Telegram channels, followers' accounts copy their trades."""

from services.copytrading.follows import FollowService, validate_allocation
from services.copytrading.leaderboard import Leaderboard, LeaderProfile, LeaderRow, LeaderStats
from services.copytrading.leaders import BotRights, ChatInfo, Earnings, LeaderService
from services.copytrading.mirror import (
    CopyConfig,
    CopyResult,
    FeeResult,
    MirrorEngine,
    NewAction,
    PostResult,
    Recorded,
    client_order_id,
)
from services.copytrading.open_trade import LateCopy, OpenTradeCopier, OpenTradeOffer
from services.copytrading.publishing import (
    CopyStart,
    SignalCard,
    copy_link,
    copy_start_payload,
    parse_copy_start,
    signal_card,
)
from services.copytrading.signal_format import ParsedSignal, SignalRejected, parse_signal_post, render_signal
from services.copytrading.views import ActionView, ChannelView, FollowView, LeaderView

__all__ = [
    "ActionView",
    "BotRights",
    "ChannelView",
    "ChatInfo",
    "CopyConfig",
    "CopyResult",
    "CopyStart",
    "Earnings",
    "FeeResult",
    "FollowService",
    "FollowView",
    "LateCopy",
    "LeaderProfile",
    "LeaderRow",
    "LeaderService",
    "LeaderStats",
    "LeaderView",
    "Leaderboard",
    "MirrorEngine",
    "NewAction",
    "OpenTradeCopier",
    "OpenTradeOffer",
    "ParsedSignal",
    "PostResult",
    "Recorded",
    "SignalCard",
    "SignalRejected",
    "client_order_id",
    "copy_link",
    "copy_start_payload",
    "parse_copy_start",
    "parse_signal_post",
    "render_signal",
    "signal_card",
    "validate_allocation",
]
