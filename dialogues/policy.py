"""Pure dialogue policy, shared by the action server and the tests (no Rasa imports): when a turn may be dismissed
as out of scope, and which matters to offer a caller whose turn fits no intent well."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from foundation.phrases import phrases_in

AGENCY_WORDS = Path(__file__).resolve().parent / "agency_words.yml"


@cache
def agency_words(language: str = "en") -> tuple[str, ...]:
    data = yaml.safe_load(AGENCY_WORDS.read_text(encoding="utf-8")) or {}
    words = data.get(language) or data.get("en") or []
    return tuple(" ".join(str(w).lower().split()) for w in words)


def concerns_agency(text: str, language: str = "en") -> bool:
    """True when ``text`` speaks of the agency's benefits, payments, decisions, letters, accounts or identity:
    such a turn is never dismissed as out of scope, whatever the classifier made of it."""
    return bool(phrases_in(text, agency_words(language)))


def likeliest_matters(ranking: list[dict[str, Any]], matters: dict[str, str], n: int = 2) -> list[str]:
    """The ``n`` likeliest intents of ``ranking`` that the assistant can name to the caller (``matters``: intent ->
    how it is said)."""
    return [str(r["name"]) for r in ranking if r.get("name") in matters][:n]
