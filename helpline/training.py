"""Training the Rasa model in the Rasa venv, only when its inputs changed (a content hash names the model)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from helpline.settings import REPO_ROOT, Settings

NLU_CONFIG = REPO_ROOT / "nlu" / "config.yml"
DOMAIN = REPO_ROOT / "dialogues" / "domain.yml"
TRAINING_DATA = (REPO_ROOT / "nlu" / "data", REPO_ROOT / "dialogues" / "data")


class TrainingError(RuntimeError):
    """rasa train failed or the Rasa venv is missing."""


def training_inputs() -> list[Path]:
    files = [NLU_CONFIG, DOMAIN]
    for folder in TRAINING_DATA:
        files += sorted(p for p in folder.rglob("*") if p.suffix in (".yml", ".yaml", ".txt"))
    return files


def data_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in training_inputs():
        digest.update(str(path.relative_to(REPO_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def model_path(settings: Settings) -> Path:
    """Where the model for the current training data lives (it may not exist yet)."""
    return settings.models_dir / f"helpline-{data_fingerprint()}.tar.gz"


def rasa_executable(settings: Settings) -> Path:
    rasa = settings.rasa.venv / "bin" / "rasa"
    if not rasa.exists():
        raise TrainingError(f"Rasa is not installed at {settings.rasa.venv}: run ./setup.sh first")
    return rasa


def rasa_environment(settings: Settings) -> dict[str, str]:
    """Environment for every Rasa process: no telemetry, our repo importable (custom actions), quiet TF."""
    env = dict(os.environ)
    env.update(
        RASA_TELEMETRY_ENABLED="false",
        PYTHONPATH=str(REPO_ROOT),
        TF_CPP_MIN_LOG_LEVEL="2",
        SANIC_HOST=settings.rasa.actions_host,
        # Rasa's own caches and logs stay inside the data directory.
        RASA_CACHE_DIRECTORY=str(settings.data_dir / "rasa-cache"),
        MPLCONFIGDIR=str(settings.data_dir / "matplotlib"),
    )
    return env


def train(settings: Settings, force: bool = False) -> Path:
    """Train unless a model for the current data exists; prints Rasa's progress. Returns the model path."""
    target = model_path(settings)
    if target.exists() and not force:
        print(f"Rasa model is up to date: {target.name}", flush=True)
        return target
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    print(f"training the Rasa model ({target.name}); this takes about two minutes", flush=True)
    command = [
        str(rasa_executable(settings)), "train",
        "--config", str(NLU_CONFIG),
        "--domain", str(DOMAIN),
        "--data", *[str(p) for p in TRAINING_DATA],
        "--out", str(settings.models_dir),
        "--fixed-model-name", target.name.removesuffix(".tar.gz"),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO_ROOT, env=rasa_environment(settings), stdout=sys.stdout, stderr=sys.stderr)
    if done.returncode != 0 or not target.exists():
        raise TrainingError(f"rasa train failed (exit {done.returncode})")
    for old in settings.models_dir.glob("helpline-*.tar.gz"):
        if old != target:
            old.unlink()
    return target
