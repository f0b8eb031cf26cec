"""Word error rate with a transcript normaliser, for tests and benchmarks.

The normaliser makes written and spoken forms comparable: case, punctuation, "Mr." -> "mister", numbers
("10" -> "ten", long digit strings read digit by digit, "oh" -> "zero") and hyphenated or closed compounds.
"""

from __future__ import annotations

import re

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]  # noqa: E501
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint"}


def _number_words(n: int) -> list[str]:
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        tens, ones = divmod(n, 10)
        return [_TENS[tens]] + ([_ONES[ones]] if ones else [])
    hundreds, rest = divmod(n, 100)
    return [_ONES[hundreds], "hundred"] + (_number_words(rest) if rest else [])


def _expand_number(token: str) -> list[str]:
    digits = token.replace(",", "")
    if len(digits) <= 3 and not digits.startswith("0"):
        return _number_words(int(digits))
    return [_ONES[int(d)] for d in digits]  # phone-style: digit by digit


def normalize(text: str) -> list[str]:
    text = text.lower().replace("-", " ")
    words: list[str] = []
    for token in re.findall(r"[a-z']+|\d[\d,]*", text):
        token = token.strip("'")
        if not token:
            continue
        if token[0].isdigit():
            words += _expand_number(token.strip(","))
        elif token == "oh":
            words.append("zero")
        else:
            words.append(_ABBREVIATIONS.get(token, token))
    return words


def _edit_distance(ref: list[str], hyp: list[str]) -> int:
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance in words, reference length) after normalisation; closed compounds count as one word."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    # "cold hearted" vs "coldhearted": join reference bigrams that the hypothesis writes as one word.
    hyp_set = set(hyp)
    joined: list[str] = []
    i = 0
    while i < len(ref):
        if i + 1 < len(ref) and ref[i] + ref[i + 1] in hyp_set:
            joined.append(ref[i] + ref[i + 1])
            i += 2
        else:
            joined.append(ref[i])
            i += 1
    return _edit_distance(joined, hyp), len(joined)


def wer(reference: str, hypothesis: str) -> float:
    errors, length = word_errors(reference, hypothesis)
    return errors / max(1, length)


def corpus_wer(pairs: list[tuple[str, str]]) -> float:
    """WER over many utterances: total errors / total reference words."""
    totals = [word_errors(r, h) for r, h in pairs]
    return sum(e for e, _ in totals) / max(1, sum(n for _, n in totals))
