"""Personal identity numbers (checksum-validated) and other personal data are masked before anything is stored."""

import pytest

from helpline.redaction import redact_text
from nlu.personnummer import classify, find_personal_ids, luhn_valid


@pytest.mark.parametrize(
    "number, kind",
    [
        ("8112189876", "personnummer"),
        ("198112189876", "personnummer"),
        ("7010632391", "samordningsnummer"),  # day 03 + 60
        ("121212-1212".replace("-", ""), "personnummer"),
    ],
)
def test_valid_numbers_are_classified(number, kind):
    assert classify(number) == kind


@pytest.mark.parametrize(
    "number",
    [
        "8112189875",  # wrong check digit
        "8113189876",  # month 13
        "8112329871",  # day 32 (neither a day nor a coordination day)
        "178112189876",  # century 17
        "81121898",  # too short
    ],
)
def test_invalid_numbers_are_rejected(number):
    assert classify(number) is None


def test_luhn():
    assert luhn_valid("8112189876") and not luhn_valid("8112189877")


def test_numbers_are_found_in_asr_style_text_with_positions():
    text = "yes my number is 19811218-9876 and i moved"
    [found] = find_personal_ids(text)
    assert text[found.start : found.end] == "19811218-9876"
    assert found.digits == "8112189876"
    [spaced] = find_personal_ids("it's 81 12 18 98 76")
    assert spaced.kind == "personnummer"
    assert find_personal_ids("my reference is 8112189875") == []


def test_redaction_masks_identity_numbers_phone_email_and_cards():
    text = (
        "i'm 811218-9876, call me on +46 70 123 45 67 or 070-123 45 67, mail anna.svensson@example.se, "
        "card 4111 1111 1111 1111"
    )
    redacted = redact_text(text)
    for secret in ("811218-9876", "123 45 67", "anna.svensson", "4111"):
        assert secret not in redacted
    assert "[personnummer]" in redacted and "[email]" in redacted and "[card number]" in redacted
    assert redacted.count("[phone number]") == 2


def test_redaction_keeps_amounts_dates_and_invalid_numbers():
    text = "i owe 12 000 kr since the 25th of may 2026, case 8112189875"
    assert redact_text(text) == text
