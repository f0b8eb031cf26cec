"""Load and soak: N simultaneous simulated calls, kept up for a fixed time, through the real stack on loopback.

    .venv/bin/python bench/load.py [--calls 15] [--duration 180] [--window 30]
    .venv/bin/python bench/load.py --soak                         (the same for 30 minutes)
    .venv/bin/python bench/load.py --gateways 2 --rasa-servers 2  (scale-out: needs HELPLINE_DATABASE_URL,
                                                                   HELPLINE_RASA__TRACKER_STORE_URL, __LOCK_STORE_URL)

Each of the N callers places call after call (two turns each: Piper voices, and for two caller kinds of seven a
first turn recorded by a real person, from ../shared/audio/real) until the time is up, so N calls are in progress
all along. Reported: calls placed, completed, dropped; turns and turns lost (said by the gateway but
missing from the call store); response latency p50/p95/p99 (end of speech -> first reply audio, end-of-speech
silence excluded); CPU and memory of every process; and, sampled every 5 s, the gateways' resident memory, open
files, threads and asyncio tasks, with memory growth per hour fitted over the second half of the run.
Bounded: at most --duration seconds of calling, plus the calls then in progress.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and bench/voice.py is named like the product's
# `voice` package: drop the folder.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import os
import time
from typing import Any

import numpy as np

from analytics.store import CallStore
from foundation.settings import Settings, load_settings
from helpline.loadgen import Watch, caller_audio, child_pids, place_call, sample_process, summarise
from helpline.services import Stack, build_stack


async def keep_calling(gateways: list[Settings], callers: list, n: int, duration_s: float) -> list[dict[str, Any]]:
    """``n`` callers, each placing calls back to back until ``duration_s`` has passed."""
    deadline = time.monotonic() + duration_s
    results: list[dict[str, Any]] = []

    async def caller(i: int) -> None:
        await asyncio.sleep(i * 0.7)  # callers do not all dial on the same millisecond
        k = i
        while time.monotonic() < deadline:
            results.append(await place_call(gateways, callers[k % len(callers)], first=k))
            k += n

    await asyncio.gather(*(caller(i) for i in range(n)))
    return results


def lost_turns(store: CallStore, results: list[dict[str, Any]]) -> tuple[int, int]:
    """(turns the gateways decided, of those missing from the call store) over the completed calls."""
    decided = missing = 0
    for r in results:
        if r["outcome"] == "dropped":
            continue
        said = [i for i, t in enumerate(r["turns"], 1) if t.get("transcript")]  # the gateway's turn numbers
        stored = {t.index for t in store.turns(r["call_sid"])}
        decided += len(said)
        missing += sum(1 for i in said if i not in stored)
    return decided, missing


def growth_mb_per_hour(samples: list[dict[str, Any]], name: str) -> float:
    points = [(row["t"], row[name].rss_mb) for row in samples if row.get(name) is not None]
    points = points[len(points) // 2 :]  # the second half: after start-up and the caches' first filling
    if len(points) < 3:
        return float("nan")
    t, rss = np.array(points).T
    return float(np.polyfit(t, rss, 1)[0] * 3600)


async def run(
    settings: Settings, stack: Stack, gateways: list[Settings], n: int, duration_s: float, real_speech: bool
) -> None:
    pids = {p.name: p.process.pid for p in stack.processes if p.process is not None}
    for name, pid in list(pids.items()):  # a gateway's recognisers run in processes of their own (ASR__PROCESSES)
        for i, child in enumerate(child_pids(pid)):
            pids[f" {name} child {i}"] = child
    # The callers are simulated in this process: its CPU is part of what the machine carries (is it saturated?).
    pids["load generator"] = os.getpid()
    before = {name: sample_process(pid) for name, pid in pids.items()}
    watch = Watch(pids, [g.gateway_url for g in gateways])
    watcher = asyncio.create_task(watch.run())
    callers = caller_audio(real_speech=real_speech)
    started = time.monotonic()
    results = await keep_calling(gateways, callers, n, duration_s)
    wall = time.monotonic() - started
    await asyncio.sleep(6)  # the last records written, tasks of the last calls gone
    watcher.cancel()
    after = {name: sample_process(pid) for name, pid in pids.items()}

    s = summarise(results, settings.vad.end_silence_ms)
    store = CallStore.open(settings.database, upgrade=False)
    decided, missing = lost_turns(store, results)
    store.close()
    errors = sorted({r["error"].split("(")[0] for r in results if r.get("error")})
    print(f"\n== Load: {n} simultaneous callers for {duration_s:.0f} s ({wall:.0f} s with the last calls)")
    print(f"calls placed {s['calls']}, completed {s['calls'] - s['dropped']}, dropped/failed {s['dropped']}"
          f"{' (' + ', '.join(errors) + ')' if errors else ''}; peak calls in progress {s['peak']}")  # fmt: skip
    print(
        f'turns {s["turns"]}, unanswered {s["unanswered_turns"]}, held with "One moment, please." '
        f"{s['held_turns']}; decided {decided}, lost (not in the store) {missing}"
    )
    print(f"response latency (end-of-speech silence excluded): p50 {s['p50']:.0f} ms, p95 {s['p95']:.0f} ms, "
          f"p99 {s['p99']:.0f} ms")  # fmt: skip
    print(f"gap the caller feels (end of speech -> first reply audio, endpointing included): p50 {s['felt_p50']:.0f} "
          f"ms, p95 {s['felt_p95']:.0f} ms, p99 {s['felt_p99']:.0f} ms")  # fmt: skip
    print(f"server means: ASR {s['asr_ms']:.0f} ms, NLU {s['nlu_ms']:.0f} ms, TTS {s['tts_ms']:.0f} ms; recognitions "
          f"started at a pause {s['speculated']} (used {s['speculation_used']}), not started while every recogniser "
          f"was busy {s['speculation_declined']}")  # fmt: skip
    cores = len(os.sched_getaffinity(0))
    print(f"{'process':<18}{'CPU %':>7}{'RSS start':>11}{'RSS end':>9}{'RSS max':>9}{'MB/h':>8}"
          f"{'fds':>10}{'threads':>10}")  # fmt: skip
    busy = 0.0  # CPU seconds of every process together
    for name in pids:
        b, a = before[name], after[name]
        if b is None or a is None:
            print(f"{name:<18} exited during the run")
            continue
        busy += a.cpu_s - b.cpu_s
        peak = max(row[name].rss_mb for row in watch.samples if row.get(name) is not None)
        fds, threads = f"{b.fds}->{a.fds}", f"{b.threads}->{a.threads}"
        print(f"{name:<18}{100 * (a.cpu_s - b.cpu_s) / wall:>7.0f}{b.rss_mb:>11.0f}{a.rss_mb:>9.0f}{peak:>9.0f}"
              f"{growth_mb_per_hour(watch.samples, name):>8.1f}{fds:>10}{threads:>10}")  # fmt: skip
    print(
        f"(CPU % of one core; {cores} cores; all of these together {100 * busy / wall:.0f} % of one core, "
        f"{100 * busy / wall / cores:.0f} % of the machine)"
    )
    for url in watch.gateways:
        rows = [row[url] for row in watch.samples if row.get(url)]
        if rows:
            print(f"{url}: asyncio tasks idle {rows[0]['tasks']} -> under load max {max(r['tasks'] for r in rows)} "
                  f"-> after {rows[-1]['tasks']}; calls in progress max {max(r['calls_in_progress'] for r in rows)}; "
                  f"store writes waiting at the end {rows[-1]['store_writes_waiting']}; recognitions hurried (shorter "
                  f"window while others waited) {rows[-1].get('recognitions_hurried', 0)}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=15, help="simultaneous callers")
    parser.add_argument("--duration", type=float, default=None, help="seconds of calling (default 180; soak 1800)")
    parser.add_argument("--soak", action="store_true", help="30 minutes: memory, open files and tasks over time")
    parser.add_argument("--window", type=float, default=None, help="HELPLINE_ASR__WINDOW_S for this run (10-30)")
    parser.add_argument(
        "--synthetic-only", action="store_true", help="Piper callers only (default: two of seven start with a real"
        " recording from ../shared/audio/real)"
    )  # fmt: skip
    parser.add_argument("--gateways", type=int, default=1)
    parser.add_argument("--rasa-servers", type=int, default=1)
    args = parser.parse_args()
    n = args.calls
    duration = args.duration or (1800.0 if args.soak else 180.0)
    settings = load_settings()
    if args.window is not None:
        settings = settings.model_copy(update={"asr": settings.asr.model_copy(update={"window_s": args.window})})
    store = settings.database.split(":")[0]
    print(f"ASR {settings.asr.engine} {settings.asr.compute_type}, window {settings.asr.window_s:.0f} s; "
          f"{args.gateways} gateway(s), {args.rasa_servers} Rasa server(s); store {store}")  # fmt: skip
    with build_stack(settings, args.gateways, args.rasa_servers) as stack:
        stack.wait_voice_warm(300)  # the fixed sentences are synthesised in the background after start
        asyncio.run(run(settings, stack, stack.gateways, n, duration, not args.synthetic_only))


if __name__ == "__main__":
    main()
