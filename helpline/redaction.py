"""Masking personal data before anything is stored or logged. Pure standard library (the Rasa venv imports it too).

Masked: checksum-valid Swedish personal identity and coordination numbers, payment card numbers (Luhn),
e-mail addresses and phone numbers. A masked span becomes a bracketed label, e.g. "[personnummer]".
"""

from __future__ import annotations

import re

from nlu.personnummer import find_personal_ids, luhn_valid

_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
# International (+46 70 123 45 67) or national (070-123 45 67) numbers: 8 to 13 digits in total.
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ -]?|0)\d{1,3}(?:[ -]?\d{2,4}){2,4}(?!\d)")


def _replace_spans(text: str, spans: list[tuple[int, int, str]]) -> str:
    for start, end, label in sorted(spans, reverse=True):
        text = text[:start] + f"[{label}]" + text[end:]
    return text


def redact_text(text: str) -> str:
    """``text`` with personal identity numbers, card numbers, e-mail addresses and phone numbers masked."""
    if not text:
        return text
    text = _replace_spans(text, [(p.start, p.end, p.kind) for p in find_personal_ids(text)])
    text = _EMAIL.sub("[email]", text)
    cards = [
        (m.start(), m.end(), "card number")
        for m in _CARD.finditer(text)
        if 13 <= len(digits := re.sub(r"\D", "", m.group(0))) <= 19 and luhn_valid(digits)
    ]
    text = _replace_spans(text, cards)
    return _PHONE.sub(lambda m: "[phone number]" if 8 <= len(re.sub(r"\D", "", m.group(0))) <= 13 else m.group(0), text)


def mask_phone_number(number: str) -> str:
    """A caller's number for the record: the country prefix and the last two digits, enough to recognise a repeat
    caller by eye but not to dial."""
    digits = [c for c in number if c.isdigit()]
    if len(digits) < 6:
        return "*" * len(digits)
    prefix = "+" + "".join(digits[:2]) if number.startswith("+") else "".join(digits[:2])
    return prefix + "*" * (len(digits) - 4) + "".join(digits[-2:])
