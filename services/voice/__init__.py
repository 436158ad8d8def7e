"""Voice messages -> text: local Whisper transcription behind one `Transcriber` interface."""

from services.voice.errors import (
    VoiceConfigError,
    VoiceEmpty,
    VoiceError,
    VoiceNotConfigured,
    VoiceTooBig,
    VoiceTooLong,
    VoiceUnreadable,
)
from services.voice.factory import (
    ENGINES,
    FASTER_WHISPER,
    OPENAI_WHISPER,
    build_transcriber,
    build_voice_service,
    bundled_model_path,
    resolve_model,
)
from services.voice.service import TELEGRAM_MAX_DOWNLOAD_BYTES, VoiceLimits, VoiceService
from services.voice.transcriber import (
    FasterWhisperTranscriber,
    OpenAIWhisperTranscriber,
    Segment,
    Transcriber,
    Transcript,
)

__all__ = [
    "ENGINES",
    "FASTER_WHISPER",
    "OPENAI_WHISPER",
    "TELEGRAM_MAX_DOWNLOAD_BYTES",
    "FasterWhisperTranscriber",
    "OpenAIWhisperTranscriber",
    "Segment",
    "Transcriber",
    "Transcript",
    "VoiceConfigError",
    "VoiceEmpty",
    "VoiceError",
    "VoiceLimits",
    "VoiceNotConfigured",
    "VoiceService",
    "VoiceTooBig",
    "VoiceTooLong",
    "VoiceUnreadable",
    "build_transcriber",
    "build_voice_service",
    "bundled_model_path",
    "resolve_model",
]
