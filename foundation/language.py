"""The language a call is spoken in: per-language data (foundation/languages/<code>.yml) picked by
``Settings.language``, loaded and checked once: what the line says and listens for, and what the dialogue says.
Read by the gateway and by the action server (Rasa's venv) alike."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from foundation.vocabulary import QUEUES

LANGUAGES_DIR = Path(__file__).resolve().parent / "languages"


class LanguageError(ValueError):
    """A language's data file is missing, or lacks or misspells a key."""


@dataclass(frozen=True)
class LinePrompts:
    """What the gateway itself says (turn-taking and faults), whatever the dialogue does."""

    apology: str
    fallback_greeting: str
    no_input_reprompt: str
    not_caught_reprompt: str
    no_input_keypad: str
    no_input_handoff: str
    key_not_in_menu: str
    confirm: str  # holds {text}: the caller's words read back
    confirm_denied: str
    lines_busy: str
    recording_notice: str  # said in the greeting, after the disclosure, when calls are recorded (RECORDING__ENABLED)
    holding: str  # said when a reply is slow to come (TURN_TAKING__HOLD_AFTER_S)
    too_slow: str  # said before putting the caller through when no reply came in time (TURN_TAKING__REPLY_LIMIT_S)


@dataclass(frozen=True)
class KeypadPhrases:
    option: str  # holds {option} and {key}
    person: str  # holds {key}
    repeat: str  # holds {key}
    spoken_keys: dict[str, str]

    def key(self, key: str) -> str:
        return self.spoken_keys.get(key, key)


@dataclass(frozen=True)
class DialogueSay:
    """The dialogue's own sentences (the domain's fixed responses have their variants in dialogues/domain.yml)."""

    route: str  # holds {queue}: a phrase of `queues`
    route_urgent: str
    which_matter: str  # holds {matter}: a phrase of `matters`
    offer_matter: str  # holds {matter}
    offer_next: str  # holds {matter}: the second matter, asked about if the first is not it
    not_understood: str
    nothing_said_yet: str


@dataclass(frozen=True)
class SpokenDates:
    format: str  # holds {weekday}, {day} and {month}
    weekdays: tuple[str, ...]  # Monday first
    months: tuple[str, ...]  # January first
    days: tuple[str, ...]  # how the 1st to the 31st are said

    def say(self, day: date) -> str:
        """``day`` as it is read aloud ("Friday the 24th of January")."""
        return self.format.format(
            weekday=self.weekdays[day.weekday()], day=self.days[day.day - 1], month=self.months[day.month - 1]
        )


@dataclass(frozen=True)
class DialogueWords:
    """What the dialogue says: the answer per topic, how it names matters (intents) and queues, its questions."""

    answers: dict[str, str]  # topic -> answer
    matters: dict[str, str]  # intent -> how the assistant names it ("a missing payment or a debt")
    queues: dict[str, str]  # queue -> how the caller hears it ("our team that reviews decisions")
    say: DialogueSay
    dates: SpokenDates

    def name(self, intent: str) -> str:
        return self.matters.get(intent, intent.replace("_", " "))


@dataclass(frozen=True)
class Language:
    code: str
    prompts: LinePrompts
    disclosure: str  # the words saying the caller talks to a machine, in lower case
    keypad: KeypadPhrases
    backchannels: tuple[str, ...]
    unfinished_endings: tuple[str, ...]  # a turn ending in one of these words sounds unfinished
    asr_model: str
    asr_language: str
    tts_engine: str
    espeak_voice: str
    dialogue: DialogueWords

    @property
    def fixed_prompts(self) -> list[str]:
        """The prompts said the same way every time (synthesised once at start-up)."""
        return [text for text in vars(self.prompts).values() if "{" not in text]

    def sentences_to_disclosure(self, sentences: list[str]) -> int:
        """How many of ``sentences`` make sure the caller heard they are talking to an automated assistant (those
        are always heard whole): up to the one that says so, or the first when none does."""
        return 1 + max((i for i, text in enumerate(sentences) if self.disclosure in text.lower()), default=0)


def available() -> list[str]:
    return sorted(p.stem for p in LANGUAGES_DIR.glob("*.yml"))


def _section(data: Any, cls: type, where: str) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    if not isinstance(data, dict) or set(data) != names:
        given = set(data) if isinstance(data, dict) else set()
        raise LanguageError(f"{where}: needs exactly {sorted(names)} (missing {sorted(names - given)}, "
                            f"unknown {sorted(given - names)})")  # fmt: skip
    return data


@lru_cache(maxsize=8)
def load_language(code: str) -> Language:
    """The data of language ``code``; LanguageError naming the file and key when it is incomplete."""
    path = LANGUAGES_DIR / f"{code}.yml"
    if not path.is_file():
        raise LanguageError(f"no data for language {code!r} ({path} is missing; there is {', '.join(available())})")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    prompts = LinePrompts(**_section(data.get("prompts"), LinePrompts, f"{path}: prompts"))
    if "{text}" not in prompts.confirm:
        raise LanguageError(f"{path}: prompts.confirm must hold {{text}} (the caller's words read back)")
    keypad = _section(data.get("keypad"), KeypadPhrases, f"{path}: keypad")
    asr = data.get("asr") or {}
    tts = data.get("tts") or {}
    try:
        dialogue = _dialogue(data["dialogue"], path)
        return Language(
            code=code,
            prompts=prompts,
            disclosure=str(data["disclosure"]).lower(),
            keypad=KeypadPhrases(
                **{**keypad, "spoken_keys": {str(k): str(v) for k, v in keypad["spoken_keys"].items()}}
            ),
            backchannels=tuple(str(w).lower() for w in data["backchannels"]),
            unfinished_endings=tuple(str(w).lower() for w in data["unfinished_endings"]),
            asr_model=str(asr["model"]),
            asr_language=str(asr["language"]),
            tts_engine=str(tts["engine"]),
            espeak_voice=str(tts["espeak_voice"]),
            dialogue=dialogue,
        )
    except (KeyError, TypeError, AttributeError) as e:
        raise LanguageError(f"{path}: {e!r} is missing or malformed") from e


def _dialogue(data: dict[str, Any], path: Path) -> DialogueWords:
    say = DialogueSay(**_section(data["say"], DialogueSay, f"{path}: dialogue.say"))
    for name, field in (("route", "{queue}"), ("which_matter", "{matter}"), ("offer_matter", "{matter}"),
                        ("offer_next", "{matter}")):  # fmt: skip
        if field not in getattr(say, name):
            raise LanguageError(f"{path}: dialogue.say.{name} must hold {field}")
    dates = _section(data["dates"], SpokenDates, f"{path}: dialogue.dates")
    spoken = SpokenDates(
        format=str(dates["format"]),
        weekdays=tuple(map(str, dates["weekdays"])),
        months=tuple(map(str, dates["months"])),
        days=tuple(map(str, dates["days"])),
    )
    if (len(spoken.weekdays), len(spoken.months), len(spoken.days)) != (7, 12, 31):
        raise LanguageError(f"{path}: dialogue.dates needs 7 weekdays, 12 months and 31 days")
    queues = {str(k): str(v) for k, v in data["queues"].items()}
    if set(queues) != set(QUEUES):
        raise LanguageError(f"{path}: dialogue.queues must name exactly the queues {sorted(QUEUES)}")
    return DialogueWords(
        answers={str(k): " ".join(str(v).split()) for k, v in data["answers"].items()},
        matters={str(k): str(v) for k, v in data["matters"].items()},
        queues=queues,
        say=say,
        dates=spoken,
    )
