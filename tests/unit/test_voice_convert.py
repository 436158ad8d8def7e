"""`services.voice.convert` reads what CTranslate2's own writer wrote (float32, float16, bfloat16, int8,
int16) and maps it onto openai-whisper's parameter names. The model is a tiny random Whisper built with
ctranslate2's `WhisperSpec`, quantized and saved by ctranslate2 itself."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from services.voice import VoiceConfigError
from services.voice.convert import OpenAIWhisperDims, read_ct2_model, to_openai_state

whisper_spec = pytest.importorskip("ctranslate2.specs.whisper_spec")

S, FFN, MELS, AUDIO_CTX, VOCAB, TEXT_CTX = 8, 32, 80, 6, 12, 5
Floats = npt.NDArray[np.float32]


def build_ct2_model(folder: Path, quantization: str | None) -> dict[str, Floats]:
    """Save a tiny CTranslate2 Whisper model in `folder`; its float32 variables before quantization."""
    rng = np.random.default_rng(7)

    def r(*shape: int) -> Floats:
        return rng.standard_normal(shape).astype(np.float32)

    def norm(spec: object) -> None:
        spec.gamma, spec.beta = r(S), r(S)  # type: ignore[attr-defined]

    def linear(spec: object, out: int, into: int) -> None:
        spec.weight, spec.bias = r(out, into), r(out)  # type: ignore[attr-defined]

    spec = whisper_spec.WhisperSpec(1, 2, 1, 2)
    encoder, decoder = spec.encoder, spec.decoder
    encoder.conv1.weight, encoder.conv1.bias = r(S, MELS, 3), r(S)
    encoder.conv2.weight, encoder.conv2.bias = r(S, S, 3), r(S)
    encoder.position_encodings.encodings = r(AUDIO_CTX, S)
    norm(encoder.layer_norm)
    norm(decoder.layer_norm)
    for layer in (encoder.layer[0], decoder.layer[0]):
        norm(layer.self_attention.layer_norm)
        linear(layer.self_attention.linear[0], 3 * S, S)
        linear(layer.self_attention.linear[1], S, S)
        norm(layer.ffn.layer_norm)
        linear(layer.ffn.linear_0, FFN, S)
        linear(layer.ffn.linear_1, S, FFN)
    cross = decoder.layer[0].attention
    norm(cross.layer_norm)
    linear(cross.linear[0], S, S)
    linear(cross.linear[1], 2 * S, S)
    linear(cross.linear[2], S, S)
    decoder.embeddings.weight = r(VOCAB, S)
    decoder.projection.weight = decoder.embeddings.weight
    decoder.position_encodings.encodings = r(TEXT_CTX, S)
    spec.register_vocabulary([f"token{i}" for i in range(VOCAB)])
    original = {k: np.array(v) for k, v in spec.variables().items() if isinstance(v, np.ndarray)}
    spec.validate()
    spec.optimize(quantization=quantization)
    spec.save(str(folder))
    return original


TOLERANCE = {None: 0.0, "float16": 2e-3, "bfloat16": 2e-2, "int8": 0.05, "int16": 2e-3}


# CTranslate2's writer needs PyTorch to write bfloat16 (the reader here needs only numpy); PyTorch comes
# with the optional openai-whisper engine, which CI installs
_BFLOAT16 = pytest.param(
    "bfloat16",
    marks=pytest.mark.skipif(
        importlib.util.find_spec("torch") is None and os.environ.get("CI") != "true",
        reason="writing a bfloat16 model needs PyTorch (python3 dev.py setup --openai-whisper)",
    ),
)


@pytest.mark.parametrize("quantization", [_BFLOAT16 if q == "bfloat16" else q for q in TOLERANCE])
def test_ctranslate2_weights_map_onto_openai_whisper(tmp_path: Path, quantization: str | None) -> None:
    original = build_ct2_model(tmp_path, quantization)
    spec, variables = read_ct2_model(tmp_path / "model.bin")
    assert spec == "WhisperSpec"
    dims, state = to_openai_state(variables)
    assert dims == OpenAIWhisperDims(MELS, AUDIO_CTX, S, 2, 1, VOCAB, TEXT_CTX, S, 2, 1)

    def same(target: str, source: Floats) -> None:
        got = state[target].astype(np.float32)
        assert got.shape == source.shape, target
        scale = max(1.0, float(np.abs(source).max()))
        assert np.abs(got - source).max() <= TOLERANCE[quantization] * scale, target

    same("encoder.conv1.weight", original["encoder/conv1/weight"])
    same("encoder.conv2.bias", original["encoder/conv2/bias"])
    same("encoder.positional_embedding", original["encoder/position_encodings/encodings"])
    for stack in ("encoder", "decoder"):
        fused = original[f"{stack}/layer_0/self_attention/linear_0/weight"]
        fused_bias = original[f"{stack}/layer_0/self_attention/linear_0/bias"]
        for index, name in enumerate(("query", "key", "value")):
            rows = slice(index * S, (index + 1) * S)
            same(f"{stack}.blocks.0.attn.{name}.weight", fused[rows])
            if name != "key":
                same(f"{stack}.blocks.0.attn.{name}.bias", fused_bias[rows])
        assert f"{stack}.blocks.0.attn.key.bias" not in state  # Whisper's key has no bias
        same(f"{stack}.blocks.0.attn.out.weight", original[f"{stack}/layer_0/self_attention/linear_1/weight"])
        same(f"{stack}.blocks.0.attn_ln.weight", original[f"{stack}/layer_0/self_attention/layer_norm/gamma"])
        same(f"{stack}.blocks.0.mlp.0.weight", original[f"{stack}/layer_0/ffn/linear_0/weight"])
        same(f"{stack}.blocks.0.mlp.2.bias", original[f"{stack}/layer_0/ffn/linear_1/bias"])
        same(f"{stack}.blocks.0.mlp_ln.bias", original[f"{stack}/layer_0/ffn/layer_norm/beta"])
    same("encoder.ln_post.weight", original["encoder/layer_norm/gamma"])
    kv = original["decoder/layer_0/attention/linear_1/weight"]
    same("decoder.blocks.0.cross_attn.query.weight", original["decoder/layer_0/attention/linear_0/weight"])
    same("decoder.blocks.0.cross_attn.key.weight", kv[:S])
    same("decoder.blocks.0.cross_attn.value.weight", kv[S:])
    same("decoder.blocks.0.cross_attn.out.bias", original["decoder/layer_0/attention/linear_2/bias"])
    same("decoder.blocks.0.cross_attn_ln.weight", original["decoder/layer_0/attention/layer_norm/gamma"])
    same("decoder.token_embedding.weight", original["decoder/embeddings/weight"])
    same("decoder.positional_embedding", original["decoder/position_encodings/encodings"])
    same("decoder.ln.bias", original["decoder/layer_norm/beta"])

    if importlib.util.find_spec("whisper") is not None and importlib.util.find_spec("torch") is not None:
        import torch
        from whisper.model import ModelDimensions, Whisper

        model = Whisper(ModelDimensions(**{f: getattr(dims, f) for f in OpenAIWhisperDims.__slots__}))
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
        model.load_state_dict(tensors, strict=True)  # every parameter named, none left over


def test_what_is_not_a_ctranslate2_model_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "model.bin"
    junk.write_bytes(b"\x06\x00\x00\x00not a model")
    with pytest.raises(VoiceConfigError, match="is not a CTranslate2 model file"):
        read_ct2_model(junk)
    junk.write_bytes(b"\x63\x00\x00\x00")
    with pytest.raises(VoiceConfigError, match="binary version 99"):
        read_ct2_model(junk)
