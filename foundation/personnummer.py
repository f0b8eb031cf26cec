"""Swedish personal identity numbers (personnummer) and coordination numbers (samordningsnummer).

Pure and dependency-free: used by the Rasa NLU component (Python 3.10) and by the product's redaction (3.11).
A number is YYMMDD-NNNC or YYYYMMDDNNNC (``+`` instead of ``-`` after 100 years of age); C is the Luhn check digit
over the ten digits YYMMDDNNN; a coordination number adds 60 to the day. Only checksum-valid numbers count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Ten or twelve digits, optionally split by one space, hyphen or plus: "811218-9876", "19811218 9876",
# "8112189876", "19 81 12 18 98 76" (ASR output of spoken digit pairs).
_CANDIDATE = re.compile(r"(?<![\d])(?:\d[ \-+]?){9,11}\d(?![\d])")


@dataclass(frozen=True)
class PersonalId:
    start: int
    end: int
    digits: str  # the ten digits YYMMDDNNNC
    kind: str  # "personnummer" or "samordningsnummer"


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(digits):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def classify(digits: str) -> str | None:
    """'personnummer' / 'samordningsnummer' for a valid 10- or 12-digit number, else None."""
    if len(digits) == 12:
        if digits[:2] not in ("18", "19", "20"):
            return None
        digits = digits[2:]
    if len(digits) != 10 or not digits.isdigit():
        return None
    month, day = int(digits[2:4]), int(digits[4:6])
    if not 1 <= month <= 12:
        return None
    if 1 <= day <= 31:
        kind = "personnummer"
    elif 61 <= day <= 91:
        kind = "samordningsnummer"
    else:
        return None
    return kind if luhn_valid(digits) else None


def find_personal_ids(text: str) -> list[PersonalId]:
    """Every checksum-valid personal identity or coordination number in ``text``."""
    found = []
    for match in _CANDIDATE.finditer(text):
        raw = match.group(0)
        digits = re.sub(r"\D", "", raw)
        kind = classify(digits)
        if kind is not None:
            found.append(PersonalId(match.start(), match.end(), digits[-10:], kind))
    return found
