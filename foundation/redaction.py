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
from collections.abc import Callable

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
# A number of six digits or more said right after one of these words is a personal number even when it fails the
# checksum (a recogniser that mishears one digit makes it fail, and the rest is still the caller's number).
_PERSONAL_NUMBER_WORDS = re.compile(
    r"\b(?:personal (?:identity |id )?number|personnummer|social security number|coordination number"
    r"|samordningsnummer|id number)(?: (?:is|was|it's|är))?[ :]*$",
    re.IGNORECASE,
)
# International (+46 70 123 45 67) or national (070-123 45 67) numbers: 8 to 13 digits in total.
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ -]?|0)\d{1,3}(?:[ -]?\d{2,4}){2,4}(?!\d)")


class _Masking:
    """Text being masked pass by pass, each character knowing the span of the original text it stands for (a label
    stands for the whole span it replaced): later passes see earlier labels, and every span is still found in the
    original text."""

    def __init__(self, text: str):
        self.text = text
        self._origin = [(i, i + 1) for i in range(len(text))]
        self.spans: list[tuple[int, int, str]] = []  # (start, end, label) in the original text

    def replace(self, spans: list[tuple[int, int, str]]) -> None:
        for start, end, label in sorted(spans, reverse=True):
            first, last = self._origin[start][0], self._origin[end - 1][1]
            self.text = self.text[:start] + f"[{label}]" + self.text[end:]
            self._origin[start:end] = [(first, last)] * (len(label) + 2)
            self.spans = [s for s in self.spans if s[1] <= first or s[0] >= last] + [(first, last, label)]

    def substitute(self, pattern: re.Pattern[str], label: str, keep: Callable[[str], bool] = lambda _: True) -> None:
        self.replace([(m.start(), m.end(), label) for m in pattern.finditer(self.text) if keep(m.group(0))])


def _card_number(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _masked(text: str) -> _Masking:
    masking = _Masking(text)
    if not text:
        return masking
    masking.replace([(p.start, p.end, p.kind) for p in find_personal_ids(masking.text)])
    masking.replace(_personal_numbers_misheard(masking.text))
    masking.substitute(_EMAIL, "email")
    masking.substitute(_CARD, "card number", _card_number)
    _mask_bank_accounts(masking)
    masking.substitute(_PHONE, "phone number", lambda m: 8 <= len(re.sub(r"\D", "", m)) <= 13)
    return masking


def redact_text(text: str) -> str:
    """``text`` with personal identity numbers, card numbers, e-mail addresses and phone numbers masked."""
    return _masked(text).text


def personal_spans(text: str) -> list[tuple[int, int, str]]:
    """Where ``redact_text`` masks ``text``: (start, end, label) in ``text`` itself, in order (a recording silences
    the audio of these words)."""
    return sorted(_masked(text).spans)


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


def _mask_bank_accounts(masking: _Masking) -> None:
    ibans = []
    for m in _IBAN.finditer(masking.text):
        found = _iban_prefix(m.group(0))
        if found is not None:
            ibans.append((m.start(), m.start() + len(found), "bank account"))
    masking.replace(ibans)
    spans = _numbers_after(masking.text, _ACCOUNT_WORDS, 5, "bank account")
    for m in _DIGIT_RUN.finditer(masking.text):
        digits = re.sub(r"\D", "", m.group(0))
        first_group = re.match(r"\d+", m.group(0))
        # Swedish accounts: a 4-digit clearing number (Swedbank adds a fifth after a hyphen) and 7-10 more digits.
        clearing_shape = (
            first_group is not None and len(first_group.group(0)) == 4 and not digits.startswith("00")
        ) and 11 <= len(digits) <= 16
        if clearing_shape and not _ISO_DATE.match(m.group(0)) and all(m.start() != s[0] for s in spans):
            spans.append((m.start(), m.end(), "bank account"))
    masking.replace(spans)


def _numbers_after(text: str, keywords: re.Pattern[str], min_digits: int, label: str) -> list[tuple[int, int, str]]:
    """Every digit run (not a date) of at least ``min_digits`` digits said right after ``keywords``."""
    spans = []
    for m in _DIGIT_RUN.finditer(text):
        if _ISO_DATE.match(m.group(0)) or len(re.sub(r"\D", "", m.group(0))) < min_digits:
            continue
        if keywords.search(text[max(0, m.start() - 40) : m.start()]) is not None:
            spans.append((m.start(), m.end(), label))
    return spans


NUMBER_GAP_WORDS = 2  # words a recogniser writes inside one spoken number ("90 million 800 or 11200")
# Number words, counted as a digit each: a recogniser writes some spoken numbers in words ("one hundred and twenty
# three"). Not "oh" (English) or "en"/"ett" (Swedish articles): too common as other words.
_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million double triple "
    "noll två tre fyra fem sex sju åtta nio tio elva tolv tjugo trettio fyrtio femtio sextio sjuttio åttio nittio "
    "hundra tusen miljon"
)
NUMBER_WORDS = frozenset(_NUMBER_WORDS.split())


def _digits_said(word: str) -> int:
    digits = sum(c.isdigit() for c in word)
    return digits or int(word.lower().strip(".,;:?!-\"'") in NUMBER_WORDS)


def spoken_numbers(text: str) -> list[tuple[int, int, int]]:
    """Each number as a recogniser writes a spoken one: its digit groups and number words joined across up to two
    other words between them ("90 million 800 or 11200, 80-9,876"), as (start, end, digits; a number word counts
    one)."""
    tokens = [(m.start(), m.end(), _digits_said(m.group(0))) for m in re.finditer(r"\S+", text)]
    numbers: list[tuple[int, int, int]] = []
    group: list[tuple[int, int, int]] = []
    gap = 0
    for token in [*tokens, (len(text), len(text), 0)]:
        if token[2]:
            group, gap = [*group, token], 0
            continue
        gap += 1
        if group and (gap > NUMBER_GAP_WORDS or token[0] == len(text)):
            end = group[-1][0] + len(text[group[-1][0] : group[-1][1]].rstrip(".,;:?!"))  # not the sentence's stop
            numbers.append((group[0][0], end, sum(t[2] for t in group)))
            group = []
    return numbers


def _personal_numbers_misheard(text: str) -> list[tuple[int, int, str]]:
    """A number of six digits or more said right after personal-number words, however the recogniser wrote it."""
    return [
        (start, end, "personnummer")
        for start, end, digits in spoken_numbers(text)
        if digits >= 6
        and _PERSONAL_NUMBER_WORDS.search(text[max(0, start - 40) : start]) is not None
        and not _ISO_DATE.fullmatch(text[start:end])
    ]


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


# The NLU entity saying an identity number was given, its value only the kind (nlu/rasa_components.py names it too).
PERSONAL_ID_ENTITY = "personal_id"
# The words that introduce an identity number, ending right before it: "my personal number is", "her personnummer:",
# "and my number is" (a long number after "number" is an identity or phone number: no request either way).
_INTRODUCED_BY = re.compile(
    r"(?:\b(?:and|so|well|hi|hello)[,]?\s+)?(?:\b(?:my|his|her|our|their|the)\s+(?:\w+'s\s+)?)?"
    r"\b(?:personal (?:identity |id )?number|personnummer|social security number|coordination number"
    r"|samordningsnummer|id number|number)(?:\s+(?:is|was|it's|är|in|as))?[\s:,]*$",  # "in", "as": "is" misheard
    re.IGNORECASE,
)


def without_identity_numbers(text: str) -> tuple[str, list[str]]:
    """``text`` without the identity numbers in it and the words that introduce them ("My personal number is
    850314-1239. When is my parental benefit paid?" -> "When is my parental benefit paid?"), and the kinds of the
    checksum-valid ones taken out ("personnummer", "samordningsnummer"). A number says nothing of what the caller
    wants, and what the NLU learnt of "personal number" came from examples of few requests. A number of six digits
    or more after such words goes, however it was heard; a valid identity number anywhere goes. When nothing else
    was said the words are kept as they were."""
    found_ids = find_personal_ids(text)
    kinds = [found.kind for found in found_ids]
    valid = [(found.start, found.end) for found in found_ids]
    cuts = []
    for start, end, digits in spoken_numbers(text):
        introduced = _INTRODUCED_BY.search(text[:start]) if digits >= 6 else None
        if introduced is not None:
            cuts.append((introduced.start(), end))
        elif any(a < end and b > start for a, b in valid):
            cuts.append((start, end))
    if not cuts:
        return text, kinds
    kept = text
    for start, end in sorted(cuts, reverse=True):
        kept = kept[:start] + " " + kept[end:]
    kept = re.sub(r"\s+([.,;:?!])", r"\1", " ".join(kept.split()))  # no space before a stop
    kept = re.sub(r"([.,;:?!])[.,;:]+", r"\1", kept)  # none doubled where a number was between two
    kept = re.sub(r"^[\s.,;:!?-]+", "", kept)  # nor one left at the start
    if not re.search(r"\w", kept):
        return text, kinds
    return kept[0].upper() + kept[1:] if text[:1].isupper() else kept, kinds


def ends_reading_a_number(text: str) -> bool:
    """The words stop in a number that words like "my personal number is" or "account number" introduced ("My
    personal number is 850,"): callers read numbers out in groups, with pauses between them."""
    stripped = text.rstrip(" .,;:?!")
    numbers = spoken_numbers(stripped)
    if not numbers or numbers[-1][1] < len(stripped):
        return False
    before = stripped[: numbers[-1][0]]
    return _INTRODUCED_BY.search(before) is not None or _ACCOUNT_WORDS.search(before) is not None
