"""What the gateway takes from the routing table (foundation/routing_table.py): the keypad menu and the small talk.

The keypad (DTMF) menu says which key means which intent and how the menu is read out. It lives in the routing table
next to the intents it names, so a trainer changes menu and routing in one place. A key press becomes the intent
itself (Rasa's ``/intent`` message), so it is answered or routed exactly as the spoken request would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from foundation.language import Language, load_language
from foundation.routing_table import ROUTING_FILE, RoutingTable
from foundation.settings import REPO_ROOT

DOMAIN_FILE = REPO_ROOT / "dialogues" / "domain.yml"
KEYS = "0123456789*#"


@dataclass(frozen=True)
class KeypadMenu:
    routing: RoutingTable  # its keypad (key -> intent, in menu order) and repeat key
    language: Language  # how the menu and the matters it offers are said on the line

    @classmethod
    def load(cls, path: Path = ROUTING_FILE, language: Language | None = None) -> KeypadMenu:
        return cls.of(RoutingTable.load(path), language)

    @classmethod
    def of(cls, table: RoutingTable, language: Language | None = None) -> KeypadMenu:
        """The menu of ``table``, checked: phone keys only, each naming an intent answered or routed."""
        path, keys, repeat_key = table.source, table.keypad, table.keypad_repeat
        known = set(table.answers) | set(table.routes)
        for key, intent in keys.items():
            if key not in KEYS:
                raise ValueError(f"{path}: keypad key {key!r} is not a phone key")
            if intent not in known:
                raise ValueError(f"{path}: keypad key {key} names {intent!r}, which is neither answered nor routed")
        if repeat_key in keys:
            raise ValueError(f"{path}: keypad_repeat {repeat_key!r} is also a menu key")
        return cls(routing=table, language=language or load_language("en"))

    @property
    def keys(self) -> dict[str, str]:
        return self.routing.keypad

    @property
    def repeat_key(self) -> str:
        return self.routing.keypad_repeat

    def intent_for(self, key: str) -> str | None:
        return self.keys.get(key)

    def menu_text(self) -> str:
        """The menu as the assistant says it: option first, then its key (callers need not remember a number while
        listening for their option), the person last, then how to hear it again."""
        say, names = self.language.keypad, self.language.dialogue
        sentences = [
            say.option.format(option=names.name(i), key=say.key(k))
            for k, i in self.keys.items()
            if i != "request_human"
        ]
        sentences += [say.person.format(key=say.key(k)) for k, i in self.keys.items() if i == "request_human"]
        sentences.append(say.repeat.format(key=say.key(self.repeat_key)))
        return " ".join(sentences)


def response_texts(language: str) -> dict[str, list[str]]:
    """The domain's fixed responses as said in ``language``: response -> its texts. A variant holding the condition
    `slot language == <code>` belongs to that language; a response with none for it says its plain variants."""
    domain = yaml.safe_load(DOMAIN_FILE.read_text(encoding="utf-8")) or {}
    said: dict[str, list[str]] = {}
    for name, variants in (domain.get("responses") or {}).items():
        plain, own = [], []
        for variant in variants:
            conditions = variant.get("condition") or []
            languages = {c.get("value") for c in conditions if c.get("type") == "slot" and c.get("name") == "language"}
            if not conditions:
                plain.append(str(variant["text"]))
            elif languages == {language}:
                own.append(str(variant["text"]))
        said[str(name)] = own or plain
    return said


def fixed_sentences(language: Language) -> list[str]:
    """Every sentence the assistant says the same way each time in ``language``: the answers and responses (without
    the parts the action server fills in, such as the next payment date). The gateway synthesises them once at
    start-up."""
    texts = list(language.dialogue.answers.values())
    texts += [text for variants in response_texts(language.code).values() for text in variants]
    from voice.tts.base import split_sentences

    sentences = {s for text in texts for s in split_sentences(" ".join(text.split())) if "{" not in s}
    return sorted(sentences)
