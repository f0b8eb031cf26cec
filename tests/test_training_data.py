"""The training data as a trainer maintains it: coverage of DOMAIN.md ids and held-out data kept apart."""

from pathlib import Path

import pytest

from foundation.routing_table import RoutingTable
from nlu.training_data import training_examples as read_training_examples

ROOT = Path(__file__).resolve().parents[1]
DOMAIN_IDS = {
    "topics": {
        "payment_dates", "opening_hours", "apply_parental_benefit", "apply_sickness_benefit",
        "apply_housing_allowance", "child_allowance", "required_documents", "report_change", "processing_times",
        "login_help",
    },
    "queues": {"family", "sickness", "housing", "appeals", "payments_debt", "fraud", "general"},
    "smalltalk": {"greet", "goodbye", "thanks", "affirm", "deny", "repeat", "bot_challenge", "out_of_scope"},
}  # fmt: skip


def training_examples() -> dict[str, list[str]]:
    examples: dict[str, list[str]] = {}
    for intent, text in read_training_examples():
        examples.setdefault(intent, []).append(text.lower())
    return examples


def test_routing_table_uses_exactly_the_domain_ids():
    routing = RoutingTable.load()
    assert set(routing.answers.values()) == DOMAIN_IDS["topics"]
    assert set(routing.routes.values()) == DOMAIN_IDS["queues"]
    assert set(routing.smalltalk.values()) == DOMAIN_IDS["smalltalk"]
    assert routing.fallback_queue == "general"


def test_every_routed_intent_has_at_least_25_training_examples():
    routing = RoutingTable.load()
    examples = training_examples()
    intents = set(routing.answers) | set(routing.routes) | set(routing.smalltalk)
    short = {i: len(examples.get(i, [])) for i in intents if len(examples.get(i, [])) < 25}
    assert not short, short


def test_a_model_trained_in_another_checkout_comes_from_the_cache_whole(tmp_path):
    from foundation.settings import Settings
    from helpline.training import DOMAIN, MODEL_CODE, NLU_CONFIG, model_path, train, training_inputs

    settings = Settings(data_dir=tmp_path / "var", model_cache_dir=tmp_path / "cache")
    cached = settings.model_cache_dir / model_path(settings).name  # named by everything that shapes the model
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"a model trained on exactly this data")
    served = train(settings)  # no Rasa run: the cached model is the one for this data
    assert served == model_path(settings) and served.read_bytes() == cached.read_bytes()
    assert [p.name for p in served.parent.iterdir()] == [served.name], "no partial copy left behind"
    # The name covers our pipeline code and the Rasa venv's lock as well as the data, so a cached model is never
    # taken for a pipeline it was not trained with.
    assert set(MODEL_CODE) | {NLU_CONFIG, DOMAIN} <= set(training_inputs())


def test_the_routing_table_is_checked_once_where_it_is_read(tmp_path):
    from foundation.routing_table import RoutingTable, RoutingTableError

    table = RoutingTable.load()
    assert str(table.decision_for("appeal_decision")) == "route:appeals" and table.decision_for("no_such") is None
    text = table.source.read_text(encoding="utf-8")
    wrong_queue = tmp_path / "routing.yml"
    wrong_queue.write_text(text.replace("appeal_decision: appeals", "appeal_decision: complaints"), encoding="utf-8")
    with pytest.raises(RoutingTableError, match="queues the domain does not have: complaints"):
        RoutingTable.load(wrong_queue)
    missing = tmp_path / "short.yml"
    missing.write_text("answers: {}\n", encoding="utf-8")
    with pytest.raises(RoutingTableError, match="short.yml: KeyError"):
        RoutingTable.load(missing)
