"""Voice messages -> transcripts, with limits checked early and a bound on concurrent transcriptions.

The handler calls `check()` with what Telegram reports (duration, file size) before downloading anything,
then `transcribe()` with the bytes. At most `concurrency` transcriptions run at once (the transcriber's
thread pool has as many threads); further messages wait their turn without holding a thread, and the
event loop stays free for everyone else. A caller that gives up (cancellation) keeps its slot until its
transcription has really finished, so the bound holds for the CPU, not just for the callers.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Final

from services.voice.audio import AudioSource, source_size
from services.voice.errors import VoiceEmpty, VoiceNotConfigured, VoiceTooBig, VoiceTooLong
from services.voice.transcriber import Transcriber, Transcript

__all__ = ["TELEGRAM_MAX_DOWNLOAD_BYTES", "VoiceLimits", "VoiceService"]

TELEGRAM_MAX_DOWNLOAD_BYTES: Final = 20 * 1024 * 1024
"""The Bot API's getFile limit: larger files cannot be downloaded by a bot."""


@dataclass(frozen=True, slots=True)
class VoiceLimits:
    max_seconds: float = 60.0
    max_bytes: int = TELEGRAM_MAX_DOWNLOAD_BYTES


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}"


class VoiceService:
    def __init__(
        self,
        transcriber: Transcriber | None,
        *,
        limits: VoiceLimits | None = None,
        concurrency: int = 1,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.transcriber = transcriber
        self.limits = limits or VoiceLimits()
        self.concurrency = concurrency
        self._semaphore = asyncio.Semaphore(concurrency)
        self.running = 0
        self.waiting = 0
        self.peak_running = 0

    @property
    def configured(self) -> bool:
        return self.transcriber is not None

    def check(self, *, duration_s: float | None = None, size_bytes: int | None = None) -> None:
        """Refuse early, from what Telegram reports, before downloading: not configured, too long, too big."""
        if self.transcriber is None:
            raise VoiceNotConfigured()
        if duration_s is not None and duration_s > self.limits.max_seconds:
            raise VoiceTooLong(seconds=math.ceil(duration_s), max=math.floor(self.limits.max_seconds))
        if size_bytes is not None and size_bytes > self.limits.max_bytes:
            raise VoiceTooBig(size_mb=_mb(size_bytes), max_mb=_mb(self.limits.max_bytes))

    async def load(self) -> float:
        """Load the model now (at start-up, say) instead of on the first message; seconds it took."""
        if self.transcriber is None:
            raise VoiceNotConfigured()
        return await self.transcriber.load()

    async def transcribe(
        self,
        audio: AudioSource,
        *,
        language: str | None = None,
        duration_s: float | None = None,
    ) -> Transcript:
        """The text of a voice message. `duration_s` is the length Telegram reported, if any.

        Raises `VoiceNotConfigured`, `VoiceTooLong`, `VoiceTooBig` (checked before any work and, for the
        length, again on the decoded audio), `VoiceUnreadable`, `VoiceEmpty` (nothing was heard).
        """
        self.check(duration_s=duration_s, size_bytes=source_size(audio))
        transcriber = self.transcriber
        assert transcriber is not None
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        self.peak_running = max(self.peak_running, self.running)
        job = asyncio.ensure_future(
            transcriber.transcribe(audio, language=language, max_seconds=self.limits.max_seconds)
        )
        job.add_done_callback(self._release)
        transcript = await asyncio.shield(job)
        if not transcript.text.strip():
            raise VoiceEmpty()
        return transcript

    def _release(self, job: asyncio.Future[Transcript]) -> None:
        self.running -= 1
        self._semaphore.release()
        if not job.cancelled():
            job.exception()  # retrieved here, so an abandoned job's error is not reported as unhandled

    def close(self) -> None:
        if self.transcriber is not None:
            self.transcriber.close()
