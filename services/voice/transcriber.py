"""Speech to text behind one interface, `Transcriber`, with two engines running on CPU threads.

* `FasterWhisperTranscriber`: faster-whisper (CTranslate2), int8 on CPU, the default.
* `OpenAIWhisperTranscriber`: the reference openai-whisper (PyTorch), an optional install.

Both decode the audio themselves (PyAV), load their model once (lazily, under a lock, on first use or
on `load()`), and run every blocking step in a dedicated thread pool of `workers` threads, so the event
loop keeps serving other chats while a message is transcribed. (openai-whisper's model cannot decode two
things at once, so its inference steps take turns; see `OpenAIWhisperTranscriber`.)
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import importlib.util
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, Protocol, cast, runtime_checkable

from services.voice.audio import SAMPLE_RATE, AudioSource, Samples, decode_audio
from services.voice.errors import VoiceConfigError

__all__ = [
    "DEFAULT_PROMPTS",
    "BlockingTranscriber",
    "FasterWhisperTranscriber",
    "OpenAIWhisperTranscriber",
    "Segment",
    "Transcriber",
    "Transcript",
]

DEFAULT_PROMPTS: Final[Mapping[str, str]] = {
    "en": (
        "Crypto trading bot voice commands. Buy or sell Bitcoin, Ethereum, Solana, XRP or Dogecoin; "
        "check the balance and open positions; analyze a coin's chart; get a signal; set a price alert."
    ),
    "ru": (
        "Голосовые команды крипто-бота. Купить или продать биткоин, эфир, солану; баланс и позиции; "
        "анализ графика; сигнал; ценовой алерт."
    ),
    "es": (
        "Comandos de voz de un bot de trading de criptomonedas. Comprar o vender bitcoin, ethereum, "
        "solana; saldo y posiciones; analizar el gráfico; señal; alerta de precio."
    ),
}
"""Initial prompts that steer the model towards the bot's vocabulary (coin names, commands)."""


@dataclass(frozen=True, slots=True)
class Segment:
    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class Transcript:
    """What was said. `duration_s` is the audio's length; `elapsed_s` the time spent decoding and
    transcribing it (0 when unknown)."""

    text: str
    language: str
    duration_s: float
    segments: tuple[Segment, ...] = ()
    elapsed_s: float = 0.0

    @property
    def real_time_factor(self) -> float:
        """Processing time per second of audio (below 1: faster than real time)."""
        return self.elapsed_s / self.duration_s if self.duration_s > 0 else 0.0


@runtime_checkable
class Transcriber(Protocol):
    """Speech to text. `transcribe` never blocks the event loop."""

    @property
    def engine(self) -> str: ...

    @property
    def model(self) -> str: ...

    async def transcribe(
        self, audio: AudioSource, *, language: str | None = None, max_seconds: float | None = None
    ) -> Transcript:
        """Decode and transcribe `audio` (bytes or a path). Raises `VoiceUnreadable`, `VoiceTooLong`
        (when the decoded audio runs past `max_seconds`) or `VoiceConfigError` (the model cannot load)."""
        ...

    async def load(self) -> float:
        """Load the model now if it is not loaded yet; returns the seconds that took (0 if it was)."""
        ...

    def close(self) -> None: ...


def _engine_missing(engine: str, module: str, extra: str) -> VoiceConfigError:
    return VoiceConfigError(
        f"VOICE_ENGINE={engine} needs the Python package '{module}', which is not installed ({extra})"
    )


def default_cpu_threads(workers: int) -> int:
    """Threads per transcription so that `workers` transcriptions together use every core once."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


class BlockingTranscriber(ABC):
    """A transcriber whose engine blocks: decoding, loading and inference run in its own thread pool."""

    engine_name: str = ""

    def __init__(self, model: str, *, workers: int = 1, prompts: Mapping[str, str] | None = None) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._model_ref = model
        self.workers = workers
        self.prompts = DEFAULT_PROMPTS if prompts is None else prompts
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix=f"voice-{self.engine_name}"
        )
        self._lock = threading.Lock()
        self._handle: Any = None
        self.load_seconds: float | None = None

    @property
    def engine(self) -> str:
        return self.engine_name

    @property
    def model(self) -> str:
        return self._model_ref

    @property
    def loaded(self) -> bool:
        return self._handle is not None

    def _ensure_loaded(self) -> tuple[Any, float]:
        handle = self._handle
        if handle is not None:
            return handle, 0.0
        with self._lock:
            if self._handle is None:
                started = time.perf_counter()
                try:
                    self._handle = self._load_model()
                except VoiceConfigError:
                    raise
                except Exception as exc:
                    raise VoiceConfigError(
                        f"{self.engine_name} could not load the model {self._model_ref!r}: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                self.load_seconds = time.perf_counter() - started
                return self._handle, self.load_seconds
            return self._handle, 0.0

    def prompt_for(self, language: str | None) -> str | None:
        """The initial prompt for a known language (none when the model is to detect the language)."""
        return self.prompts.get(language) if language else None

    def transcribe_blocking(
        self, audio: AudioSource, *, language: str | None = None, max_seconds: float | None = None
    ) -> Transcript:
        """The whole job on the calling thread: decode, check the length, load once, transcribe."""
        started = time.perf_counter()
        samples = decode_audio(audio, max_seconds=max_seconds, rate=SAMPLE_RATE)
        handle, _ = self._ensure_loaded()
        text, detected, segments = self._run(handle, samples, language)
        return Transcript(
            text=text,
            language=detected,
            duration_s=samples.shape[0] / SAMPLE_RATE,
            segments=segments,
            elapsed_s=time.perf_counter() - started,
        )

    async def transcribe(
        self, audio: AudioSource, *, language: str | None = None, max_seconds: float | None = None
    ) -> Transcript:
        loop = asyncio.get_running_loop()
        job = functools.partial(self.transcribe_blocking, audio, language=language, max_seconds=max_seconds)
        return await loop.run_in_executor(self._executor, job)

    def load_blocking(self) -> float:
        """Load the model on the calling thread if it is not loaded yet; seconds it took (0 if it was)."""
        return self._ensure_loaded()[1]

    async def load(self) -> float:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.load_blocking)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    @abstractmethod
    def _load_model(self) -> Any:
        """Build the engine's model object (runs once, on a worker thread)."""

    @abstractmethod
    def _run(
        self, handle: Any, samples: Samples, language: str | None
    ) -> tuple[str, str, tuple[Segment, ...]]:
        """(text, language, segments) for 16 kHz mono samples."""


# ----------------------------------------------------------------------------------------- faster-whisper


class _FWSegment(Protocol):
    start: float
    end: float
    text: str


class _FWInfo(Protocol):
    language: str
    duration: float


class _FWModel(Protocol):
    def transcribe(self, audio: Samples, **options: Any) -> tuple[Iterable[_FWSegment], _FWInfo]: ...


class FasterWhisperTranscriber(BlockingTranscriber):
    """faster-whisper: `model` is a CTranslate2 model directory or a model name (`tiny.en`, `base`...),
    which faster-whisper downloads from the Hugging Face Hub unless `local_files_only`."""

    engine_name = "faster-whisper"

    def __init__(
        self,
        model: str,
        *,
        workers: int = 1,
        cpu_threads: int = 0,
        compute_type: str = "int8",
        beam_size: int = 1,
        vad: bool = False,
        download_root: str | None = None,
        local_files_only: bool = False,
        prompts: Mapping[str, str] | None = None,
    ) -> None:
        if importlib.util.find_spec("faster_whisper") is None:
            raise _engine_missing(self.engine_name, "faster-whisper", "pip install 'cryptouniverse[voice]'")
        super().__init__(model, workers=workers, prompts=prompts)
        self.cpu_threads = cpu_threads or default_cpu_threads(workers)
        self.compute_type = compute_type
        self.beam_size = beam_size
        self.vad = vad
        self.download_root = download_root
        self.local_files_only = local_files_only
        self.multilingual: bool | None = None

    def _load_model(self) -> _FWModel:
        from faster_whisper import WhisperModel

        model = WhisperModel(
            self._model_ref,
            device="cpu",
            compute_type=self.compute_type,
            cpu_threads=self.cpu_threads,
            num_workers=self.workers,
            download_root=self.download_root,
            local_files_only=self.local_files_only,
        )
        self.multilingual = bool(model.model.is_multilingual)
        return cast(_FWModel, model)

    def _run(
        self, handle: Any, samples: Samples, language: str | None
    ) -> tuple[str, str, tuple[Segment, ...]]:
        model = cast(_FWModel, handle)
        spoken = language if self.multilingual else "en"
        pieces, info = model.transcribe(
            samples,
            language=spoken,
            beam_size=self.beam_size,
            best_of=self.beam_size,
            initial_prompt=self.prompt_for(spoken),
            condition_on_previous_text=False,
            vad_filter=self.vad,
        )
        segments = tuple(Segment(float(s.start), float(s.end), s.text.strip()) for s in pieces)
        text = " ".join(s.text for s in segments if s.text).strip()
        return text, str(info.language), segments


# ----------------------------------------------------------------------------------------- openai-whisper


class _OWModel(Protocol):
    dims: Any

    def transcribe(self, audio: Samples, **options: Any) -> Mapping[str, Any]: ...


class OpenAIWhisperTranscriber(BlockingTranscriber):
    """openai-whisper (PyTorch, float32 on CPU): `model` is a local `.pt` checkpoint (a dict of `dims` and
    `model_state_dict`, as openai-whisper saves them; `services.voice.convert` makes one from a
    faster-whisper model) or one of openai-whisper's model names (`tiny.en`, `base`...), downloaded to
    `download_root` on first use unless `local_files_only`.

    openai-whisper's decoder installs its key/value-cache hooks on the model itself, so two decodings on one
    model would write into each other's caches: inference is serialised on the one shared model (audio is
    still decoded on `workers` threads), and PyTorch gets `cpu_threads` threads (default: every core) for
    it. `torch.set_num_threads` is process-wide. `max_tokens` caps the tokens decoded per 30 s window
    (default: half the model's text context, openai-whisper's own default).
    """

    engine_name = "openai-whisper"

    def __init__(
        self,
        model: str,
        *,
        workers: int = 1,
        cpu_threads: int = 0,
        beam_size: int = 1,
        max_tokens: int | None = None,
        download_root: str | None = None,
        local_files_only: bool = False,
        prompts: Mapping[str, str] | None = None,
    ) -> None:
        for module, package in (("torch", "torch"), ("whisper", "openai-whisper")):
            if importlib.util.find_spec(module) is None:
                raise _engine_missing(
                    self.engine_name,
                    package,
                    "python3 dev.py setup --openai-whisper; or a CPU build of torch, then "
                    "pip install 'cryptouniverse[openai-whisper]'",
                )
        if os.path.isdir(os.path.expanduser(model)):
            raise VoiceConfigError(
                f"VOICE_MODEL={model!r} is a directory; openai-whisper needs a .pt checkpoint file "
                "(python -m services.voice.convert turns a faster-whisper model directory into one)"
            )
        if max_tokens is not None and max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        super().__init__(model, workers=workers, prompts=prompts)
        self.cpu_threads = cpu_threads or default_cpu_threads(1)
        self.beam_size = beam_size
        self.max_tokens = max_tokens
        self.download_root = download_root
        self.local_files_only = local_files_only
        self.multilingual: bool | None = None
        self.dims: Any = None
        self._inference = threading.Lock()

    def _load_model(self) -> _OWModel:
        torch = importlib.import_module("torch")
        whisper = importlib.import_module("whisper")
        if not hasattr(whisper, "load_model"):
            raise VoiceConfigError(
                f"the installed 'whisper' module ({whisper.__file__}) is not openai-whisper"
            )
        torch.set_num_threads(self.cpu_threads)
        reference = os.path.expanduser(self._model_ref)
        if os.path.isfile(reference):
            model = self._load_checkpoint(torch, whisper, reference)
        elif reference in whisper.available_models():
            if self.local_files_only:
                root = self.download_root or os.path.join(
                    os.getenv("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "whisper"
                )
                cached = os.path.join(root, os.path.basename(whisper._MODELS[reference]))
                if not os.path.isfile(cached):
                    raise VoiceConfigError(
                        f"openai-whisper model {reference!r} is not in {root} and downloads are off "
                        "(VOICE_LOCAL_FILES_ONLY)"
                    )
            model = whisper.load_model(reference, device="cpu", download_root=self.download_root)
        else:
            raise VoiceConfigError(
                f"VOICE_MODEL={self._model_ref!r} is neither a .pt checkpoint file nor an openai-whisper "
                f"model name ({', '.join(whisper.available_models())})"
            )
        model = model.float().eval()  # float32: openai's checkpoints are float16, which the CPU runs badly
        self.dims = model.dims
        self.multilingual = bool(model.is_multilingual)
        return cast(_OWModel, model)

    def _load_checkpoint(self, torch: Any, whisper: Any, path: str) -> Any:
        """What `whisper.load_model` does for a file, with errors that say what is wrong with it."""
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise VoiceConfigError(
                f"openai-whisper could not read the checkpoint {path!r} ({type(exc).__name__}: {exc})"
            ) from exc
        if not isinstance(checkpoint, Mapping) or not {"dims", "model_state_dict"} <= checkpoint.keys():
            raise VoiceConfigError(
                f"{path!r} is not an openai-whisper checkpoint: it needs 'dims' and 'model_state_dict'"
            )
        try:
            dims = whisper.model.ModelDimensions(**checkpoint["dims"])
            model = whisper.model.Whisper(dims)
            model.load_state_dict(checkpoint["model_state_dict"])
        except (TypeError, RuntimeError) as exc:
            raise VoiceConfigError(
                f"the openai-whisper checkpoint {path!r} does not fit its dimensions: {exc}"
            ) from exc
        return model

    def _run(
        self, handle: Any, samples: Samples, language: str | None
    ) -> tuple[str, str, tuple[Segment, ...]]:
        model = cast(_OWModel, handle)
        spoken = language if self.multilingual else "en"
        options: dict[str, Any] = {
            "language": spoken,
            "task": "transcribe",
            "fp16": False,
            "temperature": 0.0,
            "condition_on_previous_text": False,
            "initial_prompt": self.prompt_for(spoken),
            "verbose": None,
        }
        if self.beam_size > 1:
            options["beam_size"] = self.beam_size
        if self.max_tokens is not None:
            options["sample_len"] = self.max_tokens
        with self._inference:
            result = model.transcribe(samples, **options)
        raw_segments = cast(list[Mapping[str, Any]], result.get("segments") or [])
        segments = tuple(
            Segment(float(s.get("start", 0.0)), float(s.get("end", 0.0)), str(s.get("text", "")).strip())
            for s in raw_segments
        )
        text = " ".join(s.text for s in segments if s.text).strip() or str(result.get("text", "")).strip()
        return text, str(result.get("language") or spoken or "en"), segments
