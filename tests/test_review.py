"""The trainer's review queue on SQLite and PostgreSQL: which turns are in it and why, grouping by meaning with the
NLU's own sentence encoder, and a label that becomes a training example and takes the turn out of the queue."""

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from analytics import review
from analytics.store import CallStore

REPO = Path(__file__).resolve().parents[1]
T = datetime(2026, 11, 25, 9, tzinfo=UTC)


def _turn(index, text, intent, confidence, decision):
    return {"index": index, "input": "speech", "transcript": text, "asr_confidence": 0.8, "intent": intent,
            "nlu_confidence": confidence, "decision": decision}  # fmt: skip


@pytest.fixture
def store(store_url):
    store = CallStore.open(store_url)
    turns = {
        "C1": [_turn(1, "when does my pension start", "ask_payment_dates", 0.41, "answer:payment_dates"),
               _turn(2, "when do i get my pension", "ask_payment_dates", 0.38, "answer:payment_dates")],
        "C2": [_turn(1, "my dog ate the letter", "out_of_scope", 0.7, "smalltalk:out_of_scope"),
               _turn(2, "the letter about my pension", "nlu_fallback", 0.3, "route:general")],
        "C3": [_turn(1, "i want too apeal", "", 0.0, "confirm:asr"),
               _turn(2, "no", "deny", 0.99, "confirm:denied")],
        "C4": [_turn(1, "can i talk to someone", "request_human", 0.95, "route:general"),
               _turn(2, "when is the child allowance paid", "ask_payment_dates", 0.97, "answer:payment_dates"),
               _turn(3, "um", "greet", 0.2, "smalltalk:greet"),
               _turn(4, "the thing you sent about my", "out_of_scope", 0.5, "clarify:rephrase")],
    }  # fmt: skip
    for n, (sid, call_turns) in enumerate(turns.items()):
        store.call_started(sid, "+46******00", f"k{n}", T + timedelta(minutes=n))
        for turn in call_turns:
            store.save_turn(sid, turn)
    yield store
    store.close()


def test_the_queue_holds_the_misunderstood_turns_with_their_reason(store):
    with store.sessions() as db:
        items = review.review_items(db, T, T + timedelta(hours=1))
    found = {(i.call_sid, i.turn_index): i.reason for i in items}
    assert found == {
        ("C1", 1): "low_confidence",
        ("C1", 2): "low_confidence",
        ("C2", 1): "not_understood",
        ("C2", 2): "not_understood",  # nlu_fallback: not understood, and it sent the call to general
        ("C3", 1): "read_back_rejected",
        ("C4", 4): "not_understood",  # asked to say it again
    }  # a request for a person, a confident answer and low-confidence small talk are not for review


def test_similar_turns_are_grouped_by_meaning():
    from nlu.sentence_encoder import SentenceEncoder

    items = [
        review.ReviewItem("C1", 1, "when does my pension start", "ask_payment_dates", 0.41, "low_confidence"),
        review.ReviewItem("C1", 2, "when do i get my pension", "ask_payment_dates", 0.38, "low_confidence"),
        review.ReviewItem("C2", 1, "my dog ate the letter", "out_of_scope", 0.7, "not_understood"),
    ]
    groups = review.group_similar(items, SentenceEncoder().encode)
    assert [[i.text for i in g.items] for g in groups] == [
        ["when does my pension start", "when do i get my pension"],
        ["my dog ate the letter"],
    ]
    assert groups[0].suggested_intent == "ask_payment_dates"


def test_a_label_adds_the_example_and_the_turn_leaves_the_queue(store, tmp_path):
    shutil.copytree(REPO / "nlu" / "data", tmp_path / "nlu")
    shutil.copy(REPO / "dialogues" / "domain.yml", tmp_path / "domain.yml")
    written = review.label_turn(
        store, "C1", 1, "ask_pension", "tina.trainer", tmp_path / "nlu", tmp_path / "domain.yml"
    )
    assert yaml.safe_load(written.read_text())["nlu"] == [
        {"intent": "ask_pension", "examples": "- when does my pension start\n"}
    ]
    with store.sessions() as db:
        left = {(i.call_sid, i.turn_index) for i in review.review_items(db, T, T + timedelta(hours=1))}
    assert ("C1", 1) not in left and ("C1", 2) in left
    with pytest.raises(review.ReviewError, match="no turn"):
        review.label_turn(store, "C9", 1, "ask_pension", "tina.trainer", tmp_path / "nlu", tmp_path / "domain.yml")


@pytest.mark.rasa
def test_a_trainer_labels_a_turn_on_the_review_page(stack, tmp_path):
    """Through a gateway whose training data is a copy (the page writes to it), logged in as a trainer."""
    import re

    import httpx

    from tests.conftest import add_user, free_port, gateway_process

    shutil.copytree(REPO / "nlu", tmp_path / "nlu", ignore=shutil.ignore_patterns("heldout"))
    shutil.copytree(REPO / "dialogues", tmp_path / "dialogues")
    settings = stack.model_copy(
        update={"training_root": tmp_path, "gateway": stack.gateway.model_copy(update={"port": free_port()})}
    )
    store = CallStore.open(settings.database)
    sid = "CA" + "5eed" * 8
    store.call_started(sid, "+46******00", "k-review", datetime.now(UTC))
    store.save_turn(sid, _turn(1, "when does my pension start", "ask_payment_dates", 0.41, "answer:payment_dates"))
    store.close()
    add_user(settings, "tina.trainer", "trainer", "a trainer passphrase")
    with gateway_process(settings, "review"), httpx.Client(base_url=settings.gateway_url, timeout=30) as browser:
        login = browser.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
        browser.post(
            "/login", data={"username": "tina.trainer", "password": "a trainer passphrase", "csrf_token": csrf}
        )
        queue = browser.get("/dashboard/review")
        assert queue.status_code == 200 and "when does my pension start" in queue.text
        form_csrf = re.search(r'name="csrf_token" value="([^"]+)"', queue.text).group(1)
        label = {"call_sid": sid, "turn": "1", "intent": "ask_pension"}
        forged = browser.post("/dashboard/review/label", data=label | {"csrf_token": "forged"})
        assert forged.status_code == 403
        done = browser.post("/dashboard/review/label", data=label | {"csrf_token": form_csrf}, follow_redirects=True)
        assert "added to ask_pension in reviewed.yml" in done.text
        assert "when does my pension start" not in done.text.split("added to")[1]  # it left the queue
    reviewed = yaml.safe_load((tmp_path / "nlu" / "data" / "reviewed.yml").read_text())
    assert reviewed["nlu"] == [{"intent": "ask_pension", "examples": "- when does my pension start\n"}]
    assert "ask_pension" in (tmp_path / "dialogues" / "domain.yml").read_text()


def test_servers_start_with_the_last_model_that_passed_the_gates(tmp_path):
    """A trainer's label changes the data; until `helpline nlu retrain` passes, servers keep the approved model."""
    from foundation.settings import Settings
    from helpline.training import approve, model_path, serving_model

    settings = Settings(data_dir=tmp_path)
    settings.models_dir.mkdir(parents=True)
    current = model_path(settings)
    assert serving_model(settings) == current  # a fresh set-up: nothing approved yet
    older = settings.models_dir / "helpline-0123456789abcdef.tar.gz"
    older.write_bytes(b"model")
    approve(settings, older)
    assert serving_model(settings) == older  # the data changed since: the approved model serves
    approve(settings, current)
    assert serving_model(settings) == current
    older.unlink()
    approve(settings, older)
    assert serving_model(settings) == current  # an approved model that is gone is no choice


def test_training_a_new_model_keeps_the_approved_one_it_does_not_replace_yet(tmp_path, capsys):
    """Servers are laid out with the approved model before a start trains the current one: training must not delete
    it (a start after a data change served a model file it had just removed, and Rasa came up with no model)."""
    from foundation.settings import Settings
    from helpline.training import approve, model_path, serving_model, train

    settings = Settings(data_dir=tmp_path, model_cache_dir=tmp_path / "cache")
    settings.models_dir.mkdir(parents=True)
    current = model_path(settings)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / current.name).write_bytes(b"the current data's model")  # trained before: no Rasa needed
    approved, stale = (settings.models_dir / f"helpline-{n * 16}.tar.gz" for n in "ab")
    approved.write_bytes(b"model that passed the gates")
    stale.write_bytes(b"model nobody serves")
    approve(settings, approved)
    assert train(settings) == current and current.read_bytes() == b"the current data's model"
    assert approved.exists() and not stale.exists()
    assert serving_model(settings) == approved  # until the new model passes the gates
