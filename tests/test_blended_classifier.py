"""The Rasa pipeline's BlendedIntentClassifier, trained, stored, loaded and run where Rasa runs (the Rasa venv)."""

import json

import pytest

from tests.conftest import run_in_rasa_venv

SCRIPT = """
import json, sys, tempfile
from pathlib import Path
import numpy as np
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from nlu.rasa_components import BlendedIntentClassifier

def message(text, vector, intent=None, ranking=None):
    m = Message(data={"text": text, **({"intent": intent} if intent else {})})
    m.add_features(Features(np.array([vector], dtype=np.float32), FEATURE_TYPE_SENTENCE, TEXT, "sentence_encoder"))
    if ranking:
        m.set("intent_ranking", [{"name": n, "confidence": c} for n, c in ranking.items()])
        m.set("intent", {"name": max(ranking, key=ranking.get), "confidence": max(ranking.values())})
    return m

rng = np.random.default_rng(0)
examples = []
for intent, axis in (("ask_payment_dates", 0), ("payment_problem", 1), ("greet", 2)):
    for n in range(15):
        v = rng.normal(0, 0.2, 6); v[axis] += 1
        examples.append(message(f"{intent} {n}", v / np.linalg.norm(v), intent))
config = {"probe_weight": 0.5, "probe_temperature": 0.5}
out = {}
with tempfile.TemporaryDirectory() as folder:
    storage, resource = LocalModelStorage(Path(folder)), Resource("blend")
    trained = BlendedIntentClassifier.create(config, storage, resource, None)
    trained.train(TrainingData(examples))
    loaded = BlendedIntentClassifier.load(config, storage, resource, None)
    # DIET is sure of a payment problem; the sentence vector is squarely a payment date.
    diet = {"payment_problem": 0.8, "ask_payment_dates": 0.2}
    for name, component in (("trained", trained), ("loaded", loaded)):
        turn = component.process([message("when do you pay", np.eye(6)[0], ranking=diet)])[0]
        out[name] = {"intent": turn.get("intent"), "ranking": turn.get("intent_ranking")}
    # The same with a quarter of the probe from the nearest examples' vote: the model keeps their vectors for it.
    nn_config, nn_resource = {**config, "probe_neighbours": 0.25}, Resource("blend-nn")
    BlendedIntentClassifier.create(nn_config, storage, nn_resource, None).train(TrainingData(examples))
    nn_loaded = BlendedIntentClassifier.load(nn_config, storage, nn_resource, None)
    turn = nn_loaded.process([message("when do you pay", np.eye(6)[0], ranking=diet)])[0]
    out["nn_loaded"] = {"intent": turn.get("intent"), "ranking": turn.get("intent_ranking")}
    try:
        BlendedIntentClassifier.create({"probe_neighbours": 2}, storage, resource, None)
    except ValueError as e:
        out["bad_neighbours"] = str(e)
    bare = Message(data={"text": "", "intent": {"name": "greet", "confidence": 1.0}})
    out["no_vector"] = loaded.process([bare])[0].get("intent")
    try:
        BlendedIntentClassifier.create({"probe_weight": 1.5}, storage, resource, None)
    except ValueError as e:
        out["bad_weight"] = str(e)
print(json.dumps(out))
"""


@pytest.mark.rasa  # runs in the Rasa venv (imports Rasa: seconds)
def test_the_blend_is_trained_stored_and_overrules_diet_when_the_probe_is_surer():
    done = run_in_rasa_venv(SCRIPT)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    trained, loaded = out["trained"], out["loaded"]
    assert trained == loaded  # the stored probe is the trained one
    assert trained["intent"]["name"] == "ask_payment_dates"
    ranking = {r["name"]: r["confidence"] for r in trained["ranking"]}
    assert set(ranking) == {"ask_payment_dates", "payment_problem", "greet"}
    assert sum(ranking.values()) == pytest.approx(1.0, abs=1e-6)
    # Half of DIET's 0.2 plus half of a probe that is nearly sure.
    assert 0.55 < ranking["ask_payment_dates"] < 0.6
    assert trained["intent"]["confidence"] == ranking["ask_payment_dates"]
    assert out["no_vector"] == {"name": "greet", "confidence": 1.0}  # nothing to read: DIET's reading stands
    assert "probe_weight must be 0..1" in out["bad_weight"]
    # Every training example near the turn is a payment date: the vote is surer than the regression alone.
    nearest = out["nn_loaded"]
    assert nearest["intent"]["name"] == "ask_payment_dates"
    assert ranking["ask_payment_dates"] < nearest["intent"]["confidence"] <= 0.5 * 0.2 + 0.5 * 1.0 + 1e-6
    assert "probe_neighbours must be 0..1" in out["bad_neighbours"]
