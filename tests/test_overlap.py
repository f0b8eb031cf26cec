"""`helpline nlu near`: a new set of caller turns, or new training examples, checked against what they must stay
apart from by the NLU's real sentence encoder, without ever showing a held-out turn."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from helpline.cli import main
from nlu.caller_turns import HELDOUT_TURNS, load_turns
from nlu.overlap import OverlapError, file_sentences, normalised, too_close
from nlu.sentence_encoder import SentenceEncoder
from nlu.training_data import training_examples

pytestmark = pytest.mark.models  # the sentence encoder judges closeness


class RememberingEncoder:
    """The NLU's sentence encoder, each text encoded once for the whole module (the sets are compared in every
    test)."""

    def __init__(self) -> None:
        self.encoder = SentenceEncoder()
        self.known: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str]) -> np.ndarray:
        new = [t for t in dict.fromkeys(texts) if t not in self.known]
        if new:
            self.known.update(zip(new, self.encoder.encode(new), strict=True))
        return np.stack([self.known[t] for t in texts])


@pytest.fixture(scope="module")
def encoder() -> RememberingEncoder:
    return RememberingEncoder()


def write_turns(path: Path, rows: dict[str, list[list[str]]]) -> Path:
    path.write_text(yaml.safe_dump({"version": 1, "turns": rows}), encoding="utf-8")
    return path


def test_a_new_set_is_told_which_turns_copy_training_or_held_out_sentences(tmp_path, encoder):
    example = training_examples()[0][1]
    held_out = load_turns(HELDOUT_TURNS)[0].text
    unrelated = "my neighbour's parrot sings opera at midnight on tuesdays"
    new_set = write_turns(
        tmp_path / "new.yml",
        {"greet": [["plain", example.upper()], ["plain", held_out], ["plain", unrelated]]},
    )

    found = too_close(new_set, encoder)

    assert found.kind == "turns" and found.checked == 3 and found.bar == 0.93
    assert {"training", "heldout", "dev", "fresh", "trainer"} <= set(found.compared)
    by_group = {(c.against, c.text): c for c in found.close}
    copied = by_group[("training", normalised(example))]
    assert copied.similarity > 0.99 and copied.nearest == normalised(example)
    hidden = by_group[("heldout", normalised(held_out))]
    assert hidden.nearest is None  # the held-out turn itself is never handed out
    assert all(c.text != unrelated for c in found.close)


def test_new_training_examples_are_checked_against_the_sets_only_at_the_rounds_bar(tmp_path, encoder):
    held_out = load_turns(HELDOUT_TURNS)[1].text
    examples = tmp_path / "round.yml"
    examples.write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n'
        f"    - {held_out}\n    - my neighbour's parrot sings opera at midnight on tuesdays\n",
        encoding="utf-8",
    )

    found = too_close(examples, encoder)

    assert found.kind == "examples" and found.checked == 2 and found.bar == 0.85
    assert "training" not in found.compared  # examples may reword one another
    assert [(c.text, c.nearest) for c in found.close if c.against == "heldout"] == [(normalised(held_out), None)]
    assert all("parrot" not in c.text for c in found.close)


def test_the_command_names_what_is_too_close_and_fails(tmp_path, capsys):
    held_out = load_turns(HELDOUT_TURNS)[2].text
    examples = tmp_path / "round.yml"
    examples.write_text(f'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - {held_out}\n', encoding="utf-8")

    assert main(["nlu", "near", str(examples)]) == 1

    out = capsys.readouterr().out
    assert f"{examples}: 1 examples against heldout (331)" in out
    lines = out.splitlines()
    held_out_lines = [line for line in lines[1:-1] if line.split()[1] == "heldout"]
    assert len(held_out_lines) == 1 and held_out_lines[0].endswith("(a held-out turn: not shown)")
    assert lines[-1] == f"{len(lines) - 2} too close"  # a line per closeness, between the heading and the count


def test_a_file_of_neither_kind_is_refused_by_name(tmp_path):
    other = tmp_path / "other.yml"
    other.write_text("stories: []\n", encoding="utf-8")
    with pytest.raises(OverlapError, match="other.yml: holds neither"):
        file_sentences(other)
