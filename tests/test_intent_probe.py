"""The encoder probe: a softmax regression on sentence vectors, and its blend with DIET's ranking."""

import numpy as np
import pytest

from nlu.intent_probe import IntentProbe, blend


def clusters(seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Three intents as unit vectors scattered around three directions of an 8-dimensional space."""
    rng = np.random.default_rng(seed)
    centres = {"payment_problem": 0, "ask_payment_dates": 3, "greet": 6}
    rows, labels = [], []
    for intent, axis in centres.items():
        for _ in range(20):
            v = rng.normal(0, 0.25, 8)
            v[axis] += 1.0
            rows.append(v / np.linalg.norm(v))
            labels.append(intent)
    return np.array(rows), labels


def test_the_probe_learns_separable_intents_and_gives_probabilities():
    x, y = clusters()
    probe = IntentProbe.fit(x, y)
    assert probe.labels == ["ask_payment_dates", "greet", "payment_problem"]
    test_x, test_y = clusters(seed=1)
    p = probe.probabilities(test_x)
    assert p.shape == (60, 3)
    assert np.allclose(p.sum(axis=1), 1.0)
    predicted = [probe.labels[i] for i in p.argmax(axis=1)]
    assert np.mean([a == b for a, b in zip(predicted, test_y, strict=True)]) >= 0.95


def test_training_is_deterministic_and_survives_saving(tmp_path):
    x, y = clusters()
    first, second = IntentProbe.fit(x, y), IntentProbe.fit(x, y)
    assert np.array_equal(first.weights, second.weights)
    first.save(tmp_path / "probe.npz")
    loaded = IntentProbe.load(tmp_path / "probe.npz")
    assert loaded.labels == first.labels
    assert np.allclose(loaded.probabilities(x), first.probabilities(x))


def test_a_probe_without_examples_is_refused():
    with pytest.raises(ValueError, match="one intent per vector"):
        IntentProbe.fit(np.zeros((2, 4)), ["greet"])


def test_the_blend_mixes_both_rankings_and_puts_the_highest_first():
    diet = {"payment_problem": 0.9, "ask_payment_dates": 0.1}
    probe = {"ask_payment_dates": 0.8, "payment_problem": 0.1, "greet": 0.1}
    assert blend(diet, probe, 0.0) == {"payment_problem": 0.9, "ask_payment_dates": 0.1, "greet": 0.0}
    mixed = blend(diet, probe, 0.6)
    assert list(mixed) == ["ask_payment_dates", "payment_problem", "greet"]
    assert mixed["ask_payment_dates"] == pytest.approx(0.4 * 0.1 + 0.6 * 0.8)
    assert mixed["greet"] == pytest.approx(0.06)
    assert sum(mixed.values()) == pytest.approx(1.0)


def test_the_nearest_examples_vote_for_their_intent_and_mix_into_the_probabilities():
    x, y = clusters()
    # One greeting worded unlike the others: alone in a direction of its own, nearer to the payment problems.
    lone = np.zeros(8)
    lone[[0, 1]] = [0.6, 0.8]
    probe = IntentProbe.fit(np.vstack([x, lone]), [*y, "greet"])
    turn = np.zeros(8)
    turn[[0, 1]] = [0.55, 0.83]
    vote = probe.nearest(turn)[0]
    assert vote.sum() == pytest.approx(1.0)
    assert probe.labels[int(vote.argmax())] == "greet" and vote.max() > 0.9
    alone, mixed = probe.probabilities(turn)[0], probe.probabilities(turn, neighbours=0.5)[0]
    assert mixed == pytest.approx(0.5 * alone + 0.5 * vote)
    assert probe.probabilities(turn, neighbours=1.0)[0] == pytest.approx(vote)


def test_a_probe_saved_without_its_examples_has_no_vote_and_says_so(tmp_path):
    x, y = clusters()
    probe = IntentProbe.fit(x, y)
    probe.save(tmp_path / "probe.npz")
    loaded = IntentProbe.load(tmp_path / "probe.npz")
    assert np.allclose(loaded.probabilities(x), probe.probabilities(x))
    with pytest.raises(ValueError, match="saved without its training examples"):
        loaded.probabilities(x, neighbours=0.5)
    with pytest.raises(ValueError, match="share must be 0..1"):
        probe.probabilities(x, neighbours=1.5)


def test_a_probe_saved_with_its_examples_votes_as_before(tmp_path):
    x, y = clusters()
    probe = IntentProbe.fit(x, y)
    probe.save(tmp_path / "probe.npz", with_examples=True)
    loaded = IntentProbe.load(tmp_path / "probe.npz")
    assert np.allclose(loaded.probabilities(x, 0.4, neighbours=0.25), probe.probabilities(x, 0.4, neighbours=0.25))
