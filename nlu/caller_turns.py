"""Evaluation sets of caller turns: the frozen held-out set (nlu/heldout/callers.yml) and the dev set for tuning
(nlu/dev/callers.yml), one format, one loader.

A turn has the intent it should get, its kind (plain, story, indirect, ...) and the other intents that are also a
right reading of it (a turn with two requests may be decided either way). Runs in both venvs: no 3.11-only syntax.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from foundation.files import file_sha256

NLU_DIR = Path(__file__).resolve().parent
HELDOUT_TURNS = NLU_DIR / "heldout" / "callers.yml"
DEV_TURNS = NLU_DIR / "dev" / "callers.yml"
FRESH_DEV_TURNS = NLU_DIR / "dev" / "fresh.yml"  # dev turns no training example was written from
TRAINER_DEV_TURNS = NLU_DIR / "dev" / "trainer.yml"  # the 2026-12-07 training round's dev turns, never trained on
SETS = {"heldout": HELDOUT_TURNS, "dev": DEV_TURNS, "fresh": FRESH_DEV_TURNS, "trainer": TRAINER_DEV_TURNS}
UNTRAINED_DEV_SETS = {"fresh": FRESH_DEV_TURNS, "trainer": TRAINER_DEV_TURNS}  # no example written from them
KINDS = ("plain", "story", "indirect", "complaint", "two", "hesitation", "describe")


class CallerTurnsError(ValueError):
    """The file is not a valid set of caller turns; the message names the turn."""


@dataclass(frozen=True)
class CallerTurn:
    """One caller turn of an evaluation set."""

    id: str
    intent: str
    kind: str
    text: str
    also: tuple[str, ...] = ()

    @property
    def intents(self) -> tuple[str, ...]:
        """Every intent that is a right reading of the turn, the labelled one first."""
        return (self.intent, *self.also)


def load_turns(path: Path) -> list[CallerTurn]:
    """The turns of ``path``, ids ``<folder>-<intent>-<n>`` stable while the file is unchanged (the folder, not the
    file: the dev sets' ids repeat across their three files, and the spoken benches seed each turn's line by its id,
    so renaming them would move every spoken figure)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    turns: list[CallerTurn] = []
    prefix = path.parent.name
    for intent, rows in (data.get("turns") or {}).items():
        for n, row in enumerate(rows or [], 1):
            where = f"{path.name}: {intent} #{n}"
            if not isinstance(row, list) or len(row) not in (2, 3):
                raise CallerTurnsError(f"{where}: a turn is [kind, text] or [kind, text, [intents]]")
            kind, text = row[0], row[1]
            if kind not in KINDS:
                raise CallerTurnsError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
            if not isinstance(text, str) or not text.strip():
                raise CallerTurnsError(f"{where}: the text is empty")
            also = tuple(row[2]) if len(row) == 3 else ()
            turns.append(CallerTurn(f"{prefix}-{intent}-{n}", str(intent), kind, " ".join(text.split()), also))
    if not turns:
        raise CallerTurnsError(f"{path}: no turns")
    return turns


def turns_of_rows(path: Path, rows: list[tuple[str, str]]) -> dict[str, CallerTurn]:
    """The turns of ``path`` by id, for rows a spoken bench saved, each (turn id, its set's file name; "" in rows saved
    before they named it). Rows of another set are refused: the dev sets' ids repeat across their files, so an id
    alone would judge one set's transcripts by another's labels."""
    turns = {turn.id: turn for turn in load_turns(path)}
    unknown = sorted({turn_id for turn_id, _ in rows} - turns.keys())
    other = sorted({name for _, name in rows if name and name != path.name})
    if unknown or other:
        held = ", ".join(other) or f"turns {path} does not hold ({', '.join(unknown[:3])})"
        raise CallerTurnsError(f"the rows are of {held}, not of {path}")
    return turns


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes: the frozen held-out set is checked against its recorded digest."""
    return file_sha256(path)


def sample(turns: list[CallerTurn], per_intent: int) -> list[CallerTurn]:
    """A fixed sample (the same every run): the first ``per_intent`` turns of each intent, in file order."""
    taken: dict[str, int] = {}
    chosen = []
    for turn in turns:
        if taken.get(turn.intent, 0) < per_intent:
            taken[turn.intent] = taken.get(turn.intent, 0) + 1
            chosen.append(turn)
    return chosen
