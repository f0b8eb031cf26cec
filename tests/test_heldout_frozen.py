"""The frozen held-out set stays frozen and stays apart: nothing trained or tuned on is the same as, or an encoder
near-duplicate of, a held-out turn."""

from pathlib import Path

import numpy as np
import pytest

from foundation.routing_table import RoutingTable
from nlu.caller_turns import (
    DEV_TURNS,
    HELDOUT_TURNS,
    UNTRAINED_DEV_SETS,
    CallerTurnsError,
    file_digest,
    load_turns,
    sample,
)
from nlu.overlap import near_duplicates, training_sentences
from nlu.sentence_encoder import SentenceEncoder

ROOT = Path(__file__).resolve().parents[1]


def test_heldout_set_is_the_frozen_one():
    recorded = (ROOT / "nlu" / "heldout" / "FROZEN").read_text().split()[0]
    assert file_digest(HELDOUT_TURNS) == recorded, "nlu/heldout/callers.yml is frozen: write a new set instead"


def test_heldout_covers_every_domain_intent_and_kind_of_caller():
    routing = RoutingTable.load()
    turns = load_turns(HELDOUT_TURNS)
    assert len(turns) >= 300
    intents = set(routing.answers) | set(routing.routes) | set(routing.smalltalk)
    assert {t.intent for t in turns} == intents
    assert {"story", "indirect", "complaint", "two", "hesitation", "describe"} <= {t.kind for t in turns}
    assert all(set(t.also) <= intents for t in turns)


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder()


@pytest.fixture(scope="module")
def heldout(encoder) -> tuple[list[str], np.ndarray]:
    """The held-out turns and their sentence vectors, encoded once for both comparisons."""
    texts = [t.text.lower() for t in load_turns(HELDOUT_TURNS)]
    return texts, encoder.encode(texts)


@pytest.fixture(scope="module")
def training(encoder) -> tuple[list[str], np.ndarray]:
    """The training texts and their sentence vectors, encoded once for the held-out and the fresh dev set."""
    texts = training_sentences()
    return texts, encoder.encode(texts)


@pytest.mark.models  # the sentence encoder judges near-duplicates
@pytest.mark.parametrize("other", ["training", "dev", *UNTRAINED_DEV_SETS])
def test_no_heldout_turn_is_trained_or_tuned_on(encoder, heldout, training, other):
    held_out, vectors = heldout
    dev = {"dev": DEV_TURNS, **UNTRAINED_DEV_SETS}
    if other == "training":
        texts, other_vectors = training
    else:
        texts = [t.text.lower() for t in load_turns(dev[other])]
        other_vectors = encoder.encode(texts)
    assert not set(held_out) & set(texts), "a held-out turn is copied"
    assert not near_duplicates(held_out, vectors, texts, other_vectors)


@pytest.mark.parametrize("dev", [DEV_TURNS, *UNTRAINED_DEV_SETS.values()], ids=["dev", *UNTRAINED_DEV_SETS])
def test_dev_turns_are_not_training_examples(dev):
    training = set(training_sentences())
    copied = [t.text for t in load_turns(dev) if t.text.lower() in training]
    assert not copied, copied


@pytest.mark.models  # the sentence encoder judges near-duplicates
@pytest.mark.parametrize("name", UNTRAINED_DEV_SETS)
def test_no_untrained_dev_turn_is_a_near_duplicate_of_a_training_example(encoder, training, name):
    """The fresh and the trainer round's dev sets measure how the NLU reads sentences it was not written from: nothing
    trained is a near-duplicate of one of them (the older dev set's turns had training examples written for their
    failures)."""
    turns = [t.text.lower() for t in load_turns(UNTRAINED_DEV_SETS[name])]
    assert not near_duplicates(turns, encoder.encode(turns), *training)


@pytest.mark.parametrize("name", UNTRAINED_DEV_SETS)
def test_an_untrained_dev_set_covers_every_domain_intent(name):
    routing = RoutingTable.load()
    intents = set(routing.answers) | set(routing.routes) | set(routing.smalltalk)
    assert {t.intent for t in load_turns(UNTRAINED_DEV_SETS[name])} == intents


def test_a_fixed_sample_takes_the_same_turns_of_every_intent():
    turns = load_turns(HELDOUT_TURNS)
    chosen = sample(turns, 2)
    assert chosen == sample(turns, 2)
    assert len(chosen) == 2 * len({t.intent for t in turns})


def test_a_malformed_turn_is_named(tmp_path):
    bad = tmp_path / "callers.yml"
    bad.write_text('turns:\n  greet:\n    - [plain, "hi"]\n    - [shouting, "HELLO"]\n')
    with pytest.raises(CallerTurnsError, match="greet #2"):
        load_turns(bad)
