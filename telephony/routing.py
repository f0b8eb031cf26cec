"""What the gateway takes from the routing table (foundation/routing_table.py): the keypad menu and the small talk.

The keypad (DTMF) menu says which key means which intent and how the menu is read out. It lives in the routing table
next to the intents it names, so a trainer changes menu and routing in one place. A key press becomes the intent
itself (Rasa's ``/intent`` message), so it is answered or routed exactly as the spoken request would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from foundation.language import KeypadPhrases, load_language
from foundation.routing_table import ROUTING_FILE, RoutingTable, load_answers
from foundation.settings import REPO_ROOT

DOMAIN_FILE = REPO_ROOT / "dialogues" / "domain.yml"
KEYS = "0123456789*#"


@dataclass(frozen=True)
class KeypadMenu:
    routing: RoutingTable  # its keypad (key -> intent, in menu order), repeat key, and how intents are named
    phrases: KeypadPhrases  # how the menu is said in the line's language

    @classmethod
    def load(cls, path: Path = ROUTING_FILE, phrases: KeypadPhrases | None = None) -> KeypadMenu:
        return cls.of(RoutingTable.load(path), phrases)

    @classmethod
    def of(cls, table: RoutingTable, phrases: KeypadPhrases | None = None) -> KeypadMenu:
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
        return cls(routing=table, phrases=phrases or load_language("en").keypad)

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
        say = self.phrases
        sentences = [
            say.option.format(option=self.routing.name(i), key=say.key(k))
            for k, i in self.keys.items()
            if i != "request_human"
        ]
        sentences += [say.person.format(key=say.key(k)) for k, i in self.keys.items() if i == "request_human"]
        sentences.append(say.repeat.format(key=say.key(self.repeat_key)))
        return " ".join(sentences)


def fixed_sentences() -> list[str]:
    """Every sentence the assistant says the same way each time: the answers and responses (without the parts the
    action server fills in, such as the next payment date). The gateway synthesises them once at start-up."""
    texts = list(load_answers().values())
    domain = yaml.safe_load(DOMAIN_FILE.read_text(encoding="utf-8")) or {}
    for variants in (domain.get("responses") or {}).values():
        texts += [str(v["text"]) for v in variants if isinstance(v, dict) and v.get("text")]
    from voice.tts.base import split_sentences

    sentences = {s for text in texts for s in split_sentences(" ".join(text.split())) if "{" not in s}
    return sorted(sentences)
