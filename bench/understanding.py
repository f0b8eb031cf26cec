"""Understanding callers the line has never heard: typed and spoken, per voice and line condition.

    .venv/bin/python bench/understanding.py [--set heldout|dev|fresh|trainer] [--no-typed] [--no-spoken]
                                            [--per-intent N] [--voices flite-slt,...] [--conditions clean,degraded]
                                            [--at-once 3] [--opening "My personal number is 850314-1239."]

Starts its own line (Rasa server, action server, gateway, production settings) on free loopback ports. Typed: every
turn of the set as the first turn of a conversation with the real Rasa dialogue. Spoken: every turn (or the first
--per-intent of each intent) spoken by each simulated caller voice (flite slt/rms/awb, espeak-ng British and
American: none is the assistant's own Piper voice) on a clean G.711 line and on a degraded one (noise 10-20 dB SNR,
level +-10 dB, rate 0.85-1.2, 1-3 % frames lost), placed as a real call through the gateway over Twilio's protocol;
the call's first turn is judged. Prints, per voice and condition: first-turn decision right (with its 95 % Wilson
interval: a voice on a line is a few dozen turns), wrong-action rate (answered or routed the wrong way, or
dismissed), asked back (read-back or "is your call about ...?"), other (none of these: no decision, small talk),
benefit problems dismissed, and recall of the agency's key words in the transcripts. ``--opening``: every turn
starts with these words, typed and spoken (callers often give their personal number first). Writes every judged turn
to var/reports/understanding-<set>.json. The whole held-out set spoken is 3,310 calls (about 3 hours on 2 cores).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path: drop it so `import voice` finds the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import json
import time
from dataclasses import asdict, replace

import httpx

from foundation.routing_table import RoutingTable
from foundation.settings import load_settings
from helpline.machine import free_port
from helpline.services import Stack
from helpline.understanding import Judged, Scores, judge_spoken, judge_typed, spoken_plan
from nlu.caller_turns import SETS, load_turns, sample
from voice.caller_voices import CALLER_VOICES

HEADER = (
    f"{'voice':<12}{'line':<10}{'turns':>6}{'right':>8}{'95 % interval':>15}{'wrong action':>14}{'asked back':>12}"
    f"{'other':>8}{'dismissed':>11}{'key words':>11}"
)


def row(voice: str, condition: str, scores: Scores) -> str:
    recall = "-" if scores.key_word_recall is None else f"{scores.key_word_recall:.3f}"
    low, high = scores.right_interval
    return (
        f"{voice:<12}{condition:<10}{scores.n:>6}{scores.right:>8.3f}{f'{low:.3f}-{high:.3f}':>15}"
        f"{scores.wrong_action:>13.1%}"
        f"{scores.asked_back:>12.1%}{scores.other:>8.1%}{scores.dismissed_benefit_problems:>11}{recall:>11}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=tuple(SETS), default="heldout")
    parser.add_argument("--no-typed", action="store_true")
    parser.add_argument("--no-spoken", action="store_true")
    parser.add_argument("--per-intent", type=int, default=0, help="spoken: the first N turns of each intent (0: all)")
    parser.add_argument("--voices", default=",".join(CALLER_VOICES))
    parser.add_argument("--conditions", default="clean,degraded")
    parser.add_argument("--at-once", type=int, default=3, help="spoken calls in progress at once")
    parser.add_argument("--speed", type=float, default=3.0, help="softphone speed (stream time runs this much faster)")
    parser.add_argument(
        "--opening", default="", help='said before every turn, as callers often start ("My personal number is ...")'
    )
    args = parser.parse_args()
    unknown = [v for v in args.voices.split(",") if v not in CALLER_VOICES]
    if unknown:
        parser.error(f"unknown voice(s) {', '.join(unknown)}; choose from {', '.join(CALLER_VOICES)}")

    base = load_settings()
    reports = base.data_dir / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    settings = base.model_copy(
        update={
            "gateway": base.gateway.model_copy(update={"port": free_port()}),
            "rasa": base.rasa.model_copy(update={"port": free_port(), "actions_port": free_port()}),
            "database_url": f"sqlite:///{reports / 'understanding-calls.db'}",
        }
    )
    turns = load_turns(SETS[args.set])
    if args.opening:
        turns = [replace(t, text=f"{args.opening} {t.text}") for t in turns]
    routing = RoutingTable.load()
    judged: list[Judged] = []
    with Stack(settings) as stack:
        stack.wait_voice_warm(300)
        print(f"\n== Understanding: the {args.set} set ({len(turns)} caller turns)")
        print(HEADER)
        if not args.no_typed:
            typed = asyncio.run(judge_typed(settings, turns))
            judged += typed
            print(row("typed", "text", Scores.of(typed, routing)), flush=True)
        if not args.no_spoken:
            chosen = sample(turns, args.per_intent) if args.per_intent else turns
            voices = [CALLER_VOICES[v] for v in args.voices.split(",")]
            plan = spoken_plan(chosen, voices, tuple(args.conditions.split(",")))
            t0 = time.monotonic()
            spoken = asyncio.run(judge_spoken(settings, plan, args.at_once, args.speed, progress=True))
            judged += spoken
            for voice in voices:
                for condition in args.conditions.split(","):
                    part = [j for j in spoken if j.voice == voice.name and j.condition == condition]
                    print(row(voice.name, condition, Scores.of(part, routing)))
            print(row("all voices", "all", Scores.of(spoken, routing)))
            hurried = httpx.get(f"{settings.gateway_url}/healthz", timeout=5).json()["recognitions_hurried"]
            # Calls placed --at-once at --speed load the recognisers more than real time would: a recognition taken
            # while others wait is hurried into a shorter window, which hears fewer of the agency's words.
            print(f"({len(plan)} calls in {time.monotonic() - t0:.0f} s; recognitions hurried: {hurried})")
    everything = Scores.of(judged, routing)
    print("most frequent misses (right decision -> made, count): ")
    for want, got, count in everything.confusions:
        print(f"  {want} -> {got}: {count}")
    out = reports / f"understanding-{args.set}{'-opening' if args.opening else ''}.json"
    out.write_text(json.dumps([asdict(j) for j in judged], indent=1))
    print(f"every judged turn: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
