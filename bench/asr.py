"""ASR benchmark: WER and real-time factor on ../shared/audio/real, at 16 kHz and after the 8 kHz mu-law phone line.

.venv/bin/python bench/asr.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from helpline.settings import load_settings
from voice.asr import create_asr
from voice.codecs import ASR_RATE, TELEPHONE_RATE, read_audio, telephone_round_trip
from voice.wer import corpus_wer

REAL = Path(__file__).resolve().parents[2] / "shared" / "audio" / "real"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="timing repetitions per file (best is kept)")
    args = parser.parse_args()
    settings = load_settings()
    refs = json.loads((REAL / "refs.json").read_text())
    files = {stem: next(p for p in REAL.glob(f"{stem}.*") if p.suffix in (".wav", ".flac")) for stem in refs}
    started = time.perf_counter()
    engine = create_asr(settings.asr)
    print(
        f"engine {settings.asr.engine} ({settings.asr.compute_type}, beam {settings.asr.beam_size}); "
        f"load {time.perf_counter() - started:.2f} s"
    )
    print(f"{'condition':<22}{'WER':>7}{'RTF (CPU)':>11}{'CPU s/utt':>11}")
    for condition, rate in (("16 kHz", ASR_RATE), ("8 kHz mu-law line", TELEPHONE_RATE)):
        pairs, cpu, audio_s = [], 0.0, 0.0
        for stem, path in files.items():
            audio = read_audio(path, rate)
            if rate == TELEPHONE_RATE:
                audio = telephone_round_trip(audio, rate)
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.process_time()
                transcript = engine.transcribe(audio, rate)
                best = min(best, time.process_time() - t0)
            pairs.append((refs[stem], transcript.text))
            cpu += best
            audio_s += len(audio) / rate
        print(f"{condition:<22}{corpus_wer(pairs):>7.3f}{cpu / audio_s:>11.3f}{cpu / len(files):>11.2f}")


if __name__ == "__main__":
    main()
