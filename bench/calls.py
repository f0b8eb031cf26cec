"""Call benchmark: N simulated calls (synthesised callers) through the real stack; response latency percentiles.

Latency is measured by the softphone from the caller's last voiced frame to the first reply audio frame; it
includes the configured end-of-speech silence (HELPLINE_VAD__END_SILENCE_MS), which is also printed separately.

    .venv/bin/python bench/calls.py -n 10 [--concurrent 1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

import numpy as np

from helpline.services import Stack
from helpline.settings import TtsSettings, load_settings
from telephony.softphone import Softphone
from voice.codecs import TELEPHONE_RATE, pcm16_to_float, resample
from voice.tts.piper import PiperTts

CALLERS = (
    "When will my parental benefit be paid this month?",
    "What are your opening hours?",
    "I would like to appeal the decision I got on my housing allowance.",
    "How do I report a new bank account?",
    "Can I talk to a person please?",
)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def run_calls(settings, audio: list[np.ndarray], n: int, concurrent: int) -> list[dict]:
    semaphore = asyncio.Semaphore(concurrent)

    async def one(i: int) -> dict:
        async with semaphore:
            return (await Softphone(settings).call([audio[i % len(audio)]])).as_dict()

    return await asyncio.gather(*(one(i) for i in range(n)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=10, help="number of calls")
    parser.add_argument("--concurrent", type=int, default=1, help="calls at the same time")
    args = parser.parse_args()
    settings = load_settings()
    voice = PiperTts(TtsSettings(length_scale=1.1))
    audio = []
    for text in CALLERS:
        speech = voice.synthesize(text)
        audio.append(resample(pcm16_to_float(speech.pcm), speech.sample_rate, TELEPHONE_RATE))
    with Stack(settings):
        results = asyncio.run(run_calls(settings, audio, args.n, args.concurrent))
    turns = [t for r in results for t in r["turns"] if t["transcript"]]
    latency = [t["latency_ms"] for t in turns if t["latency_ms"] is not None]
    server = [t["server"]["response_ms"] for t in turns]
    silence = settings.vad.end_silence_ms
    print(
        f"calls {len(results)} ({args.concurrent} at a time), turns {len(turns)}, "
        f"outcomes {sorted({r['outcome'] for r in results})}"
    )
    print(
        f"end of speech -> first reply audio: p50 {percentile(latency, 50):.0f} ms, "
        f"p95 {percentile(latency, 95):.0f} ms (includes {silence} ms end-of-speech silence)"
    )
    print(
        f"endpoint -> first reply frame sent (server): p50 {percentile(server, 50):.0f} ms, "
        f"p95 {percentile(server, 95):.0f} ms"
    )
    for key in ("asr_ms", "nlu_ms", "tts_ms"):
        values = [t["server"][key] for t in turns]
        print(f"  {key:<7} mean {statistics.mean(values):6.0f} ms  p95 {percentile(values, 95):6.0f} ms")


if __name__ == "__main__":
    main()
