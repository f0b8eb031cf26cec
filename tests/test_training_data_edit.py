"""Reviewed turns go into the training data by a YAML round trip: comments, order and block style are kept."""

import shutil
from pathlib import Path

import pytest
import yaml

from nlu.training_data import TrainingDataError, add_example, known_intents

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def data(tmp_path):
    shutil.copytree(REPO / "nlu" / "data", tmp_path / "nlu")
    shutil.copy(REPO / "dialogues" / "domain.yml", tmp_path / "domain.yml")
    return tmp_path / "nlu", tmp_path / "domain.yml"


def test_an_example_is_appended_to_its_intent_and_nothing_else_changes(data):
    nlu_dir, domain = data
    before = (nlu_dir / "topics.yml").read_text()
    written = add_example("ask_payment_dates", "when is the money [personnummer] coming", nlu_dir, domain)
    after = written.read_text()
    assert written.name == "topics.yml"  # the intent's main block (entities.yml holds a few more of its examples)
    added = [line for line in after.splitlines() if line not in before.splitlines()]
    assert added == ["    - when is the money personnummer coming"]
    assert len(after.splitlines()) == len(before.splitlines()) + 1  # comments, order and layout all kept
    blocks = {b["intent"]: b["examples"] for b in yaml.safe_load(after)["nlu"]}
    assert blocks["ask_payment_dates"].rstrip().endswith("- when is the money personnummer coming")
    with pytest.raises(TrainingDataError, match="already has"):
        add_example("ask_payment_dates", "When is the money personnummer coming", nlu_dir, domain)


def test_a_new_intent_gets_its_own_block_and_a_place_in_the_domain(data):
    nlu_dir, domain = data
    comment = next(line for line in domain.read_text().splitlines() if "#" in line)
    written = add_example("ask_pension_age", "when can i retire", nlu_dir, domain)
    assert written.name == "reviewed.yml"
    assert yaml.safe_load(written.read_text())["nlu"] == [
        {"intent": "ask_pension_age", "examples": "- when can i retire\n"}
    ]
    assert "ask_pension_age" in known_intents(domain) and comment in domain.read_text()
    add_example("ask_pension_age", "what is the pension age", nlu_dir, domain)
    assert yaml.safe_load(written.read_text())["nlu"][0]["examples"].count("- ") == 2


@pytest.mark.parametrize(
    "intent, text", [("Bad Name", "hello"), ("ask_payment_dates", ""), ("ask_payment_dates", "x" * 301)]
)
def test_bad_input_is_refused_and_nothing_is_written(data, intent, text):
    nlu_dir, domain = data
    before = {p.name: p.read_text() for p in nlu_dir.glob("*.yml")}
    with pytest.raises(TrainingDataError):
        add_example(intent, text, nlu_dir, domain)
    assert {p.name: p.read_text() for p in nlu_dir.glob("*.yml")} == before
