"""One tree of typed exceptions. Each carries a locale message key and its parameters; the bot's error
router renders them in the user's language. Internals never reach the user."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """Base of every error a user may be told about."""

    message_key = "errors.internal"

    def __init__(self, message_key: str | None = None, **params: Any) -> None:
        if message_key is not None:
            self.message_key = message_key
        self.params = params
        super().__init__(self.message_key)


class ValidationError(AppError):
    """The user's input is wrong; nothing was changed."""

    message_key = "errors.invalid_input"


class NotFoundError(AppError):
    message_key = "errors.not_found"


class PermissionDenied(AppError):
    message_key = "errors.forbidden"


class FeatureUnavailable(AppError):
    """The feature exists in the menu but is not available (not built, or not on the user's plan)."""

    message_key = "errors.feature_unavailable"


class TemporaryError(AppError):
    """Something outside us failed for now (an exchange, a provider); trying again later may work."""

    message_key = "errors.temporary"


class RateLimited(AppError):
    message_key = "errors.rate_limited"
