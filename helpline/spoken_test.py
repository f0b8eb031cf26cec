"""The held-out turns as a caller would say them: spoken by Piper, sent down the 8 kHz mu-law line, transcribed by
the configured ASR engine. The transcripts become a Rasa NLU test file, so `rasa test nlu` scores what the
assistant really receives on the phone."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from helpline.settings import Settings, TtsSettings
from helpline.trainer import HELDOUT_NLU
from voice.asr import create_asr
from voice.codecs import TELEPHONE_RATE, pcm16_to_float, resample, telephone_round_trip
from voice.tts.piper import PiperTts


def heldout_examples(path: Path = HELDOUT_NLU) -> list[tuple[str, str]]:
    """(intent, text) pairs of a Rasa NLU file without entity annotations."""
    pairs = []
    for block in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
        for line in block["examples"].splitlines():
            text = line.strip().removeprefix("- ").strip()
            if text:
                pairs.append((block["intent"], re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)))
    return pairs


def spoken_heldout(settings: Settings) -> Path:
    voice = PiperTts(TtsSettings(length_scale=1.1))
    asr = create_asr(settings.asr)
    by_intent: dict[str, list[str]] = {}
    pairs = heldout_examples()
    for i, (intent, text) in enumerate(pairs, 1):
        speech = voice.synthesize(text)
        line = telephone_round_trip(
            resample(pcm16_to_float(speech.pcm), speech.sample_rate, TELEPHONE_RATE), TELEPHONE_RATE
        )
        transcript = asr.transcribe(line, TELEPHONE_RATE).text
        # Brackets and parentheses would read as entity annotations in Rasa's format.
        by_intent.setdefault(intent, []).append(re.sub(r"[\[\]()]", " ", transcript).strip() or "silence")
        if i % 25 == 0:
            print(f"spoken and transcribed {i}/{len(pairs)} held-out turns", flush=True)
    out = settings.data_dir / "reports" / "spoken-heldout.yml"
    out.parent.mkdir(parents=True, exist_ok=True)
    blocks = [{"intent": intent, "examples": "".join(f"- {t}\n" for t in texts)} for intent, texts in by_intent.items()]
    out.write_text(yaml.safe_dump({"version": "3.1", "nlu": blocks}, sort_keys=False, allow_unicode=True))
    return out
