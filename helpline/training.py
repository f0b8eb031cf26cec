"""Training the Rasa model in the Rasa venv, only when its inputs changed (a content hash names the model)."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from foundation.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)

NLU_CONFIG = REPO_ROOT / "nlu" / "config.yml"
DOMAIN = REPO_ROOT / "dialogues" / "domain.yml"
TRAINING_DATA = (REPO_ROOT / "nlu" / "data", REPO_ROOT / "dialogues" / "data")
# What else shapes a trained model: our pipeline components and every package of the Rasa venv.
MODEL_CODE = (
    REPO_ROOT / "nlu" / "rasa_components.py",
    REPO_ROOT / "nlu" / "sentence_encoder.py",
    REPO_ROOT / "nlu" / "encoder_onnx.py",
    REPO_ROOT / "nlu" / "intent_probe.py",
    REPO_ROOT / "foundation" / "personnummer.py",
)
RASA_LOCK = REPO_ROOT / "nlu" / "rasa-requirements.lock"


CACHED_MODELS = 5  # about 40 MB each


class TrainingError(RuntimeError):
    """rasa train failed or the Rasa venv is missing."""


def training_inputs() -> list[Path]:
    files = [NLU_CONFIG, DOMAIN, *MODEL_CODE, RASA_LOCK]
    for folder in TRAINING_DATA:
        files += sorted(p for p in folder.rglob("*") if p.suffix in (".yml", ".yaml", ".txt"))
    return files


def locked_versions(lock: Path) -> bytes:
    """The packages and versions a lock file pins, one `name==version` a line, names normalised and sorted: what
    shapes a model, without the hashes and comments (rebuilding the lock's hashes retrains nothing)."""
    pins = []
    for line in lock.read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith(("#", "-")):
            name, _, version = line.split(" ", 1)[0].partition("==")
            pins.append(f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}")
    return "".join(f"{pin}\n" for pin in sorted(pins)).encode()


def data_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in training_inputs():
        digest.update(str(path.relative_to(REPO_ROOT)).encode())
        digest.update(locked_versions(path) if path == RASA_LOCK else path.read_bytes())
    return digest.hexdigest()[:16]


def model_path(settings: Settings) -> Path:
    """Where the model for the current training data lives (it may not exist yet)."""
    return settings.models_dir / f"helpline-{data_fingerprint()}.tar.gz"


def rasa_executable(settings: Settings) -> Path:
    rasa = settings.rasa.venv / "bin" / "rasa"
    if not rasa.exists():
        raise TrainingError(f"Rasa is not installed at {settings.rasa.venv}: run ./setup.sh first")
    return rasa


def rasa_model_command(settings: Settings) -> list[str]:
    """How to run a Rasa command that loads a trained model (`run`, `test`): through nlu/rasa_cli.py, which loads it
    in seconds and can run several commands in one process."""
    return [str(rasa_executable(settings).with_name("python")), "-m", "nlu.rasa_cli"]


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
        # The sentence encoder's small NumPy matrices on one BLAS thread: with the recognisers busy, two threads wait
        # on each other (parse p50/p95 99/135 ms with two busy processes beside the server, 77/108 ms on one thread;
        # idle 47/60 against 51/65 ms: AMD EPYC, 2 cores, 2026-12-05).
        OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", "1"),
        # Where `helpline models` put the sentence encoder the NLU may use (nlu/sentence_encoder.py encoder_dir).
        HELPLINE_MODEL_DIR=str(settings.models_dir),
    )
    return env


def train(settings: Settings, force: bool = False) -> Path:
    """Train unless a model for the current data exists; prints Rasa's progress. Returns the model path."""
    target = model_path(settings)
    if target.exists() and not force:
        print(f"Rasa model is up to date: {target.name}", flush=True)
        return target
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    cached = settings.model_cache_dir / target.name if settings.model_cache_dir is not None else None
    if cached is not None and cached.exists() and not force:
        _copy_whole(cached, target)
        print(f"Rasa model for this training data taken from {cached} (trained here before)", flush=True)
    else:
        _train(settings, target)
        if cached is not None:
            _keep_in_cache(target, cached)
    keep = {target, approved_model(settings)}  # the approved one serves until the new one passes the gates
    for old in settings.models_dir.glob("helpline-*.tar.gz"):
        if old not in keep:
            old.unlink()
    return target


def _train(settings: Settings, target: Path) -> None:
    print(f"training the Rasa model ({target.name}); this takes 3 to 8 minutes on two cores", flush=True)
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


def _keep_in_cache(model: Path, cached: Path) -> None:
    """A copy in the machine's cache; the cache keeps the newest CACHED_MODELS models."""
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        _copy_whole(model, cached)
        kept = sorted(cached.parent.glob("helpline-*.tar.gz"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[CACHED_MODELS:]:
            old.unlink()
    except OSError as e:  # a cache we cannot write costs the next checkout a training, nothing more
        log.warning("could not keep the model in %s: %s", cached.parent, e)


def _copy_whole(source: Path, target: Path) -> None:
    """Copy so that ``target`` is either absent or complete (another checkout may be reading the cache)."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    shutil.copyfile(source, partial)
    partial.replace(target)


def approved_file(settings: Settings) -> Path:
    return settings.models_dir / "approved"


def approve(settings: Settings, model: Path) -> None:
    """``model`` passed the quality gates: servers start with it until a newer model passes."""
    approved_file(settings).write_text(model.name + "\n")


def approved_model(settings: Settings) -> Path | None:
    """The model that last passed the quality gates (it may be gone since), or None before any did."""
    marker = approved_file(settings)
    return settings.models_dir / marker.read_text().strip() if marker.exists() else None


def serving_model(settings: Settings) -> Path:
    """The model a server starts with: the current training data's model, unless the data changed since the last
    model that passed the quality gates (a trainer's label, say) and the new one has not passed them yet: then the
    approved one. Before any model was approved (a fresh set-up), the current one."""
    current = model_path(settings)
    approved = approved_model(settings)
    if approved is None or approved == current or not approved.exists():
        return current
    log.warning(
        "the training data changed since %s passed the quality gates; serving it until `helpline nlu retrain` "
        "passes with the new data",
        approved.name,
    )
    return approved
