"""The recogniser's context for a caller's turn, built from the domain data: the agency's words (benefit names from
the lookup table and synonyms, plus nlu/asr_context.yml) and the question the caller is answering."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from foundation.phrases import phrases_in
from nlu.key_word_repair import KeyWordRepairer, Repair
from nlu.training_data import block_texts
from voice.asr.base import RecognitionContext, Transcript, Word

NLU_DIR = Path(__file__).resolve().parent
CONTEXT_FILE = NLU_DIR / "asr_context.yml"


class AsrContextError(ValueError):
    """The biasing data for a language is missing or malformed."""


def benefit_names(nlu_dir: Path = NLU_DIR / "data") -> list[str]:
    """The benefit names: the synonyms' canonical names first, then the rest of the benefit_type lookup, each once."""
    names: list[str] = []
    for path in (nlu_dir / "synonyms.yml", nlu_dir / "lookups.yml"):
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu") or []:
            if "synonym" in block:
                names.append(str(block["synonym"]))
            elif block.get("lookup") == "benefit_type":
                names += block_texts(block)
    seen: set[str] = set()
    return [n for n in names if n and not (n in seen or seen.add(n))]  # type: ignore[func-returns-value]


@dataclass(frozen=True)
class AsrVocabulary:
    """A language's biasing data: the domain prompt and the key words transcripts are scored on."""

    prompt: str
    key_words: tuple[str, ...]
    with_question: bool = False
    agency_words: tuple[str, ...] = ()  # as written: what a misheard span is put right to (key words, benefit names)
    _repairer: KeyWordRepairer = field(init=False, repr=False, compare=False)
    _first_listed: dict[str, str] = field(init=False, repr=False, compare=False)  # "login" -> "log in"

    def __post_init__(self) -> None:
        object.__setattr__(self, "_repairer", KeyWordRepairer(self.agency_words))
        first_listed: dict[str, str] = {}
        for word in self.key_words:
            first_listed.setdefault(word.replace(" ", ""), word)
        object.__setattr__(self, "_first_listed", first_listed)

    @classmethod
    def load(cls, language: str, path: Path = CONTEXT_FILE, nlu_dir: Path = NLU_DIR / "data") -> AsrVocabulary:
        vocabulary = cls.load_if_any(language, path, nlu_dir)
        if vocabulary is None:
            raise AsrContextError(f"{path.name} has no block for language {language!r}")
        return vocabulary

    @classmethod
    def load_if_any(
        cls, language: str, path: Path = CONTEXT_FILE, nlu_dir: Path = NLU_DIR / "data"
    ) -> AsrVocabulary | None:
        """``language``'s vocabulary, or None when ``path`` has no block for it (a language may have none yet: its
        line is unbiased). Raises ``AsrContextError`` for a block without a prompt."""
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if language not in data:
            return None
        block = data[language]
        if not isinstance(block, dict) or "{terms}" not in str(block.get("prompt", "")):
            raise AsrContextError(f"{path.name} has no prompt with {{terms}} for language {language!r}")
        terms = [*benefit_names(nlu_dir)[: int(block.get("benefits", 4))], *[str(t) for t in block.get("terms") or []]]
        prompt = str(block["prompt"]).format(terms=", ".join(terms[:-1]) + " or " + terms[-1])
        key_words = [str(w) for w in block.get("key_words") or []]
        return cls(
            prompt=prompt,
            key_words=tuple(w.lower() for w in key_words),
            with_question=bool(block.get("with_question", False)),
            agency_words=tuple({w.lower(): w for w in [*key_words, *benefit_names(nlu_dir)]}.values()),
        )

    def context(self, question: str | None = None) -> RecognitionContext:
        """The context for a turn; ``question``, when the caller is answering one, follows the domain prompt where the
        language's data says so (``with_question``: decided by measurement)."""
        if question and self.with_question:
            return RecognitionContext(prompt=f"{self.prompt} {question.strip()}")
        return RecognitionContext(prompt=self.prompt)

    def key_words_in(self, text: str) -> list[str]:
        """The key words ``text`` holds (whole words, case and hyphens ignored), each once and as first listed where
        two are one word spelled two ways: "login" counts as the "log in" that was said."""
        return list(dict.fromkeys(self._first_listed[w.replace(" ", "")] for w in phrases_in(text, self.key_words)))

    def key_words_kept(self, said: str, heard: str) -> tuple[int, int]:
        """How many key words ``said`` holds, and how many of those ``heard`` holds too: key-word recall's parts."""
        wanted = self.key_words_in(said)
        found = set(self.key_words_in(heard))
        return len(wanted), sum(w in found for w in wanted)

    def repair(self, transcript: Transcript) -> tuple[Transcript, list[Repair]]:
        """``transcript`` with the agency's words it nearly heard put right (nlu/key_word_repair.py), and what was
        rewritten. Its words follow when they line up with the text (a rewritten span becomes one word: the least
        confidence of those it replaces, their times)."""
        words = transcript.words
        text, repairs, tokens = self._repairer.repair(
            transcript.text, [(w.text, w.confidence) for w in words], transcript.confidence
        )
        if not repairs:
            return transcript, []
        heard_as = [t.heard_as for t in tokens if t.heard_as is not None]
        if words and len(heard_as) == len(tokens):
            rebuilt: list[Word] = []
            at = 0
            for r in repairs:
                first, end = heard_as[r.first][0], heard_as[r.end - 1][1]
                span = words[first:end]
                rebuilt += words[at:first]
                rebuilt.append(Word(" " + r.phrase, min(w.confidence for w in span), span[0].start, span[-1].end))
                at = end
            words = (*rebuilt, *words[at:])
        return replace(transcript, text=text, words=tuple(words)), repairs
