"""Nothing assumes English: the line's prompts, keypad menu phrasing, listening noises and speech model, and the
dialogue's answers, questions and responses come from per-language data (foundation/languages/<code>.yml, the
domain's response variants) that Settings picks."""

import pytest
from fakes import FakeCall, ScriptedDialogue

from foundation.language import LanguageError, available, load_language
from foundation.routing_table import RoutingTable
from foundation.settings import Settings
from telephony.line import line_vocabulary
from telephony.routing import KeypadMenu, fixed_sentences, response_texts


def test_every_language_has_every_piece_of_data():
    assert {"en", "sv"} <= set(available())
    table = RoutingTable.load()
    english = response_texts("en")
    for code in available():
        spoken = load_language(code)
        assert all(text.strip() for text in vars(spoken.prompts).values()), code
        assert "{text}" in spoken.prompts.confirm and spoken.backchannels and spoken.asr_model
        words = spoken.dialogue
        assert set(words.answers) == set(table.answers.values()), code  # an answer for every topic answered
        # Every matter can be named when the caller is asked which one it is (never an urgent one: routed at once).
        assert set(words.matters) == (set(table.answers) | set(table.routes)) - table.urgent, code
        responses = response_texts(code)
        assert set(responses) == set(english), code
        if code != "en":  # a response of its own, not the English one
            assert all(responses[name] != english[name] for name in english), code


def test_the_dialogue_is_said_in_the_calls_language():
    sv = fixed_sentences(load_language("sv"))
    assert "Vad kan jag hjälpa dig med i dag?" in sv and "What can I help you with today?" not in sv
    assert "What can I help you with today?" in fixed_sentences(load_language("en"))
    assert any(s.startswith("Barnbidraget betalas ut automatiskt") for s in sv)


def test_a_second_language_is_picked_by_settings_with_its_model_and_listening_noises():
    settings = Settings(language="sv")
    assert settings.spoken.prompts.fallback_greeting.startswith("Hej")
    assert (settings.asr.model, settings.asr.language) == ("base", "sv")  # tiny.en knows no Swedish
    assert (settings.tts.engine, settings.tts.espeak_voice) == ("espeak", "sv")  # no Swedish Piper voice packaged
    assert (Settings().tts.engine, Settings().tts.espeak_voice) == ("piper", "en-us")
    assert "jaha" in settings.turn_taking.backchannels and "yeah" not in settings.turn_taking.backchannels
    own = Settings(language="sv", asr={"model": "tiny.en", "language": "en"})  # what is set explicitly stays
    assert (own.asr.model, own.asr.language) == ("tiny.en", "en")
    assert Settings().turn_taking.backchannels == load_language("en").backchannels


def test_a_language_without_biasing_data_starts_unbiased_and_says_so(caplog):
    assert line_vocabulary(Settings()) is not None  # English: the agency's words, for biasing and repair
    assert line_vocabulary(Settings(asr={"biasing": False, "key_word_repair": False})) is None
    with caplog.at_level("WARNING"):
        assert line_vocabulary(Settings(language="sv")) is None  # no Swedish block in nlu/asr_context.yml yet
    assert "no biasing data for language 'sv'" in caplog.text


def test_the_keypad_menu_is_read_in_the_lines_language():
    menu = KeypadMenu.load(language=load_language("sv"))
    text = menu.menu_text()
    assert "För våra öppettider, tryck två." in text and "För att prata med en person, tryck noll." in text
    assert text.endswith("För att höra detta igen, tryck stjärna.")


async def test_a_swedish_line_speaks_swedish_when_nobody_answers():
    settings = Settings(language="sv", turn_taking={"no_input_timeout_s": 2.0})
    dialogue = ScriptedDialogue({})
    dialogue.greeting = []  # the dialogue said nothing: the line's own greeting
    async with FakeCall(dialogue, settings) as line:
        await line.until(lambda: line.session.finished.is_set(), max_s=40)
    assert dialogue.languages == ["sv"]  # the conversation was opened in Swedish
    said = line.session.record.said
    sv = load_language("sv").prompts
    assert said[0] == sv.fallback_greeting and sv.no_input_reprompt in said and said[-1] == sv.no_input_handoff


def test_an_unknown_or_incomplete_language_stops_the_start_with_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="no data for language 'xx'"):
        Settings(language="xx")
    broken = tmp_path / "zz.yml"
    broken.write_text("prompts: {apology: x}\n", encoding="utf-8")
    monkeypatch.setattr("foundation.language.LANGUAGES_DIR", tmp_path)
    load_language.cache_clear()
    try:
        with pytest.raises(LanguageError, match="zz.yml: prompts: needs exactly"):
            load_language("zz")
    finally:
        monkeypatch.undo()
        load_language.cache_clear()
