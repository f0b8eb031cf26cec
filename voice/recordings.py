"""The real recorded speech the project is measured on: ../shared/audio/real beside the repository (refs.json holds
the reference transcripts). It is read from there and never copied into the repository."""

from __future__ import annotations

import json
from pathlib import Path

REAL_SPEECH_DIR = Path(__file__).resolve().parents[2] / "shared" / "audio" / "real"


def real_recordings(directory: Path = REAL_SPEECH_DIR) -> dict[str, tuple[Path, str]]:
    """stem -> (audio file, reference transcript); FileNotFoundError naming what is missing."""
    refs_file = directory / "refs.json"
    if not refs_file.is_file():
        raise FileNotFoundError(f"real speech recordings not found: no {refs_file}")
    found = {}
    for stem, text in json.loads(refs_file.read_text()).items():
        matches = sorted(p for p in directory.glob(f"{stem}.*") if p.suffix in (".wav", ".flac"))
        if not matches:
            raise FileNotFoundError(f"no audio for {stem!r} in {directory}")
        found[stem] = (matches[0], text)
    return found
