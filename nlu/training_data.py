"""Adding reviewed caller turns to the Rasa training data, keeping the files as people wrote them (comments, order,
block style): a YAML round trip with ruamel.yaml. Runs in the product venv (the trainer's review page and CLI)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString

NLU_DATA = Path(__file__).resolve().parent / "data"
INTENT_NAME = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
ANNOTATION = re.compile(r"\[([^\]]+)\]\([^)]+\)")  # [text](entity) or [text](entity:value)
REVIEWED_FILE = "reviewed.yml"  # where examples of intents new to the data go
REVIEWED_HEADER = (
    "# Intents a trainer created from the review queue (helpline nlu review / the dashboard's review page).\n"
    "# Add them to dialogues/routing.yml (answer or route) before they change what the assistant does.\n"
)


def without_annotations(example: str) -> str:
    """An example without its entity annotations: what a caller says."""
    return ANNOTATION.sub(r"\1", example)


def block_texts(block: Mapping[str, Any], annotated: bool = False) -> list[str]:
    """The example texts of one Rasa NLU block (intent, synonym or lookup), without entity annotations unless
    ``annotated``."""
    texts = []
    for line in str(block.get("examples") or "").splitlines():
        text = line.strip().removeprefix("- ").strip()
        if text:
            texts.append(text if annotated else without_annotations(text))
    return texts


def carry_annotations(annotated: str, text: str) -> str:
    """``text`` (another wording of the example ``annotated``, e.g. as the recogniser heard it) with the example's
    entity annotations on the same words where they occur in it (case aside): "You want 8,000 crowner back for the
    housing allowance." keeps "[housing allowance](benefit_type)". Annotated words the text lost stay unannotated."""
    for match in ANNOTATION.finditer(annotated):
        surface, spec = match.group(1), match.group(0)[len(match.group(1)) + 2 :]
        pattern = re.compile(rf"(?<![\w\[]){re.escape(surface)}(?![\w\]])", re.IGNORECASE)
        found = pattern.search(text)
        if found:
            text = f"{text[: found.start()]}[{found.group(0)}]{spec}{text[found.end() :]}"
    return text


BLOCK_KINDS = ("intent", "synonym", "lookup", "regex")


def training_examples(
    nlu_dir: Path = NLU_DATA, skip: Path | None = None, every_block: bool = False, annotated: bool = False
) -> list[tuple[str, str]]:
    """(intent, text) of every intent example in the NLU data files (but ``skip``), in file order, annotations
    removed (kept if ``annotated``): the one reader of the training data for tests, benchmarks and generated data.
    ``every_block`` adds the synonym, lookup and regex examples, keyed by their name."""
    pairs = []
    for path in sorted(nlu_dir.glob("*.yml")):
        if path == skip:
            continue
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu") or []:
            kinds = BLOCK_KINDS if every_block else BLOCK_KINDS[:1]
            name = next((block[kind] for kind in kinds if kind in block), None)
            if name is not None:
                pairs += [(str(name), text) for text in block_texts(block, annotated)]
    return pairs


class TrainingDataError(ValueError):
    """The example or intent cannot be added; the message says why (nothing was written)."""


def _yaml(text: str = "") -> YAML:
    """A round-trip YAML (comments, key order and block styles survive) that indents lists as ``text`` does."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    if re.search(r"^\w[\w ]*:\n  - ", text, re.MULTILINE):  # "intents:\n  - call_start": lists indented
        yaml.indent(mapping=2, sequence=4, offset=2)
    else:  # "nlu:\n- intent: ...": lists flush with their key
        yaml.indent(mapping=2, sequence=2, offset=0)
    return yaml


def clean_example(text: str) -> str:
    """One line of plain caller text: redaction labels and Rasa's annotation brackets would read as entities."""
    text = re.sub(r"[\[\]{}()]", " ", text)
    text = " ".join(text.split())
    if not text or len(text) > 300:
        raise TrainingDataError("an example is one line of 1-300 characters")
    return text


def add_example(intent: str, text: str, nlu_dir: Path, domain_file: Path) -> Path:
    """Append ``text`` to ``intent``'s examples in whichever NLU file holds it, or start the intent (in
    reviewed.yml, and in the domain's intent list). Returns the file written. A duplicate is refused."""
    if not INTENT_NAME.match(intent):
        raise TrainingDataError(f"{intent!r} is not an intent name (lower case, digits and _)")
    example = clean_example(text)
    # The intent's home: of the blocks that hold it (some files repeat intents for entity examples), the largest.
    home: tuple[int, Path] | None = None
    for path in sorted(nlu_dir.glob("*.yml")):
        data = _yaml().load(path.read_text(encoding="utf-8"))
        for block in (data or {}).get("nlu") or []:
            if block.get("intent") != intent:
                continue
            lines = str(block.get("examples") or "").splitlines()
            if any(line.strip().removeprefix("- ").strip().lower() == example.lower() for line in lines):
                raise TrainingDataError(f"{intent} already has this example")
            if home is None or len(lines) > home[0]:
                home = (len(lines), path)
    if home is None:
        return _new_intent(intent, example, nlu_dir / REVIEWED_FILE, domain_file)
    path = home[1]
    text = path.read_text(encoding="utf-8")
    yaml = _yaml(text)
    data = yaml.load(text)
    block = max((b for b in data["nlu"] if b.get("intent") == intent), key=lambda b: len(str(b["examples"])))
    lines = str(block["examples"]).splitlines()
    block["examples"] = LiteralScalarString("\n".join([*lines, f"- {example}"]) + "\n")
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(data, out)
    return path


def _new_intent(intent: str, example: str, path: Path, domain_file: Path) -> Path:
    domain_text = domain_file.read_text(encoding="utf-8")
    yaml = _yaml(domain_text)
    domain = yaml.load(domain_text)
    if intent not in domain["intents"]:
        domain["intents"].append(intent)
        with domain_file.open("w", encoding="utf-8") as out:
            yaml.dump(domain, out)
    text = path.read_text(encoding="utf-8") if path.exists() else REVIEWED_HEADER + 'version: "3.1"\nnlu: []\n'
    yaml = _yaml(text)
    data = yaml.load(text)
    data["nlu"].append({"intent": intent, "examples": LiteralScalarString(f"- {example}\n")})
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(data, out)
    return path


def known_intents(domain_file: Path) -> list[str]:
    return [str(i) for i in _yaml().load(domain_file.read_text(encoding="utf-8"))["intents"]]
