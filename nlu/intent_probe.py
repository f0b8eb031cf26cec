"""An intent classifier on frozen sentence embeddings: softmax regression, trained in numpy.

DIET learns from the training examples' words and n-grams as well as from the sentence encoder, and a caller who
words a request unlike any example can pull it the wrong way; this probe reads only the encoder's sentence vector,
which knows paraphrases. The Rasa pipeline blends the two (nlu/rasa_components.py: BlendedIntentClassifier).
Deterministic (full batch, fixed steps, zero start), a second or two for a thousand examples. Runs in both venvs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

STEPS = 300
LEARNING_RATE = 20.0
L2 = 1e-4


@dataclass
class IntentProbe:
    labels: list[str]
    weights: np.ndarray  # (dimensions, labels)
    bias: np.ndarray  # (labels,)

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
        return cls(labels, weights, bias)

    def probabilities(self, vectors: np.ndarray, temperature: float = 1.0) -> np.ndarray:
        """(rows, labels): each row's probability of every intent, in ``self.labels`` order. A temperature under 1
        sharpens them: a regression on a few examples per intent is right more often than it is sure."""
        if temperature <= 0:
            raise ValueError(f"the temperature must be positive, not {temperature}")
        return _softmax((np.atleast_2d(vectors) @ self.weights + self.bias) / temperature)

    def temperature(self, vectors: np.ndarray, intents: list[str]) -> float:
        """The temperature (0.05-1.0) under which the probabilities best fit ``intents`` (least log loss): chosen on
        turns the probe was not trained on, a dev set."""
        index = [self.labels.index(intent) for intent in intents]
        grid = np.round(np.arange(0.05, 1.0001, 0.05), 2)
        losses = [-np.log(self.probabilities(vectors, t)[np.arange(len(index)), index] + 1e-12).mean() for t in grid]
        return float(grid[int(np.argmin(losses))])

    def save(self, path: Path) -> None:
        np.savez(path, labels=np.array(self.labels), weights=self.weights, bias=self.bias)

    @classmethod
    def load(cls, path: Path) -> IntentProbe:
        with np.load(path, allow_pickle=False) as data:
            return cls([str(label) for label in data["labels"]], data["weights"], data["bias"])


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
