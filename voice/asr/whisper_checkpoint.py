"""An openai-whisper checkpoint (.pt) made from the packaged CTranslate2 Whisper model, losslessly.

CTranslate2's ``model.bin`` (format version 6) is a header and a list of named tensors: for each, the name, its shape,
a data-type code and the raw little-endian bytes, then a list of aliases. The Whisper weights are float16. Names map
one to one onto openai-whisper's modules, except that CTranslate2 fuses attention projections: self-attention stores
query, key and value as one matrix (``linear_0``), cross-attention stores key and value together (``linear_1``). They
are split back here; the key projection has no bias in openai-whisper, so the fused key bias must be all zeros, and
it is checked. Every output tensor is the input tensor's float16 values, unchanged.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


class CheckpointError(RuntimeError):
    """The CTranslate2 model cannot be read or does not map onto openai-whisper."""


def read_ct2_model(path: Path) -> dict[str, np.ndarray]:
    """Every named tensor of a CTranslate2 ``model.bin`` (aliases resolved), as numpy arrays."""
    data = path.read_bytes()
    offset = 0

    def take(fmt: str) -> Any:
        nonlocal offset
        values = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return values[0]

    def text() -> str:
        nonlocal offset
        length = take("<H")
        raw = data[offset : offset + length]
        offset += length
        return raw.rstrip(b"\0").decode("utf-8")

    version = take("<I")
    if version != 6:
        raise CheckpointError(f"{path}: CTranslate2 model format {version}, this reader knows format 6")
    spec = text()
    if spec != "WhisperSpec":
        raise CheckpointError(f"{path}: a {spec} model, not Whisper")
    take("<I")  # spec revision
    tensors: dict[str, np.ndarray] = {}
    for _ in range(take("<I")):
        name = text()
        shape = tuple(take("<I") for _ in range(take("<B")))
        code = take("<B")
        size = take("<I")
        if code not in CT2_DTYPES:
            raise CheckpointError(f"{path}: tensor {name} has data type {code}, which is not supported")
        tensors[name] = np.frombuffer(data, dtype=CT2_DTYPES[code], count=size // np.dtype(CT2_DTYPES[code]).itemsize,
                                      offset=offset).reshape(shape)  # fmt: skip
        offset += size
    for _ in range(take("<I")):
        alias, target = text(), text()
        tensors[alias] = tensors[target]
    if offset != len(data):
        raise CheckpointError(f"{path}: {len(data) - offset} bytes left over after the last tensor")
    return tensors


def _split_rows(matrix: np.ndarray, parts: int) -> list[np.ndarray]:
    if matrix.shape[0] % parts:
        raise CheckpointError(f"cannot split {matrix.shape} into {parts} projections")
    return list(np.split(matrix, parts, axis=0))


def openai_state_dict(ct2: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """openai-whisper's state dict (float16 numpy) and model dimensions from CTranslate2 tensors."""
    out: dict[str, np.ndarray] = {}
    used: set[str] = set()

    def get(name: str) -> np.ndarray:
        used.add(name)
        return ct2[name]

    def layer_norm(src: str, dst: str) -> None:
        out[f"{dst}.weight"], out[f"{dst}.bias"] = get(f"{src}/gamma"), get(f"{src}/beta")

    def linear(src: str, dst: str, bias: bool = True) -> None:
        out[f"{dst}.weight"] = get(f"{src}/weight")
        if bias:
            out[f"{dst}.bias"] = get(f"{src}/bias")

    def key_without_bias(fused_bias: np.ndarray, where: str) -> None:
        if np.any(fused_bias != 0):
            raise CheckpointError(f"{where}: key bias is not zero; openai-whisper has no key bias")

    def self_attention(src: str, dst: str) -> None:
        q, k, v = _split_rows(get(f"{src}/linear_0/weight"), 3)
        qb, kb, vb = _split_rows(get(f"{src}/linear_0/bias"), 3)
        key_without_bias(kb, src)
        out.update({f"{dst}.query.weight": q, f"{dst}.query.bias": qb, f"{dst}.key.weight": k})
        out.update({f"{dst}.value.weight": v, f"{dst}.value.bias": vb})
        linear(f"{src}/linear_1", f"{dst}.out")

    def cross_attention(src: str, dst: str) -> None:
        linear(f"{src}/linear_0", f"{dst}.query")
        k, v = _split_rows(get(f"{src}/linear_1/weight"), 2)
        kb, vb = _split_rows(get(f"{src}/linear_1/bias"), 2)
        key_without_bias(kb, src)
        out.update({f"{dst}.key.weight": k, f"{dst}.value.weight": v, f"{dst}.value.bias": vb})
        linear(f"{src}/linear_2", f"{dst}.out")

    def ffn(src: str, dst: str) -> None:
        layer_norm(f"{src}/layer_norm", f"{dst}.mlp_ln")
        linear(f"{src}/linear_0", f"{dst}.mlp.0")
        linear(f"{src}/linear_1", f"{dst}.mlp.2")

    def layers(stack: str) -> int:
        return len({m.group(1) for n in ct2 if (m := re.match(rf"{stack}/layer_(\d+)/", n))})

    n_audio_layer, n_text_layer = layers("encoder"), layers("decoder")
    out["encoder.positional_embedding"] = get("encoder/position_encodings/encodings")
    for conv in ("conv1", "conv2"):
        linear(f"encoder/{conv}", f"encoder.{conv}")
    for i in range(n_audio_layer):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        self_attention(f"{src}/self_attention", f"{dst}.attn")
        layer_norm(f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
        ffn(f"{src}/ffn", dst)
    layer_norm("encoder/layer_norm", "encoder.ln_post")
    out["decoder.positional_embedding"] = get("decoder/position_encodings/encodings")
    out["decoder.token_embedding.weight"] = get("decoder/embeddings/weight")
    for i in range(n_text_layer):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        self_attention(f"{src}/self_attention", f"{dst}.attn")
        layer_norm(f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
        cross_attention(f"{src}/attention", f"{dst}.cross_attn")
        layer_norm(f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln")
        ffn(f"{src}/ffn", dst)
    layer_norm("decoder/layer_norm", "decoder.ln")
    # The output projection is the token embedding in both (tied); the rest are settings, not weights.
    if not np.array_equal(ct2["decoder/projection/weight"], ct2["decoder/embeddings/weight"]):
        raise CheckpointError("the output projection is not tied to the token embedding")
    unused = sorted(n for n, t in ct2.items() if n not in used and t.ndim > 0 and n != "decoder/projection/weight")
    if unused:
        raise CheckpointError(f"CTranslate2 weights with no openai-whisper place: {unused[:5]}")
    conv1 = out["encoder.conv1.weight"]
    dims = {
        "n_mels": int(conv1.shape[1]),
        "n_audio_ctx": int(out["encoder.positional_embedding"].shape[0]),
        "n_audio_state": int(conv1.shape[0]),
        "n_audio_head": int(ct2["encoder/num_heads"]),
        "n_audio_layer": n_audio_layer,
        "n_vocab": int(out["decoder.token_embedding.weight"].shape[0]),
        "n_text_ctx": int(out["decoder.positional_embedding"].shape[0]),
        "n_text_state": int(out["decoder.token_embedding.weight"].shape[1]),
        "n_text_head": int(ct2["decoder/num_heads"]),
        "n_text_layer": n_text_layer,
    }
    return out, dims


def alignment_heads_dump(config: dict[str, Any], layers: int, heads: int) -> bytes:
    """The model's alignment heads (config.json) in openai-whisper's ``set_alignment_heads`` encoding."""
    mask = np.zeros((layers, heads), dtype=bool)
    for layer, head in config.get("alignment_heads", []):
        mask[layer, head] = True
    return base64.b85encode(gzip.compress(mask.tobytes()))


def convert(model_dir: Path, out: Path) -> Path:
    """Write the openai-whisper checkpoint for the CTranslate2 Whisper model in ``model_dir``."""
    import torch

    tensors = read_ct2_model(model_dir / "model.bin")
    state, dims = openai_state_dict(tensors)
    config = json.loads((model_dir / "config.json").read_text())
    checkpoint = {
        "dims": dims,
        "model_state_dict": {name: torch.from_numpy(array.copy()) for name, array in state.items()},
        "alignment_heads": alignment_heads_dump(config, dims["n_text_layer"], dims["n_text_head"]),
        "source": {"ctranslate2_model": str(model_dir)},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    torch.save(checkpoint, partial)
    partial.replace(out)
    return out
