"""Audio bytes or a file -> 16 kHz mono float32 samples, through PyAV (FFmpeg bundled in its wheel).

Telegram voice notes are OGG/Opus; audio files (MP3, M4A, WAV...) and video notes (MP4) decode the same
way, since only the first audio stream is read. Decoding stops as soon as the audio is longer than the
limit, so an oversized file costs little before it is refused.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from services.voice.errors import VoiceConfigError, VoiceTooLong, VoiceUnreadable

SAMPLE_RATE: Final = 16_000
AudioSource = bytes | bytearray | memoryview | str | Path
Samples = npt.NDArray[np.float32]


def _open_source(audio: AudioSource) -> io.BytesIO | str:
    if isinstance(audio, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(audio))
    return str(audio)


def source_size(audio: AudioSource) -> int | None:
    """Size in bytes of in-memory audio or of a file (None when the file cannot be read)."""
    if isinstance(audio, bytes | bytearray | memoryview):
        return len(audio)
    try:
        return Path(audio).stat().st_size
    except OSError:
        return None


def decode_audio(audio: AudioSource, *, max_seconds: float | None = None, rate: int = SAMPLE_RATE) -> Samples:
    """Decode the first audio stream to mono float32 in [-1, 1] at `rate` Hz.

    Raises `VoiceUnreadable` for anything that is not decodable audio, `VoiceTooLong` when the audio runs
    past `max_seconds` (decoding stops there).
    """
    try:
        import av
    except ImportError as exc:  # pragma: no cover - PyAV comes with faster-whisper
        raise VoiceConfigError("PyAV is not installed: pip install 'cryptouniverse[voice]'") from exc

    limit = None if max_seconds is None else math.floor(max_seconds * rate)
    chunks: list[npt.NDArray[np.int16]] = []
    count = 0
    try:
        with av.open(_open_source(audio), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise VoiceUnreadable()
            stream = container.streams.audio[0]
            declared = 0.0
            if stream.duration and stream.time_base:
                declared = float(stream.duration * stream.time_base)
            resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
            frames = container.decode(stream)
            while True:
                try:
                    frame = next(frames)
                except StopIteration:
                    frame = None
                except av.error.InvalidDataError:
                    continue  # a damaged frame; keep what decodes
                for out in resampler.resample(frame):
                    block = out.to_ndarray().reshape(-1).astype(np.int16, copy=False)
                    chunks.append(block)
                    count += block.size
                if limit is not None and count > limit:
                    seconds = max(declared, count / rate)
                    raise VoiceTooLong(seconds=round(seconds), max=_whole(max_seconds))
                if frame is None:
                    break
    except (VoiceUnreadable, VoiceTooLong):
        raise
    except (av.error.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise VoiceUnreadable() from exc
    if count == 0:
        raise VoiceUnreadable()
    return (np.concatenate(chunks).astype(np.float32) / 32768.0).astype(np.float32, copy=False)


def _whole(seconds: float | None) -> int:
    return 0 if seconds is None else math.floor(seconds)
