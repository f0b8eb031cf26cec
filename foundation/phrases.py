"""Whole-phrase matching in a caller's words: case, hyphens and punctuation ignored ("E-ID" is "eid", "log-in" is
"login"), letters of any language kept. Used by the never-dismiss policy (dialogues/policy.py) and by the scoring of
key words in transcripts (nlu/asr_context.py). Runs in both venvs."""

from __future__ import annotations

import re
from collections.abc import Iterable


def _flat(text: str) -> str:
    return " " + re.sub(r"[^\w]+", " ", text.lower().replace("-", "")).strip() + " "


def phrases_in(text: str, phrases: Iterable[str]) -> list[str]:
    """The ``phrases`` that ``text`` holds as whole words, in the order given."""
    flat = _flat(text)
    return [phrase for phrase in phrases if _flat(phrase) in flat]
