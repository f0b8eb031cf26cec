"""The openai-whisper engine on a checkpoint made from the packaged CTranslate2 model: lossless conversion, and the
same transcripts as faster-whisper (float32) on the real recordings."""

import numpy as np
import pytest

from foundation.settings import AsrSettings, Settings
from voice.asr import create_asr
from voice.asr.packaged_models import packaged_tiny_en
from voice.asr.whisper_checkpoint import CheckpointError, openai_state_dict, read_ct2_model
from voice.codecs import ASR_RATE, TELEPHONE_RATE, read_audio, telephone_round_trip

pytestmark = pytest.mark.models


def test_checkpoint_holds_the_packaged_weights_unchanged():
    import torch

    settings = Settings()
    ct2 = read_ct2_model(packaged_tiny_en() / "model.bin")
    checkpoint = torch.load(settings.models_dir / "openai-whisper-tiny.en.pt", map_location="cpu", weights_only=True)
    state = checkpoint["model_state_dict"]
    # Fused projections were split, not changed: concatenated again they are the stored bytes.
    fused = ct2["encoder/layer_2/self_attention/linear_0/weight"]
    split = [state[f"encoder.blocks.2.attn.{p}.weight"].numpy() for p in ("query", "key", "value")]
    assert np.array_equal(np.concatenate(split), fused) and split[0].dtype == np.float16
    cross = ct2["decoder/layer_1/attention/linear_1/weight"]
    kv = [state[f"decoder.blocks.1.cross_attn.{p}.weight"].numpy() for p in ("key", "value")]
    assert np.array_equal(np.concatenate(kv), cross)
    assert np.array_equal(state["decoder.token_embedding.weight"].numpy(), ct2["decoder/embeddings/weight"])
    # Every stored weight has its place (the output projection is the token embedding: tied, stored once).
    stored = sum(t.size for n, t in ct2.items() if t.ndim and n != "decoder/projection/weight")
    key_biases = 12 * 384  # 4 encoder + 4 decoder self-attention + 4 cross-attention, all zero, not in openai-whisper
    assert sum(t.numel() for t in state.values()) == stored - key_biases


def test_a_model_whose_key_bias_is_not_zero_is_refused():
    ct2 = dict(read_ct2_model(packaged_tiny_en() / "model.bin"))
    bias = ct2["encoder/layer_0/self_attention/linear_0/bias"].copy()
    bias[400] = 0.5  # inside the key third
    ct2["encoder/layer_0/self_attention/linear_0/bias"] = bias
    with pytest.raises(CheckpointError, match="key bias"):
        openai_state_dict(ct2)


def test_transcripts_match_faster_whisper_float32_on_the_real_recordings(real_recordings):
    reference_engine = create_asr(AsrSettings(compute_type="float32", window_s=30))  # Whisper as published
    engine = create_asr(Settings(asr={"engine": "openai_whisper"}).asr)  # type: ignore[arg-type]
    for stem, (path, _) in sorted(real_recordings.items()):
        for rate in (ASR_RATE, TELEPHONE_RATE):
            audio = read_audio(path, rate)
            if rate == TELEPHONE_RATE:
                audio = telephone_round_trip(audio, rate)
            expected = reference_engine.transcribe(audio, rate)
            got = engine.transcribe(audio, rate)
            assert got.text == expected.text, (stem, rate)
            assert got.confidence == pytest.approx(expected.confidence, abs=0.02)


def test_missing_checkpoint_says_how_to_make_it(tmp_path):
    from voice.asr import AsrError

    with pytest.raises(AsrError, match="helpline models"):
        create_asr(AsrSettings(engine="openai_whisper", model_path=tmp_path / "none.pt"))
