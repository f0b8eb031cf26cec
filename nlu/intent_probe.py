"""An intent classifier on frozen sentence embeddings: softmax regression, trained in numpy.

DIET learns from the training examples' words and n-grams as well as from the sentence encoder, and a caller who
words a request unlike any example can pull it the wrong way; this probe reads only the encoder's sentence vector,
which knows paraphrases. The Rasa pipeline blends the two (nlu/rasa_components.py: BlendedIntentClassifier).
Deterministic (full batch, fixed steps, zero start), a second or two for a thousand examples. Runs in both venvs.

A probe just trained also keeps its training vectors, and can mix into its probabilities a vote of the examples
nearest to a turn (``neighbours``): a regression draws one straight boundary per intent, while a wording is often
close to one example of an intent whose others lie elsewhere. The benches measure it (bench/encoders.py,
bench/classifiers.py); the line does not use it: mixed half and half, it lifts the probe alone (Banking77 with all
10,003 training examples: right 0.895 -> 0.925; fresh dev set 0.932 -> 0.955) but not the probe's blend with DIET,
which already holds on to single examples (fresh dev set 0.960 -> 0.955, dev set 0.993 -> 0.983; README).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

STEPS = 300
LEARNING_RATE = 20.0
L2 = 1e-4
# The nearest-example vote: the K training examples most like the turn (cosine), each weighted by
# exp((similarity - best) / SHARPNESS), summed per intent. On Banking77 and the two dev sets K 5-20 and SHARPNESS
# 0.02-0.1 were within a point of each other (an ad-hoc grid, 2026-12-07).
NEIGHBOURS = 10
SHARPNESS = 0.02


@dataclass
class IntentProbe:
    labels: list[str]
    weights: np.ndarray  # (dimensions, labels)
    bias: np.ndarray  # (labels,)
    examples: np.ndarray | None = None  # (examples, dimensions): the training vectors, L2-normalised
    example_labels: np.ndarray | None = None  # (examples,): each example's index into ``labels``

    @classmethod
    def fit(cls, vectors: np.ndarray, intents: list[str], steps: int = STEPS) -> IntentProbe:
        """Trained on sentence vectors (one row per example) and their intents."""
        if len(vectors) != len(intents) or not intents:
            raise ValueError("the probe needs one intent per vector, and at least one example")
        labels = sorted(set(intents))
        index = {label: i for i, label in enumerate(labels)}
        onehot = np.eye(len(labels))[[index[label] for label in intents]]
        x = np.asarray(vectors, dtype=np.float64)
        weights = np.zeros((x.shape[1], len(labels)))
        bias = np.zeros(len(labels))
        for _ in range(steps):
            grad = (_softmax(x @ weights + bias) - onehot) / len(intents)
            weights -= LEARNING_RATE * (x.T @ grad + L2 * weights)
            bias -= LEARNING_RATE * grad.sum(axis=0)
        examples = (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)
        return cls(labels, weights, bias, examples, np.array([index[label] for label in intents]))

    def probabilities(self, vectors: np.ndarray, temperature: float = 1.0, neighbours: float = 0.0) -> np.ndarray:
        """(rows, labels): each row's probability of every intent, in ``self.labels`` order. A temperature under 1
        sharpens the regression's: a regression on a few examples per intent is right more often than it is sure.
        ``neighbours`` (0-1): the share of the nearest-example vote in the mix (``nearest``)."""
        if temperature <= 0:
            raise ValueError(f"the temperature must be positive, not {temperature}")
        if not 0.0 <= neighbours <= 1.0:
            raise ValueError(f"the nearest examples' share must be 0..1, not {neighbours}")
        regression = _softmax((np.atleast_2d(vectors) @ self.weights + self.bias) / temperature)
        if neighbours == 0.0:
            return regression
        return (1.0 - neighbours) * regression + neighbours * self.nearest(vectors)

    def nearest(self, vectors: np.ndarray) -> np.ndarray:
        """(rows, labels): the vote of the ``NEIGHBOURS`` training examples nearest to each row, as probabilities."""
        if self.examples is None or self.example_labels is None:
            raise ValueError("a probe saved without its training examples has no nearest vote: save it with them")
        x = np.atleast_2d(vectors).astype(np.float64)
        similarity = (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)) @ self.examples.T
        k = min(NEIGHBOURS, similarity.shape[1])
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        votes = np.zeros((len(x), len(self.labels)))
        for row, columns in enumerate(nearest):
            close = similarity[row, columns]
            np.add.at(votes[row], self.example_labels[columns], np.exp((close - close.max()) / SHARPNESS))
        return votes / votes.sum(axis=1, keepdims=True)

    def temperature(self, vectors: np.ndarray, intents: list[str]) -> float:
        """The temperature (0.05-1.0) under which the probabilities best fit ``intents`` (least log loss): chosen on
        turns the probe was not trained on, a dev set."""
        index = [self.labels.index(intent) for intent in intents]
        grid = np.round(np.arange(0.05, 1.0001, 0.05), 2)
        losses = [-np.log(self.probabilities(vectors, t)[np.arange(len(index)), index] + 1e-12).mean() for t in grid]
        return float(grid[int(np.argmin(losses))])

    def save(self, path: Path, with_examples: bool = False) -> None:
        """The regression; ``with_examples``: the training vectors too, which the nearest vote needs."""
        arrays: dict[str, Any] = {"labels": np.array(self.labels), "weights": self.weights, "bias": self.bias}
        if with_examples and self.examples is not None and self.example_labels is not None:
            arrays |= {"examples": self.examples, "example_labels": self.example_labels}
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> IntentProbe:
        with np.load(path, allow_pickle=False) as data:
            examples = (data["examples"], data["example_labels"]) if "examples" in data.files else (None, None)
            return cls([str(label) for label in data["labels"]], data["weights"], data["bias"], *examples)


def _softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def blend(ranking: dict[str, float], probe: dict[str, float], probe_weight: float) -> dict[str, float]:
    """DIET's intent confidences and the probe's, mixed: ``(1 - w) * diet + w * probe`` for every intent either
    knows (an intent only one of them ranks counts 0 in the other), highest first."""
    mixed = {
        intent: (1 - probe_weight) * ranking.get(intent, 0.0) + probe_weight * probe.get(intent, 0.0)
        for intent in ranking.keys() | probe.keys()
    }
    return dict(sorted(mixed.items(), key=lambda item: (-item[1], item[0])))


def macro_f1(predicted: list[str], truth: list[str]) -> float:
    """The mean over the true labels of each label's F1 (the benches' measure)."""
    f1s = []
    for label in sorted(set(truth)):
        tp = sum(p == label == t for p, t in zip(predicted, truth, strict=True))
        fp = sum(p == label != t for p, t in zip(predicted, truth, strict=True))
        fn = sum(t == label != p for p, t in zip(predicted, truth, strict=True))
        f1s.append(2 * tp / max(1, 2 * tp + fp + fn))
    return float(np.mean(f1s))
