"""The numpy MiniLM sentence encoder that feeds the NLU model, run where Rasa runs (the Rasa venv)."""

import json

from tests.conftest import run_in_rasa_venv

PROBE = """
import json
from nlu.sentence_encoder import SentenceEncoder
encoder = SentenceEncoder()
texts = [
    "when will my money be paid",
    "on which day does the benefit arrive in my bank account",
    "i want to appeal against the decision",
    "what's the weather like tomorrow",
]
vectors = encoder.encode(texts)
spans = [(0, 4), (5, 9), (10, 12)]
tokens, sentence = encoder.token_features("when will my money be paid", spans)
print(json.dumps({
    "similarity": (vectors @ vectors.T).tolist(),
    "norms": [float((v * v).sum()) for v in vectors],
    "token_shape": list(tokens.shape),
}))
"""


def test_paraphrases_are_closer_than_unrelated_turns():
    done = run_in_rasa_venv(PROBE, timeout_s=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    sim = result["similarity"]
    assert all(abs(n - 1.0) < 1e-4 for n in result["norms"])
    # Two ways of asking for the payment day are closer to each other than to an appeal or the weather.
    assert sim[0][1] > sim[0][2] + 0.15 and sim[0][1] > sim[0][3] + 0.15
    assert result["token_shape"] == [3, 384]
