"""Errors of copy trading; each carries a locale key (`copy.errors.*`) and its parameters."""

from __future__ import annotations

from services.errors import NotFoundError, PermissionDenied, ValidationError


class NotALeader(NotFoundError):
    message_key = "copy.errors.not_a_leader"


class LeaderNotFound(NotFoundError):
    message_key = "copy.errors.leader_not_found"


class FollowNotFound(NotFoundError):
    message_key = "copy.errors.follow_not_found"


class ChannelTaken(PermissionDenied):
    """The chat is linked to another leader."""

    message_key = "copy.errors.channel_taken"


class ChannelNotFound(NotFoundError):
    message_key = "copy.errors.channel_not_found"


class BadDisplayName(ValidationError):
    message_key = "copy.errors.bad_display_name"


class CannotFollowSelf(ValidationError):
    message_key = "copy.errors.follow_self"


class BadAllocation(ValidationError):
    """An allocation, a maximum per trade or a stop-copy drawdown out of range (params say which)."""

    message_key = "copy.errors.bad_allocation"


class AccountRequired(ValidationError):
    """Live copying needs a connected live account (or one chosen when there are several)."""

    message_key = "copy.errors.account_required"


class FollowStopped(ValidationError):
    message_key = "copy.errors.follow_stopped"
