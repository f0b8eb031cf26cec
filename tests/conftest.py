"""Shared fixtures. The real Rasa server, action server and gateway start once per test session."""

from __future__ import annotations

import os

# NumPy's BLAS on one thread in the test processes, set before NumPy is loaded: the sentence encoder's matrices are
# small, and with other processes busy OpenBLAS's threads wait on each other (a text took 55 ms to encode instead of
# 24 ms while Rasa trained beside it; in CI the near-duplicate tests, 909 training texts and 176-331 turns each, took
# 290 s each).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import contextlib  # noqa: E402
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from foundation.settings import Settings
from helpline.machine import free_port


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """./test.sh runs two pytest-xdist workers (`--dist loadgroup`): every test on the session's shared line goes to
    one worker, so the line starts once; the modules with lines of their own (faults, scale-out) are one group for
    the other worker, and the rest go wherever a worker is free."""
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("shared-line"))


@pytest.fixture(scope="session")
def real_recordings() -> dict[str, tuple[Path, str]]:
    """stem -> (audio file, reference transcript) from ../shared/audio/real; never copied into the repo."""
    from voice.recordings import real_recordings as recordings

    try:
        return recordings()
    except FileNotFoundError as e:
        pytest.fail(str(e))


TEST_ACCOUNT_SID = "AC" + "7e57" * 8


@pytest.fixture(scope="session")
def twilio_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Twilio's REST API, stood in on loopback; the gateways of the test session redirect calls through it."""
    from telephony.twilio_standin import TwilioStandIn

    token = Settings(data_dir=tmp_path_factory.mktemp("twilio")).twilio_auth_token
    with TwilioStandIn(TEST_ACCOUNT_SID, token) as standin:
        yield standin


@pytest.fixture(scope="session")
def test_settings(twilio_standin: Any, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Repo data directory (the trained model lives there) but ports, a call store and a Twilio of our own, so a
    running `serve` and its data are left alone."""
    return Settings(
        gateway={"port": free_port()},  # type: ignore[arg-type]
        rasa={"port": free_port(), "actions_port": free_port()},  # type: ignore[arg-type]
        # Read-back has its own gateway in test_turn_taking; here a transcript whose ASR confidence happens to sit
        # near the threshold must not turn another scenario into a read-back.
        turn_taking={"confirm_below_confidence": 0.0},  # type: ignore[arg-type]
        twilio={  # type: ignore[arg-type]
            "auth_token": twilio_standin.auth_token,
            "account_sid": TEST_ACCOUNT_SID,
            "api_base_url": twilio_standin.url,
            "rest_timeout_s": 1.0,
            "rest_backoff_s": 0.05,
        },
        database_url=f"sqlite:///{tmp_path_factory.mktemp('store') / 'helpline.db'}",
    )


@pytest.fixture(scope="session")
def stack(test_settings: Settings) -> Iterator[Settings]:
    """Rasa server + action server + gateway, real processes on loopback, for the whole session."""
    from helpline.services import Stack

    with Stack(test_settings, ensure_model=False):
        yield test_settings


@pytest.fixture(scope="session")
def asr_model():  # type: ignore[no-untyped-def]
    from foundation.settings import AsrSettings
    from voice.asr import create_asr

    return create_asr(AsrSettings())


@pytest.fixture(scope="session")
def caller_voice():  # type: ignore[no-untyped-def]
    """Piper, a little slower than the assistant: the voice of simulated callers."""
    from voice.caller_voices import piper_caller

    return piper_caller()


@contextlib.contextmanager
def gateway_process(settings: Settings, label: str) -> Iterator[Any]:
    """A gateway process with these settings, started and warm (every fixed sentence synthesised, so calls start on
    a quiet machine); stopped on exit."""
    from helpline.services import gateway_process as gateway_command
    from helpline.services import wait_voice_warm

    process = gateway_command(settings, f" {label}")
    process.start()
    try:
        wait_voice_warm(settings, 120, process)
        yield process
    finally:
        process.stop()


@contextlib.contextmanager
def extra_gateway(stack: Settings, label: str, **sections: dict[str, Any]) -> Iterator[Settings]:
    """A second gateway process on the session's Rasa, with some settings sections changed (e.g. the ASR engine)."""
    update: dict[str, Any] = {"gateway": stack.gateway.model_copy(update={"port": free_port()})}
    for name, changes in sections.items():
        update[name] = getattr(stack, name).model_copy(update=changes)
    settings = stack.model_copy(update=update)
    with gateway_process(settings, label):
        yield settings


def run_in_rasa_venv(script: str, timeout_s: float = 300) -> Any:
    """``script`` run by the Rasa venv's Python from the repository (where Rasa and our components run)."""
    import subprocess

    from foundation.settings import REPO_ROOT

    python = REPO_ROOT / ".venv-rasa" / "bin" / "python"
    return subprocess.run([str(python), "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s)


def spoken(voice: Any, text: str) -> Any:
    """``text`` said by a synthetic caller, as float32 at 8 kHz (what a phone line carries)."""
    from voice.codecs import TELEPHONE_RATE

    speech = voice.synthesize(text)
    return speech.samples_at(TELEPHONE_RATE)


def metric(settings: Settings, name: str, **labels: str) -> float:
    """One sample of the gateway's ``/metrics`` as Prometheus would read it (0 when the series does not exist yet)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(f"{settings.gateway_url}/metrics", timeout=10)
    response.raise_for_status()
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


POSTGRES_ADMIN_URL = os.environ.get("HELPLINE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_answers() -> bool:
    import psycopg

    try:
        psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3).close()
        return True
    except psycopg.OperationalError:
        return False


def _ensure_postgres() -> None:
    """The machine's PostgreSQL server; started (as the machine notes say) if it has stopped."""
    import subprocess

    if _postgres_answers():
        return
    clusters = sorted(Path("/etc/postgresql").glob("*"))
    if clusters:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", clusters[-1].name, "main", "start"],
            check=False,
            capture_output=True,
        )
        for _ in range(30):
            if _postgres_answers():
                return
            time.sleep(1)
    pytest.fail(f"PostgreSQL does not answer at {POSTGRES_ADMIN_URL} and could not be started")


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database on the machine's real PostgreSQL server (SQLAlchemy URL), dropped on exit."""
    import uuid

    import psycopg

    _ensure_postgres()
    name = f"helpline_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty call store: a SQLite file, or a new database on the real PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def store(store_url: str) -> Iterator[Any]:
    """A fresh call store (SQLite or the real PostgreSQL), migrated, closed afterwards."""
    from analytics.store import CallStore

    store = CallStore.open(store_url)
    yield store
    store.close()


def add_user(settings, username: str, role: str, password: str) -> None:
    """Through the CLI a deployment uses (`helpline users add`), on the test session's call store."""
    import subprocess

    from helpline.services import settings_environment

    done = subprocess.run(
        [sys.executable, "-m", "helpline.cli", "users", "add", username, "--role", role, "--password-stdin"],
        input=password + "\n",
        env=settings_environment(settings) | {"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def signed_post(settings: Settings, path: str, params: dict[str, str], query: str = "") -> Any:
    """A webhook as Twilio sends it: form-encoded, signed over the public URL with the auth token."""
    import httpx
    from twilio.request_validator import RequestValidator

    public = f"{settings.public_base_url}{path}" + (f"?{query}" if query else "")
    signature = RequestValidator(settings.twilio_auth_token).compute_signature(public, params)
    local = f"{settings.gateway_url}{path}" + (f"?{query}" if query else "")
    return httpx.post(local, data=params, headers={"X-Twilio-Signature": signature}, timeout=10)
