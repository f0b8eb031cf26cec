"""Masking personal data before anything is stored or logged. Pure standard library (the Rasa venv imports it too).

Masked: checksum-valid Swedish personal identity and coordination numbers, payment card numbers (Luhn),
bank accounts (IBAN with its mod-97 check; Swedish clearing + account numbers; any number said after "account",
"bankgiro" ...), e-mail addresses and phone numbers. A masked span becomes a bracketed label, e.g. "[personnummer]".
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re

from foundation.personnummer import find_personal_ids, luhn_valid

_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
# Country code, check digits, then the account in groups (usually of four) that may be followed by ordinary words.
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){3,8}\b", re.IGNORECASE)
# Digit groups split by spaces, hyphens or commas, as account numbers are written and as ASR writes spoken digits.
# (A comma only after a Swedbank-style "8327-9," clearing number; elsewhere it separates numbers.)
_DIGIT_RUN = re.compile(r"(?<![\w+])(?:\d{4}-\d, ?)?\d+(?: ?- ?\d+| \d+)*(?![\w])")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?!\d)")
# A number said right after one of these words is an account number, whatever its shape (matched against the text
# just before the number).
_ACCOUNT_WORDS = re.compile(
    r"\b(?:bank ?account|account|konto(?:nummer)?|bankgiro|plusgiro|clearing)(?: (?:number|no\.?|nr))?"
    r"(?: (?:is|was|it's|är))?[ :]*$",
    re.IGNORECASE,
)
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
    text = _mask_bank_accounts(text)
    return _PHONE.sub(lambda m: "[phone number]" if 8 <= len(re.sub(r"\D", "", m.group(0))) <= 13 else m.group(0), text)


def _iban_valid(candidate: str) -> bool:
    iban = candidate.replace(" ", "").upper()
    if not 15 <= len(iban) <= 34:
        return False
    digits = "".join(str(int(ch, 36)) for ch in iban[4:] + iban[:4])
    return int(digits) % 97 == 1


def _iban_prefix(candidate: str) -> str | None:
    """The longest leading run of groups of ``candidate`` that is a valid IBAN ("SE45 5000 ... 7466 ok" -> "SE45 ...
    7466")."""
    groups = candidate.split(" ")
    for end in range(len(groups), 0, -1):
        if _iban_valid(" ".join(groups[:end])):
            return " ".join(groups[:end])
    return None


def _mask_bank_accounts(text: str) -> str:
    ibans = []
    for m in _IBAN.finditer(text):
        found = _iban_prefix(m.group(0))
        if found is not None:
            ibans.append((m.start(), m.start() + len(found), "bank account"))
    text = _replace_spans(text, ibans)
    spans = []
    for m in _DIGIT_RUN.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if _ISO_DATE.match(m.group(0)):
            continue
        after_keyword = _ACCOUNT_WORDS.search(text[max(0, m.start() - 40) : m.start()]) is not None
        first_group = re.match(r"\d+", m.group(0))
        # Swedish accounts: a 4-digit clearing number (Swedbank adds a fifth after a hyphen) and 7-10 more digits.
        clearing_shape = (
            first_group is not None and len(first_group.group(0)) == 4 and not digits.startswith("00")
        ) and 11 <= len(digits) <= 16
        if (after_keyword and len(digits) >= 5) or clearing_shape:
            spans.append((m.start(), m.end(), "bank account"))
    return _replace_spans(text, spans)


class RedactingFilter(logging.Filter):
    """Masks personal data in every log record before a handler writes it (log lines are stored too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def mask_phone_number(number: str) -> str:
    """A caller's number for the record: the country prefix and the last two digits, enough to recognise a repeat
    caller by eye but not to dial."""
    digits = [c for c in number if c.isdigit()]
    if len(digits) < 6:
        return "*" * len(digits)
    prefix = "+" + "".join(digits[:2]) if number.startswith("+") else "".join(digits[:2])
    return prefix + "*" * (len(digits) - 4) + "".join(digits[-2:])


def caller_key(number: str, secret: str) -> str:
    """A keyed hash of a caller's number: the same number gives the same key (repeat callers are recognised), and
    the number cannot be read back from it. Empty for a withheld number."""
    digits = "".join(c for c in number if c.isdigit())
    if not digits:
        return ""
    return hmac.new(secret.encode(), digits.encode(), hashlib.sha256).hexdigest()
