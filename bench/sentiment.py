"""Caller sentiment per turn, measured on the labelled caller turns of nlu/sentiment/turns.yml.

    .venv/bin/python bench/sentiment.py

For VADER as published and for VADER adjusted to this line (nlu/sentiment.py): the thresholds that label the most
dev turns right (grid search on dev only), then with those thresholds the accuracy over the three labels and the
precision and recall of "negative" on dev and on test (test is never used to choose anything).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from nlu.sentiment import turn_sentiment  # noqa: E402

TURNS = ROOT / "nlu" / "sentiment" / "turns.yml"


def scores(turns: list[list[str]], adjusted: bool, negative_at: float, positive_at: float) -> dict[str, float]:
    said = [(label, turn_sentiment(text, adjusted, negative_at, positive_at).label) for label, text in turns]
    right = sum(a == b for a, b in said)
    flagged = [a for a, b in said if b == "negative"]
    negatives = sum(1 for a, _ in said if a == "negative")
    caught = sum(1 for a in flagged if a == "negative")
    return {
        "accuracy": right / len(said),
        "neg_precision": caught / len(flagged) if flagged else 0.0,
        "neg_recall": caught / negatives if negatives else 0.0,
    }


def main() -> int:
    sets = yaml.safe_load(TURNS.read_text())
    dev, test = sets["dev"], sets["test"]
    print(f"labelled caller turns: dev {len(dev)}, test {len(test)}")
    print(f"{'method':22} {'thresholds (neg, pos)':>22} {'set':>5} {'accuracy':>9} {'neg. precision':>15} "
          f"{'neg. recall':>12}")  # fmt: skip
    for name, adjusted in (("VADER as published", False), ("VADER adjusted (ours)", True)):
        grid = [(n / 100, p / 100) for n in range(-70, 0, 5) for p in range(5, 75, 5)]
        best = max(grid, key=lambda g: (scores(dev, adjusted, *g)["accuracy"], -abs(g[0] + 0.3)))
        for label, turns in (("dev", dev), ("test", test)):
            s = scores(turns, adjusted, *best)
            print(f"{name:22} {str(best):>22} {label:>5} {s['accuracy']:>9.3f} {s['neg_precision']:>15.3f} "
                  f"{s['neg_recall']:>12.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
