"""Why a voice message was not turned into text; each error has a `voice.errors.*` message key."""

from __future__ import annotations

from typing import Any

from services.errors import FeatureUnavailable, ValidationError

__all__ = [
    "VoiceConfigError",
    "VoiceEmpty",
    "VoiceError",
    "VoiceNotConfigured",
    "VoiceTooBig",
    "VoiceTooLong",
    "VoiceUnreadable",
]


class VoiceError(ValidationError):
    """Base of the voice errors that are about the message itself."""

    message_key = "voice.errors.unreadable"


class VoiceTooLong(VoiceError):
    """Params: `seconds` (the message's length, whole seconds) and `max` (the limit)."""

    message_key = "voice.errors.too_long"


class VoiceTooBig(VoiceError):
    """Params: `size_mb` and `max_mb` (one decimal)."""

    message_key = "voice.errors.too_big"


class VoiceUnreadable(VoiceError):
    """The file is not audio we can decode (or holds no audio stream)."""

    message_key = "voice.errors.unreadable"


class VoiceEmpty(VoiceError):
    """The audio decoded, but no speech was recognised in it."""

    message_key = "voice.errors.empty"


class VoiceNotConfigured(FeatureUnavailable):
    """No speech model is available: voice messages get a clear answer instead of a transcript."""

    message_key = "voice.errors.not_configured"


class VoiceConfigError(VoiceNotConfigured):
    """The voice settings cannot work (engine not installed, model path missing, model failed to load).

    Users see `voice.errors.not_configured`; `detail` says what to fix and is meant for the log.
    """

    def __init__(self, detail: str, **params: Any) -> None:
        super().__init__(None, **params)
        self.detail = detail

    def __str__(self) -> str:
        return self.detail
