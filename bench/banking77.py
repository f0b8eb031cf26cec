"""External NLU benchmark: our exact pipeline (nlu/config.yml) trained and tested on Banking77.

Banking77 (PolyAI, CC BY 4.0): 77 customer-service intents, 10,003 training / 3,080 test utterances, read from
../shared/data/banking77 (never copied into the repo). Prints accuracy, macro-F1 and the training time next to
figures published for comparable pipelines.

    .venv/bin/python bench/banking77.py [--limit-per-intent N]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from foundation.settings import load_settings
from helpline.training import NLU_CONFIG, rasa_environment, rasa_executable

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"

# Full-training-data accuracy reported by Casanueva et al. (2020), "Efficient Intent Detection with Dual
# Sentence Encoders" (the Banking77 paper), as we read its results table. Our pipeline's pretrained part is the small
# all-MiniLM-L6-v2 encoder (frozen) under DIET; compare like with like: a --limit-per-intent run is a few-shot setting.
PUBLISHED = {
    "BERT-Fixed (frozen BERT + MLP)": 0.8719,
    "USE (Universal Sentence Encoder + MLP)": 0.9281,
    "ConveRT + MLP": 0.9301,
    "USE+ConveRT + MLP": 0.9336,
    "BERT-Tuned (fine-tuned BERT-base)": 0.9366,
}


def to_rasa_nlu(tsv: Path, out: Path, limit: int | None) -> int:
    by_intent: dict[str, list[str]] = {}
    with tsv.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            texts = by_intent.setdefault(row["intent"], [])
            if limit is None or len(texts) < limit:
                # Square brackets and parentheses would read as entity annotations in Rasa's format.
                texts.append(re.sub(r"[\[\]()]", " ", row["text"]))
    blocks = [{"intent": i, "examples": "".join(f"- {t.strip()}\n" for t in texts)} for i, texts in by_intent.items()]
    out.write_text(yaml.safe_dump({"version": "3.1", "nlu": blocks}, sort_keys=False, allow_unicode=True))
    return sum(len(t) for t in by_intent.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit-per-intent", type=int, default=None, help="train on at most N examples per intent")
    args = parser.parse_args()
    settings = load_settings()
    rasa = str(rasa_executable(settings))
    env = rasa_environment(settings)
    with tempfile.TemporaryDirectory(prefix="banking77-") as tmp:
        work = Path(tmp)
        n_train = to_rasa_nlu(DATA / "train.tsv", work / "train.yml", args.limit_per_intent)
        n_test = to_rasa_nlu(DATA / "test.tsv", work / "test.yml", None)
        print(f"Banking77: {n_train} training and {n_test} test utterances; pipeline {NLU_CONFIG}", flush=True)
        started = time.perf_counter()
        subprocess.run(
            [rasa, "train", "nlu", "--config", str(NLU_CONFIG), "--nlu", str(work / "train.yml"),
             "--out", str(work / "models"), "--fixed-model-name", "banking77"],
            env=env, check=True, stdout=sys.stderr, stderr=sys.stderr,
        )  # fmt: skip
        train_s = time.perf_counter() - started
        subprocess.run(
            [rasa, "test", "nlu", "--nlu", str(work / "test.yml"), "--model", str(work / "models" / "banking77.tar.gz"),
             "--out", str(work / "results"), "--no-plot"],
            env=env, check=True, stdout=sys.stderr, stderr=sys.stderr,
        )  # fmt: skip
        report = json.loads((work / "results" / "intent_report.json").read_text())
    print(f"\n{'pipeline':<52}{'accuracy':>10}{'macro-F1':>10}")
    print(
        f"{'Helpline nlu/config.yml (this run)':<52}{report['accuracy']:>10.4f}{report['macro avg']['f1-score']:>10.4f}"
    )
    for name, accuracy in PUBLISHED.items():
        print(f"{name + ' [published]':<52}{accuracy:>10.4f}{'-':>10}")
    print(f"training time: {train_s / 60:.1f} min on {len(os.sched_getaffinity(0))} cores")


if __name__ == "__main__":
    main()
