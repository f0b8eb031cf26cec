"""Sentences too close to those they must stay apart from, by the all-MiniLM-L6-v2 sentence encoder (the NLU's until
2026-12-07, when the bars below were set; the NLU now reads all-mpnet-base-v2, nlu/config.yml).

The frozen held-out set judges only while nothing trained or tuned on is one of its turns or a rewording of one, and
a dev set that no example was written from shows how the NLU reads unseen sentences only while no example nearly
copies it. ``tests/test_heldout_frozen.py`` enforces both; ``helpline nlu near FILE`` lets an NLU trainer check a new
set of caller turns, or new training examples, before committing them. A held-out turn is never shown: the trainer
learns only that a sentence is too close to one, so the frozen set cannot be read and tuned to through this tool.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import yaml

from nlu.caller_turns import HELDOUT_TURNS, SETS, load_turns
from nlu.training_data import NLU_DATA, block_texts, training_examples

NEAR_DUPLICATE = 0.93  # cosine by all-MiniLM-L6-v2 (the NLU's encoder until 2026-12-07): rewordings above it are one
EXAMPLE_MARGIN = 0.85  # a new training example stays this far from every dev and held-out turn (the rounds' rule)


class Encoder(Protocol):
    def encode(self, texts: list[str]) -> np.ndarray: ...


class OverlapError(ValueError):
    """The file holds neither caller turns nor Rasa NLU examples; the message says which file."""


@dataclass(frozen=True)
class Close:
    """A sentence of the file checked that is at least the bar close to one of ``against``."""

    text: str
    against: str  # "training" or a set of SETS
    similarity: float
    nearest: str | None  # None for a held-out turn, which is not shown


def normalised(text: str) -> str:
    return " ".join(text.lower().split())


def training_sentences() -> list[str]:
    """Every example text of the training data, synonyms and lookups included, normalised."""
    return [normalised(text) for _, text in training_examples(NLU_DATA, every_block=True)]


def near_duplicates(
    texts: list[str], vectors: np.ndarray, others: list[str], other_vectors: np.ndarray, bar: float = NEAR_DUPLICATE
) -> list[tuple[str, str, float]]:
    """(text, its nearest other, cosine) for every text at least ``bar`` close to one of ``others``."""
    if not texts or not others:
        return []
    similarity = vectors @ other_vectors.T
    near = np.where(similarity.max(axis=1) >= bar)[0]
    return [(texts[i], others[int(similarity[i].argmax())], float(similarity[i].max())) for i in near]


def file_sentences(path: Path) -> tuple[str, list[str]]:
    """("turns", the caller turns) of a set (``turns:``, as nlu/dev/*.yml), or ("examples", the intent examples) of
    a Rasa NLU file (``nlu:``); lower case, annotations removed."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as e:
        raise OverlapError(f"{path}: cannot be read ({e.strerror})") from e
    except yaml.YAMLError as e:
        raise OverlapError(f"{path}: is not valid YAML ({' '.join(str(e).split())})") from e
    if isinstance(data, dict) and "turns" in data:
        return "turns", [normalised(t.text) for t in load_turns(path)]
    if isinstance(data, dict) and "nlu" in data:
        blocks = [b for b in data["nlu"] or [] if isinstance(b, dict) and "intent" in b]
        return "examples", [normalised(text) for block in blocks for text in block_texts(block)]
    raise OverlapError(f"{path}: holds neither caller turns (turns:) nor Rasa NLU examples (nlu:)")


def comparisons(path: Path, kind: str) -> dict[str, list[str]]:
    """What a file's sentences must stay apart from: every set of caller turns but the file itself, and for caller
    turns also the training data (training examples may reword each other)."""
    path = path.resolve()
    groups = {}
    if kind == "turns":
        groups["training"] = training_sentences()
    for name, set_path in SETS.items():
        if set_path.resolve() != path:
            groups[name] = [normalised(t.text) for t in load_turns(set_path)]
    return groups


@dataclass(frozen=True)
class Overlap:
    kind: str  # "turns" or "examples"
    checked: int  # sentences of the file
    compared: dict[str, int]  # sentences per group compared with
    bar: float
    close: list[Close]  # the closest first


def too_close(path: Path, encoder: Encoder, bar: float | None = None) -> Overlap:
    """Every sentence of ``path`` at least ``bar`` close to one of what it must stay apart from (``bar``: 0.93 for
    caller turns, the tests' rule; 0.85 for training examples, the training rounds' rule). Held-out turns are
    compared but never returned."""
    kind, texts = file_sentences(path)
    bar = bar if bar is not None else (NEAR_DUPLICATE if kind == "turns" else EXAMPLE_MARGIN)
    groups = comparisons(path, kind)
    close = []
    if texts:
        vectors = encoder.encode(texts)
        for name, others in groups.items():
            hidden = SETS.get(name) == HELDOUT_TURNS
            for text, nearest, similarity in near_duplicates(texts, vectors, others, encoder.encode(others), bar):
                close.append(Close(text, name, similarity, None if hidden else nearest))
    close.sort(key=lambda c: -c.similarity)
    return Overlap(kind, len(texts), {name: len(others) for name, others in groups.items()}, bar, close)
