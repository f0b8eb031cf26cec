"""Personal identity numbers (checksum-validated) and other personal data are masked before anything is stored."""

import logging

import pytest

from foundation.personnummer import classify, find_personal_ids, luhn_valid
from foundation.redaction import RedactingFilter, redact_text, without_identity_numbers


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


@pytest.mark.parametrize(
    "text",
    [
        "pay it to SE45 5000 0000 0583 9825 7466 please",  # IBAN, mod-97 valid
        "pay it to se4550000000058398257466 please",  # as ASR writes it
        "pay it to GB82 WEST 1234 5698 7654 32 please",  # letters in the account part
        "pay it to 8327-9, 123 456 789-0 please",  # Swedbank: five-digit clearing, ten-digit account
        "pay it to 6000 123 456 789 please",  # clearing + account without a keyword
        "my account number is 1234567 please",  # anything said after "account number"
        "bankgiro 5050-1055 please",
    ],
)
def test_bank_accounts_are_masked(text):
    redacted = redact_text(text)
    assert redacted.endswith(" please")  # the words around the number are kept
    assert "[bank account]" in redacted
    assert not any(ch.isdigit() for ch in redacted.replace("[bank account]", ""))


@pytest.mark.parametrize(
    "text",
    [
        "iban SE45 5000 0000 0583 9825 7467",  # check digits wrong: not an IBAN
        "it was paid on 2026-05-25, 12 500 kr",  # a date and an amount
        "i have 3 children aged 4 7 and 9",
        "the 2nd account 3 of 4 times",  # a small number after "account" is not an account number
    ],
)
def test_not_bank_accounts_are_kept(text):
    assert "[bank account]" not in redact_text(text)


def test_log_records_are_redacted_before_they_are_written(caplog):
    logger = logging.getLogger("helpline.test.redaction")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info("caller said %r", "i am 811218-9876 and my account is 8327-9, 123 456 789-0")
        logger.info("plain %s", "nothing personal here")
    first, second = caplog.records
    assert "811218-9876" not in first.getMessage() and "[personnummer]" in first.getMessage()
    assert "[bank account]" in first.getMessage()
    assert second.getMessage() == "plain nothing personal here"


@pytest.mark.parametrize(
    "said, read, kinds",
    [
        ("My personal number is 850314-1239. When is my parental benefit paid?",
         "When is my parental benefit paid?", ["personnummer"]),
        ("it is about my daughter, her personal number is 20121212-1212, she needs a new card.",
         "it is about my daughter, she needs a new card.", ["personnummer"]),
        # Misheard (no checksum), after the words that introduce it: taken out, and no kind is claimed.
        ("Hi, my personal number is 90 million 800 11200 80-9,876. When is it paid?", "When is it paid?", []),
        ("8503141239 when do you pay", "when do you pay", ["personnummer"]),  # a valid number on its own
        ("I got 4500 kronor on the 25th", "I got 4500 kronor on the 25th", []),  # amounts and dates stay
        ("the decision from 2024-05-03 is wrong", "the decision from 2024-05-03 is wrong", []),
        ("my personal number is 850314-1239", "my personal number is 850314-1239", ["personnummer"]),  # nothing else
        ("My personal number in 850, 1,239. How much is it?", "How much is it?", []),  # "is" heard as "in"
    ],
)  # fmt: skip
def test_identity_numbers_and_their_introduction_are_not_for_the_nlu(said, read, kinds):
    assert without_identity_numbers(said) == (read, kinds)
