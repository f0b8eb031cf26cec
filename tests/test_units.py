"""Pure units: payment calendar, decisions, WER normaliser, phone masking, settings."""

from datetime import date

import pytest

from dialogues.payment_calendar import (
    easter_sunday,
    next_payment_day,
    payment_day,
    public_holidays,
)
from foundation.language import load_language
from foundation.redaction import mask_phone_number
from foundation.settings import Settings
from foundation.vocabulary import NOT_UNDERSTOOD, Decision
from nlu.client import decision_from
from voice.wer import normalize, wer


@pytest.mark.parametrize(
    "year, expected", [(2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)), (2026, date(2026, 4, 5))]
)
def test_easter(year, expected):
    assert easter_sunday(year) == expected


def test_payment_day_moves_to_previous_banking_day():
    assert payment_day(2026, 11, 25) == date(2026, 11, 25)  # a Wednesday
    assert payment_day(2026, 10, 25) == date(2026, 10, 23)  # Sunday -> Friday
    assert payment_day(2026, 12, 25) == date(2026, 12, 23)  # Christmas Day, and the 24th is a holiday eve
    assert payment_day(2026, 12, 20) == date(2026, 12, 18)  # child allowance: Sunday -> Friday
    assert date(2026, 6, 19) in public_holidays(2026)  # midsummer eve is a Friday in 19-25 June


def test_next_payment_day_rolls_over_the_year():
    assert next_payment_day(date(2026, 12, 24)) == date(2027, 1, 25)
    assert next_payment_day(date(2026, 11, 25)) == date(2026, 11, 25)
    say = load_language("en").dialogue.dates.say
    assert say(date(2026, 11, 23)) == "Monday the 23rd of November"
    assert say(date(2026, 11, 11)) == "Wednesday the 11th of November"
    assert load_language("sv").dialogue.dates.say(date(2026, 11, 23)) == "måndagen den tjugotredje november"


def test_decision_comes_from_the_last_decision_payload():
    messages = [
        {"text": "Most benefits..."},
        {"custom": {"decision": "answer:payment_dates", "topic": "payment_dates"}},
        {"text": "Anything else?"},
    ]
    assert decision_from(messages, "ask_payment_dates") == (
        Decision("answer", "payment_dates"),
        {"decision": "answer:payment_dates", "topic": "payment_dates"},
    )
    assert decision_from([{"text": "Hi"}], "greet")[0] == Decision("smalltalk", "greet")
    assert decision_from([], "nlu_fallback")[0] == Decision("smalltalk", "out_of_scope")
    # A payload with a decision of an unknown kind is ignored rather than trusted.
    assert decision_from([{"custom": {"decision": "launch:rocket"}}], "thanks")[0] == Decision("smalltalk", "thanks")


def test_a_decision_is_parsed_once_and_prints_as_it_travels():
    assert Decision.parse("route:payments_debt") == Decision("route", "payments_debt")
    assert str(Decision.parse("clarify:rephrase")) == "clarify:rephrase" == str(NOT_UNDERSTOOD)
    for bad in ("route", "route:", "launch:rocket", ":general", ""):
        with pytest.raises(ValueError, match="not a decision"):
            Decision.parse(bad)


def test_wer_normaliser_makes_spoken_and_written_forms_equal():
    assert normalize("Go forward 10 meters.") == ["go", "forward", "ten", "meters"]
    assert normalize("Mr. John") == ["mister", "john"]
    assert wer("one zero zero zero one nine oh two one oh", "1,0001 90210") == 0.0
    assert wer("rather cold hearted and", "rather coldhearted and") == 0.0
    assert wer("ask not what", "ask what") == pytest.approx(1 / 3)


def test_phone_numbers_are_masked():
    assert mask_phone_number("+46701234567") == "+46*******67"
    assert "1234" not in mask_phone_number("0701234567")
    assert mask_phone_number("") == ""


def test_settings_parse_env_booleans_and_nesting(monkeypatch):
    monkeypatch.setenv("HELPLINE_TWILIO__VALIDATE_SIGNATURES", "false")
    monkeypatch.setenv("HELPLINE_GATEWAY__PORT", "9090")
    monkeypatch.setenv("HELPLINE_VAD__END_SILENCE_MS", "650")
    settings = Settings()
    assert settings.twilio.validate_signatures is False
    assert settings.gateway.port == 9090
    assert settings.vad.end_silence_ms == 640  # rounded down to whole 20 ms frames
    assert settings.gateway.host == "127.0.0.1"  # loopback by default


def test_settings_reject_bad_values(monkeypatch):
    monkeypatch.setenv("HELPLINE_GATEWAY__PORT", "99999")
    with pytest.raises(ValueError):
        Settings()


def test_keypad_menu_from_the_routing_table_is_read_out_in_order(tmp_path):
    from foundation.routing_table import ROUTING_FILE
    from telephony.routing import KeypadMenu

    menu = KeypadMenu.load()
    assert menu.intent_for("1") == "ask_payment_dates" and menu.intent_for("0") == "request_human"
    assert menu.intent_for("#") is None
    text = menu.menu_text()
    assert text.startswith("For when benefits are paid, press 1. For our opening hours, press 2.")
    assert text.endswith("To talk to a person, press 0. To hear this again, press star.")
    table = ROUTING_FILE.read_text(encoding="utf-8")
    bad = tmp_path / "routing.yml"
    bad.write_text(table.replace('"1": ask_payment_dates', '"1": ask_y'), encoding="utf-8")
    with pytest.raises(ValueError, match="neither answered nor routed"):
        KeypadMenu.load(bad)
    bad = tmp_path / "routing2.yml"  # another file: the table read is kept per file
    bad.write_text(table.replace('"1": ask_payment_dates', '"A": ask_payment_dates'), encoding="utf-8")
    with pytest.raises(ValueError, match="not a phone key"):
        KeypadMenu.load(bad)


def test_settings_travel_to_child_processes_intact(monkeypatch):
    """A child process (the gateway under `helpline serve`) must read back exactly these settings."""
    from helpline.services import settings_environment

    settings = Settings(turn_taking={"backchannels": ("mm", "yeah"), "no_input_timeout_s": 4.5})  # type: ignore[arg-type]
    for key, value in settings_environment(settings).items():
        monkeypatch.setenv(key, value)
    again = Settings()
    assert again.turn_taking == settings.turn_taking
    assert again.asr == settings.asr and again.vad == settings.vad


def test_streaming_endpoint_needs_silence_words_and_a_recogniser_that_is_done():
    from telephony.turn_policy import stream_says_done

    end = 700  # the VAD's end-of-speech silence: the recogniser may end a turn after half of it
    assert stream_says_done("two words", segment_closed=True, stable_chunks=0, silence_ms=360, end_silence_ms=end)
    assert stream_says_done("two words", segment_closed=False, stable_chunks=3, silence_ms=400, end_silence_ms=end)
    assert not stream_says_done("two words", False, stable_chunks=2, silence_ms=400, end_silence_ms=end)  # changing
    assert not stream_says_done("two words", True, stable_chunks=5, silence_ms=300, end_silence_ms=end)  # not silent
    assert not stream_says_done("", True, stable_chunks=5, silence_ms=800, end_silence_ms=end)  # nothing said


def test_rasa_commands_for_one_process_are_split_at_then_and_none_may_be_empty():
    from nlu.rasa_cli import commands

    argv = ["test", "nlu", "--nlu", "a.yml", "--then", "test", "core", "--stories", "s.yml"]
    assert commands(argv) == [["test", "nlu", "--nlu", "a.yml"], ["test", "core", "--stories", "s.yml"]]
    assert commands(["run", "--enable-api"]) == [["run", "--enable-api"]]
    for bad in ([], ["test", "--then"], ["--then", "run"]):
        with pytest.raises(SystemExit, match="usage"):
            commands(bad)


def test_end_of_turn_settings_point_smart_turn_at_the_file_helpline_models_writes(tmp_path):
    from foundation.settings import smart_turn_model_path

    settings = Settings(data_dir=tmp_path, end_of_turn={"engine": "smart_turn"})  # type: ignore[arg-type]
    assert settings.end_of_turn.model_path == smart_turn_model_path(tmp_path / "models")
    assert Settings(data_dir=tmp_path).end_of_turn.model_path is None  # the silence rule needs no file
    with pytest.raises(ValueError):
        Settings(end_of_turn={"engine": "guesswork"})  # type: ignore[arg-type]
