"""How the recognisers share the machine: the encoder's cost per window by batch size and threads, and the line's
recognition queue (the product's own, with its recogniser processes) under bursts of turns that end together.

    .venv/bin/python bench/recogniser.py [encoder] [queue]        (both when none is named)
        encoder: CTranslate2's Whisper encoder on the packaged tiny.en model, one 30 s window of a caller's turn,
                 at batch sizes --batches (1,2,4) x intra-op threads --threads (1,2): wall and CPU ms per window
        queue:   --configs WORKERSxTHREADS[+ALONE],... (2x1,1x2,2x2,2x1+2; ALONE: the threads of a recognition with
                 the recognisers to itself, ASR__CPU_THREADS_ALONE; none: never more): bursts of --burst K turns
                 (1,2,4,8) submitted at the same moment, --rounds times each: per turn, the time from submission to
                 its words (mean, p95, the last of each burst), recognitions hurried (ASR__WINDOW_UNDER_LOAD_S), CPU
                 per turn

The turns are the load generator's Piper callers (helpline/loadgen.py) at the phone line's rate, recognised with
the domain prompt the gateway gives every turn. Nothing else should run on the machine meanwhile: the figures are
wall times. Ratios within one run compare; absolute figures hold for the CPU printed with them.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and bench/voice.py is named like the product's
# `voice` package: drop the folder.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import resource
import time

import numpy as np

from foundation.settings import AsrSettings, load_settings
from helpline.loadgen import caller_audio, percentile, sample_process
from helpline.machine import cpu_name
from nlu.asr_context import AsrVocabulary
from voice.asr.base import RecognitionContext
from voice.asr.packaged_models import packaged_tiny_en
from voice.asr.processes import RecogniserProcess
from voice.asr.queue import RecognitionQueue
from voice.codecs import ASR_RATE, TELEPHONE_RATE, resample


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_encoder(turn: np.ndarray, batches: list[int], threads: list[int], repeat: int) -> None:
    import ctranslate2
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.feature_extractor import FeatureExtractor

    features = pad_or_trim(FeatureExtractor()(resample(turn, TELEPHONE_RATE, ASR_RATE)))[np.newaxis]
    print(f"\n== Encoder: one 30 s window, tiny.en int8, {repeat} encodings per row ({cpu_name()})")
    print(f"{'threads':>8}{'batch':>7}{'wall ms/window':>16}{'CPU ms/window':>15}{'windows/s':>11}")
    for n_threads in threads:
        model = ctranslate2.models.Whisper(str(packaged_tiny_en()), device="cpu", compute_type="int8",
                                           intra_threads=n_threads)  # fmt: skip
        for batch in batches:
            view = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.repeat(features, batch, axis=0)))
            model.encode(view)  # the first call allocates
            cpu, wall = _cpu_s(), time.perf_counter()
            for _ in range(repeat):
                model.encode(view)
            wall_ms = (time.perf_counter() - wall) * 1000 / repeat / batch
            cpu_ms = (_cpu_s() - cpu) * 1000 / repeat / batch
            print(f"{n_threads:>8}{batch:>7}{wall_ms:>16.0f}{cpu_ms:>15.0f}{1000 / wall_ms:>11.2f}")


async def _bursts(
    recognitions: RecognitionQueue, turns: list[np.ndarray], context: RecognitionContext, burst: int, rounds: int
) -> tuple[list[float], list[float]]:
    """(every turn's time from submission to its words, the last turn of each burst's), in seconds."""
    each: list[float] = []
    last: list[float] = []
    for r in range(rounds):
        chosen = [turns[(r * burst + i) % len(turns)] for i in range(burst)]
        started = time.perf_counter()

        async def one(audio: np.ndarray, started: float = started) -> float:
            await recognitions.submit(audio, TELEPHONE_RATE, context)
            return time.perf_counter() - started

        times = await asyncio.gather(*(one(a) for a in chosen))
        each += times
        last.append(max(times))
    return each, last


def bench_queue(asr: AsrSettings, turns: list[np.ndarray], configs: list[str], bursts: list[int], rounds: int) -> None:
    context = AsrVocabulary.load(asr.language).context()
    shortest, longest = (f(len(t) for t in turns) / TELEPHONE_RATE for f in (min, max))
    print(f"\n== Recognition queue: bursts of turns ending together, {rounds} bursts per row, {len(turns)} caller "
          f"turns of {shortest:.1f}-{longest:.1f} s, domain prompt, window {asr.window_s:.0f} s, hurried "
          f"{asr.window_under_load_s or '-'} s ({cpu_name()})")  # fmt: skip
    print(f"{'workers x threads':>18}{'burst':>7}{'mean s':>8}{'p95 s':>7}{'last of burst p50 s':>21}"
          f"{'hurried':>9}{'CPU s/turn':>12}")  # fmt: skip
    for config in configs:
        workers, _, threads = config.partition("x")
        threads, _, alone = threads.partition("+")
        update = {"workers": int(workers), "cpu_threads": int(threads), "cpu_threads_alone": int(alone or 0)}
        settings = asr.model_copy(update=update)
        processes = [RecogniserProcess(settings, f"recogniser-{i}") for i in range(settings.workers)]
        for process in processes:
            process.wait_ready()
        recognitions = RecognitionQueue(processes)
        for process in processes:  # the first recognition of a process allocates: not counted
            process.transcribe(turns[0], TELEPHONE_RATE)
        for burst in bursts:
            # The processes' CPU from /proc: RUSAGE_CHILDREN counts a child only once it has ended.
            hurried, cpu = recognitions.hurried, sum(_process_cpu_s(p.pid) for p in processes)
            each, last = asyncio.run(_bursts(recognitions, turns, context, burst, rounds))
            used = sum(_process_cpu_s(p.pid) for p in processes) - cpu
            hurried = recognitions.hurried - hurried
            print(f"{config:>18}{burst:>7}{np.mean(each):>8.2f}{percentile(each, 95):>7.2f}"
                  f"{percentile(last, 50):>21.2f}{hurried:>9}{used / len(each):>12.2f}")  # fmt: skip
        recognitions.close()


def _process_cpu_s(pid: int | None) -> float:
    sample = sample_process(pid) if pid is not None else None
    return sample.cpu_s if sample is not None else 0.0


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", help="encoder, queue (default: both)")
    parser.add_argument("--batches", type=_ints, default=[1, 2, 4])
    parser.add_argument("--threads", type=_ints, default=[1, 2])
    parser.add_argument("--repeat", type=int, default=6, help="encodings per encoder row")
    parser.add_argument("--configs", default="2x1,1x2,2x2,2x1+2",
                        help="recogniser processes x threads each [+ threads of a recognition alone]")  # fmt: skip
    parser.add_argument("--burst", type=_ints, default=[1, 2, 4, 8], help="turns submitted at the same moment")
    parser.add_argument("--rounds", type=int, default=6, help="bursts per row")
    args = parser.parse_args()
    parts = args.parts or ["encoder", "queue"]
    if unknown := set(parts) - {"encoder", "queue"}:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}: encoder, queue")
    turns = [turn for caller in caller_audio() for turn in caller]
    if "encoder" in parts:
        bench_encoder(turns[0], args.batches, args.threads, args.repeat)
    if "queue" in parts:
        bench_queue(load_settings().asr, turns, args.configs.split(","), args.burst, args.rounds)


if __name__ == "__main__":
    main()
