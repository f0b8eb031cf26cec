"""Voice benchmark: ASR accuracy and speed per engine, response latency, and how many simultaneous calls one machine
holds.

    .venv/bin/python bench/voice.py [asr] [latency] [capacity]    (all three when none is named)
        asr:      WER and real-time factor per registered ASR engine on ../shared/audio/real, at 16 kHz and after
                  the 8 kHz mu-law phone line; and the WER once the agency's misheard words are put right as the
                  gateway does it (ASR__KEY_WORD_REPAIR)
        latency:  --calls N simulated calls one after another through the real stack (gateway, Rasa, actions,
                  TTS): end of caller speech -> first reply audio, p50/p95, with and without the end-of-speech silence;
                  --rows FILE keeps every turn's figures, to compare two settings turn by turn
        capacity: --levels 1,5,10,15,20 simultaneous calls (real time, two caller turns each); p95 latency per level
                  and the most calls held with p95 under --target-ms (end-of-speech silence excluded)

Callers are synthesised by Piper (a slower voice than the assistant's), on a clean digital line unless
--line-noise KIND:SNR (pink, street, babble or hiss at SNR dB under their voice, e.g. pink:15) puts noise under all
they send, speech and silence, as from a noisy place. The softphones run in this process, on the same two cores as
the product: the machine under test also carries the calls' far ends.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and this file is named like the product's `voice`
# package: drop the folder so `import voice` finds the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import dataclasses
import itertools
import json
import os
import time

import numpy as np

from foundation.language import load_language
from foundation.settings import Settings, load_settings
from helpline.loadgen import caller_audio, noise_for_lines, place_calls, summarise
from helpline.machine import cpu_name
from helpline.services import Stack
from nlu.asr_context import AsrVocabulary
from voice.asr import ASR_ENGINES, RecognitionContext, create_asr
from voice.asr.registry import load_builtin_engines
from voice.codecs import ASR_RATE, TELEPHONE_RATE, read_audio, telephone_round_trip
from voice.recordings import real_recordings
from voice.wer import corpus_wer

CONFIRM_PROMPT = load_language("en").prompts.confirm
CONFIRM_QUESTION = CONFIRM_PROMPT.format(text="when is the child allowance paid")


def bench_asr(settings: Settings, engines: list[str], repeat: int, bias: bool = False) -> None:
    recordings = real_recordings()
    refs = {stem: text for stem, (_, text) in recordings.items()}
    files = {stem: path for stem, (path, _) in recordings.items()}
    audio_by_rate = {}
    for rate in (ASR_RATE, TELEPHONE_RATE):
        clips = {stem: read_audio(path, rate) for stem, path in files.items()}
        if rate == TELEPHONE_RATE:
            clips = {stem: telephone_round_trip(a, rate) for stem, a in clips.items()}
        audio_by_rate[rate] = clips
    total_s = sum(len(a) for a in audio_by_rate[ASR_RATE].values()) / ASR_RATE
    contexts: dict[str, RecognitionContext | None] = {"none": None}
    vocabulary = AsrVocabulary.load(settings.asr.language)  # also what the gateway puts right (ASR__KEY_WORD_REPAIR)
    if bias:  # the domain prompt the gateway gives every turn, and with a question after it
        asking = dataclasses.replace(vocabulary, with_question=True)  # measured whatever the data file decides
        contexts |= {"domain": vocabulary.context(), "domain+question": asking.context(CONFIRM_QUESTION)}
    print(f"\n== ASR: {len(files)} real recordings, {total_s:.0f} s ({cpu_name()})")
    print(
        f"{'engine':<28}{'condition':<20}{'biasing':<17}{'WER':>7}{'RTF (CPU)':>11}{'CPU s/utt':>11}"
        f"{'WER, key words put right':>26}"
    )
    for name in engines:
        engine_settings = Settings(asr=settings.asr.model_copy(update={"engine": name})).asr
        label = f"{name} ({settings.asr.compute_type})" if name == "faster_whisper" else name
        if name == "vosk" and engine_settings.model_path is None:
            from voice.asr.vosk import packaged_korean_model

            # No English Vosk model is packaged: the Korean one gives the engine's speed; its WER here means nothing.
            engine_settings = engine_settings.model_copy(update={"model_path": packaged_korean_model()})
            label = "vosk (Korean model: RTF only)"
        try:
            engine = create_asr(engine_settings)
        except Exception as e:  # an engine whose model is not installed is reported, not fatal
            print(f"{name:<28}not available: {e}")
            continue
        biasings = contexts if engine.capabilities.contextual_biasing else {"none": None}
        for (condition, rate), (biasing, context) in itertools.product(
            (("16 kHz", ASR_RATE), ("8 kHz mu-law line", TELEPHONE_RATE)), biasings.items()
        ):
            pairs, repaired, cpu, seconds = [], [], 0.0, 0.0
            for stem, audio in audio_by_rate[rate].items():
                best = float("inf")
                for _ in range(repeat):
                    t0 = time.process_time()
                    transcript = engine.transcribe(audio, rate, context)
                    best = min(best, time.process_time() - t0)
                pairs.append((refs[stem], transcript.text))
                repaired.append((refs[stem], vocabulary.repair(transcript)[0].text))
                cpu += best
                seconds += len(audio) / rate
            print(
                f"{label:<28}{condition:<20}{biasing:<17}{corpus_wer(pairs):>7.3f}{cpu / seconds:>11.3f}"
                f"{cpu / len(pairs):>11.2f}{corpus_wer(repaired):>26.3f}"
            )


def bench_latency(
    settings: Settings,
    callers: list[tuple[np.ndarray, ...]],
    calls: int,
    rows: Path | None = None,
    noise: np.ndarray | None = None,
) -> None:
    silence = settings.vad.end_silence_ms
    results = asyncio.run(place_calls(settings, callers, calls, 1, noise))
    if rows is not None:  # every turn, to compare two settings turn by turn (the tail is a few turns)
        turns = [{"call": i, "turn": j} | t for i, r in enumerate(results) for j, t in enumerate(r["turns"])]
        rows.write_text(json.dumps(turns, indent=1))
    s = summarise(results, silence)
    print(f"\n== Response latency: {s['calls']} calls one after another, {s['turns']} caller turns")
    print(
        f"end of caller speech -> first reply audio, without the {silence} ms end-of-speech silence: "
        f"p50 {s['p50']:.0f} ms, p95 {s['p95']:.0f} ms, p99 {s['p99']:.0f} ms "
        f"(with it: p95 {s['p95_with_silence']:.0f} ms)"
    )
    print(
        f"felt by the caller (endpointing included, engine {settings.end_of_turn.engine}): p50 {s['felt_p50']:.0f} ms, "
        f"p95 {s['felt_p95']:.0f} ms, p99 {s['felt_p99']:.0f} ms"
    )
    print(
        f"server, after the endpoint: ASR {s['asr_ms']:.0f} ms, NLU {s['nlu_ms']:.0f} ms, "
        f"TTS {s['tts_ms']:.0f} ms (means)"
    )
    print(
        f"unanswered turns {s['unanswered_turns']}, dropped calls {s['dropped']}, turns held with "
        f'"One moment, please." {s["held_turns"]}'
    )
    print(
        f"speculative recognitions: {s['speculated']} started, {s['speculation_used']} used; "
        f"{s['speculation_declined']} pauses not speculated on (every recogniser busy)"
    )


def bench_capacity(
    settings: Settings,
    callers: list[tuple[np.ndarray, ...]],
    levels: list[int],
    target_ms: float,
    noise: np.ndarray | None = None,
) -> None:
    silence = settings.vad.end_silence_ms
    print(f"\n== Capacity on {cpu_name()}: simultaneous calls, p95 target {target_ms:.0f} ms (end-of-speech silence")
    print("   excluded); the felt columns: the gap the caller feels, end of speech -> first reply audio, endpointing")
    print(
        f"   included (end-of-turn engine {settings.end_of_turn.engine}); holding: turns that heard the holding phrase"
    )
    print(
        f"{'calls':>6}{'peak':>6}{'turns':>7}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'felt p50':>9}{'p95':>6}{'p99':>6}"
        f"{'ASR ms':>8}{'dropped':>9}{'unanswered':>12}{'holding':>9}"
    )
    held = 0
    for level in levels:
        s = summarise(asyncio.run(place_calls(settings, callers, level, level, noise)), silence)
        ok = s["p95"] <= target_ms and s["dropped"] == 0 and s["unanswered_turns"] == 0
        held = level if ok else held
        print(
            f"{level:>6}{s['peak']:>6}{s['turns']:>7}{s['p50']:>8.0f}{s['p95']:>8.0f}{s['p99']:>8.0f}"
            f"{s['felt_p50']:>9.0f}{s['felt_p95']:>6.0f}{s['felt_p99']:>6.0f}{s['asr_ms']:>8.0f}"
            f"{s['dropped']:>9}{s['unanswered_turns']:>12}{s['held_turns']:>9}{'' if ok else '  over target'}"
        )
    print(f"calls held with p95 <= {target_ms:.0f} ms: {held} (on {len(os.sched_getaffinity(0))} cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", help="asr, latency, capacity (default: all)")
    parser.add_argument("--engines", default=",".join(sorted(ASR_ENGINES)) or "faster_whisper")
    parser.add_argument("--repeat", type=int, default=2, help="ASR timing repetitions per file (best kept)")
    parser.add_argument("--calls", type=int, default=20, help="calls for the latency part")
    parser.add_argument("--levels", default="1,5,10,15,20", help="simultaneous calls to try, ascending")
    parser.add_argument("--target-ms", type=float, default=1000.0)
    parser.add_argument("--bias", action="store_true", help="asr: also with the domain prompt (nlu/asr_context.yml)")
    parser.add_argument("--rows", type=Path, help="latency: write every turn (transcript, latency, server times) here")
    parser.add_argument("--line-noise", help="latency, capacity: KIND:SNR (pink, street, babble, hiss) under callers")
    args = parser.parse_args()
    parts = args.parts or ["asr", "latency", "capacity"]
    unknown = set(parts) - {"asr", "latency", "capacity"}
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    settings = load_settings()
    print(
        f"settings: ASR {settings.asr.engine} {settings.asr.compute_type} beam {settings.asr.beam_size} "
        f"threads {settings.asr.cpu_threads} (alone {settings.asr.cpu_threads_alone}) workers {settings.asr.workers}; "
        f"end-of-speech silence "
        f"{settings.vad.end_silence_ms} ms, speculative ASR after {settings.vad.speculate_after_ms} ms"
    )
    if "asr" in parts:
        bench_asr(settings, [e for e in args.engines.split(",") if e], args.repeat, args.bias)
    if "latency" in parts or "capacity" in parts:
        callers = caller_audio()
        try:
            noise = noise_for_lines(args.line_noise, callers) if args.line_noise else None
        except ValueError as e:
            parser.error(str(e))
        if noise is not None:
            kind, _, snr = args.line_noise.partition(":")
            print(f"callers' lines: {kind} noise {snr} dB under their voice, under their speech and silence")
        with Stack(settings):
            if "latency" in parts:
                bench_latency(settings, callers, args.calls, args.rows, noise)
            if "capacity" in parts:
                levels = [int(x) for x in args.levels.split(",")]
                bench_capacity(settings, callers, levels, args.target_ms, noise)


if __name__ == "__main__":
    load_builtin_engines()  # the registry lists every engine before the argument defaults are read
    main()
