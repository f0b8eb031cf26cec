"""Starting, health-checking and stopping the product's processes: Rasa server, action server, gateway."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from foundation.settings import REPO_ROOT, Settings
from helpline.machine import port_in_use
from helpline.training import model_path, rasa_environment, rasa_executable, rasa_model_command, serving_model, train

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A service did not start or died."""


@dataclass
class ManagedProcess:
    """A child process in its own process group, with its output in a log file."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    health: Callable[[], bool]
    address: tuple[str, int]  # where it listens: its health is asked there
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                self.command, cwd=REPO_ROOT, env=self.env, stdout=log_file, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM the whole group, then SIGKILL whatever is left after ``timeout_s``."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0f s; killing it", self.name, timeout_s)
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        except ProcessLookupError:
            pass


@contextlib.contextmanager
def stopping_on_sigterm() -> Iterator[None]:
    """Within this block SIGTERM (``timeout``, ``kill``) unwinds the main thread like Ctrl-C, so the ``finally`` and
    ``with`` blocks around it run and the servers started in their own process groups are stopped instead of left
    running. A handler of the program's own (``helpline serve``) is kept, as is any handler off the main thread."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _http_ok(url: str, check: Callable[[httpx.Response], bool] = lambda r: r.status_code == 200) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            return check(httpx.get(url, timeout=2))
        except httpx.HTTPError:
            return False

    return probe


class Stack:
    """The running product: Rasa server + action server (+ the gateway), started healthy, stopped cleanly.

    Use as a context manager. ``with_gateway=False`` starts only the dialogue side (tests run the gateway apart).
    """

    def __init__(self, settings: Settings, with_gateway: bool = True, ensure_model: bool = True, label: str = ""):
        self.settings = settings
        self.with_gateway = with_gateway
        self.ensure_model = ensure_model
        self.label = label  # names its processes and log files apart from another stack's on the machine
        self.processes: list[ManagedProcess] = []
        self._cleanup = contextlib.ExitStack()  # what __exit__ undoes (__enter__ fills it)

    def _build(self) -> list[ManagedProcess]:
        processes = [action_server_process(self.settings, self.label), rasa_server_process(self.settings, self.label)]
        if self.with_gateway:
            processes.append(gateway_process(self.settings, self.label))
        return processes

    def start(self) -> None:
        # Laid out before training: which model a server serves does not depend on whether it is trained yet.
        processes = self._build()
        # A server of another stack (or any program) on one of these ports would answer the health checks while
        # this stack's own process failed to listen: the start would look healthy and talk to the wrong servers.
        # Checked first, so a taken port is not found only after minutes of training.
        for process in processes:
            host, port = process.address
            if port_in_use(host, port):
                raise ServiceError(
                    f"port {port} on {host} ({process.name}) is already in use: stop what listens there (another"
                    " `helpline serve`, a benchmark's servers) or configure another port"
                )
        if self.ensure_model:
            train(self.settings)
        elif not model_path(self.settings).exists():
            raise ServiceError("no Rasa model for the current training data: run `helpline train`")
        self.processes = processes
        for process in self.processes:
            print(f"starting {process.name} (log: {process.log_path})", flush=True)
            process.start()
        self.wait_healthy(self.settings.rasa.startup_timeout_s)
        self.warm_up()

    def warm_up(self) -> None:
        warm_up_rasa(self.settings)

    def wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        pending = list(self.processes)
        started = time.monotonic()
        while pending:
            for process in list(pending):
                if not process.alive:
                    raise ServiceError(f"{process.name} exited during start-up:\n{process.tail()}")
                if process.health():
                    print(f"{process.name} is ready ({time.monotonic() - started:.0f} s)", flush=True)
                    pending.remove(process)
            if time.monotonic() > deadline:
                names = ", ".join(p.name for p in pending)
                raise ServiceError(f"not healthy after {timeout_s:.0f} s: {names}")
            time.sleep(0.5)

    @property
    def gateways(self) -> list[Settings]:
        """The settings of each gateway this stack runs."""
        return [self.settings] if self.with_gateway else []

    def wait_voice_warm(self, timeout_s: float) -> None:
        for gateway in self.gateways:
            wait_voice_warm(gateway, timeout_s)

    def process(self, name: str) -> ManagedProcess:
        """The process of this stack called ``name`` ("rasa server", "action server", "gateway")."""
        return next(p for p in self.processes if p.name == f"{name}{self.label}")

    def dead(self) -> list[ManagedProcess]:
        return [p for p in self.processes if not p.alive]

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.alive:
                print(f"stopping {process.name}", flush=True)
            process.stop()

    def __enter__(self) -> Stack:
        with contextlib.ExitStack() as on_failure:  # undone at once if the start fails, else at __exit__
            on_failure.enter_context(stopping_on_sigterm())
            on_failure.callback(self.stop)
            self.start()
            self._cleanup = on_failure.pop_all()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._cleanup.close()  # stops the processes, then gives SIGTERM its default action back


def build_stack(settings: Settings, gateways: int = 1, rasa_servers: int = 1, ensure_model: bool = True) -> Stack:
    """One of each process, or a Cluster of ``gateways`` and ``rasa_servers`` on the configured ports and the ones
    after them (8080, 8081, ...)."""
    if gateways < 1 or rasa_servers < 1:
        raise ServiceError(f"a line needs at least one gateway and one Rasa server (asked: {gateways}, {rasa_servers})")
    if gateways == 1 and rasa_servers == 1:
        return Stack(settings, ensure_model=ensure_model)
    return Cluster(
        settings,
        [settings.gateway.port + i for i in range(gateways)],
        [settings.rasa.port + i for i in range(rasa_servers)],
        ensure_model=ensure_model,
    )


def wait_voice_warm(settings: Settings, timeout_s: float, process: ManagedProcess | None = None) -> None:
    """Until the gateway at ``settings`` has synthesised every fixed sentence, so a first caller waits for no voice;
    ServiceError after ``timeout_s``, or as soon as ``process`` (that gateway) exits."""
    warm = _http_ok(f"{settings.gateway_url}/healthz", lambda r: r.json().get("voice_cache") == "warm")
    deadline = time.monotonic() + timeout_s
    while not warm():
        if process is not None and not process.alive:
            raise ServiceError(f"{process.name} exited before its voice was warm:\n{process.tail()}")
        if time.monotonic() > deadline:
            raise ServiceError(f"gateway {settings.gateway_url}: voice not warm after {timeout_s:.0f} s")
        time.sleep(0.5)


def warm_up_rasa(settings: Settings) -> None:
    """One message before the first caller: Rasa traces its TensorFlow graphs (NLU and dialogue policy) on the first
    message, about a second that no caller should wait."""
    try:
        httpx.post(
            f"{settings.rasa.url}/webhooks/rest/webhook",
            json={"sender": "helpline-warm-up", "message": "hello"},
            timeout=60,
        )
    except httpx.HTTPError as e:
        log.warning("Rasa warm-up parse failed: %r", e)


def _log_file(s: Settings, name: str, label: str) -> Path:
    """Where a process of a stack labelled ``label`` writes its log (another stack's processes elsewhere)."""
    return s.data_dir / "logs" / f"{name}{label.replace(' ', '-')}.log"


def action_server_process(s: Settings, label: str = "") -> ManagedProcess:
    return ManagedProcess(
        f"action server{label}",
        [str(rasa_executable(s)), "run", "actions", "--actions", "dialogues.actions", "-p", str(s.rasa.actions_port)],
        rasa_environment(s),
        _log_file(s, "actions", label),
        _http_ok(f"{s.rasa.actions_url}/health"),
        (s.rasa.actions_host, s.rasa.actions_port),
    )


def rasa_server_process(s: Settings, label: str = "") -> ManagedProcess:
    endpoints = write_rasa_endpoints(s)
    command = [
        *rasa_model_command(s), "run", "--enable-api", "-i", s.rasa.host, "-p", str(s.rasa.port),
        "-m", str(serving_model(s)), "--endpoints", str(endpoints),
        "--credentials", str(endpoints.with_name("credentials.yml")),
    ]  # fmt: skip
    return ManagedProcess(
        f"rasa server{label}",
        command,
        rasa_environment(s),
        _log_file(s, "rasa", label),
        _http_ok(f"{s.rasa.url}/status", lambda r: r.status_code == 200 and bool(r.json().get("model_file"))),
        (s.rasa.host, s.rasa.port),
    )


def gateway_process(s: Settings, label: str = "") -> ManagedProcess:
    return ManagedProcess(
        f"gateway{label}",
        [sys.executable, "-m", "helpline.cli", "gateway"],
        dict(os.environ) | settings_environment(s),
        _log_file(s, "gateway", label),
        _http_ok(f"{s.gateway_url}/healthz"),
        (s.gateway.host, s.gateway.port),
    )


def write_rasa_endpoints(settings: Settings) -> Path:
    """Rasa's endpoints.yml and credentials.yml for the server on ``settings.rasa.port``, generated from Settings so
    ports and stores live in one place."""
    run_dir = settings.runtime_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    endpoints = run_dir / f"endpoints-{settings.rasa.port}.yml"
    # Conversations live in a redacting SQL tracker store: no identity number is persisted, and a hot-reloaded
    # model continues the calls in progress (a new agent reads the same trackers). A SQLite file per server by
    # default; servers that share a PostgreSQL tracker store and a Redis lock store can each serve any call.
    text = f"action_endpoint:\n  url: {settings.rasa.actions_url}/webhook\n"
    text += "tracker_store:\n  type: dialogues.tracker_store.RedactingSQLTrackerStore\n"
    tracker = settings.rasa.tracker_store_url
    if tracker is None:
        text += f"  dialect: sqlite\n  db: {settings.data_dir / f'rasa-trackers-{settings.rasa.port}.db'}\n"
    else:
        url = urlsplit(tracker)
        text += f"  dialect: {url.scheme.split('+')[0]}\n  url: {url.hostname}\n  port: {url.port or 5432}\n"
        text += f"  db: {url.path.lstrip('/')}\n  username: {unquote(url.username or '')}\n"
        if url.password:
            text += f"  password: {json.dumps(unquote(url.password))}\n"
    if settings.rasa.lock_store_url is not None:
        lock = urlsplit(settings.rasa.lock_store_url)
        text += f"lock_store:\n  type: redis\n  url: {lock.hostname}\n  port: {lock.port or 6379}\n"
        text += f"  db: {int(lock.path.lstrip('/') or 0)}\n  key_prefix: helpline\n"
    endpoints.write_text(text)
    (run_dir / "credentials.yml").write_text("rest:\n")
    return endpoints


def settings_environment(settings: Settings) -> dict[str, str]:
    """Every setting as HELPLINE_* variables, so a child process agrees with this one exactly."""
    env: dict[str, str] = {}

    def text(value: Any) -> str:  # lists and objects travel as JSON, which is how pydantic-settings reads them
        return json.dumps(value) if isinstance(value, list | dict) else str(value)

    for key, value in settings.model_dump(mode="json", exclude={"twilio": {"auth_token"}}).items():
        if isinstance(value, dict):
            env.update({f"HELPLINE_{key}__{k}".upper(): text(v) for k, v in value.items() if v is not None})
        elif value is not None:
            env[f"HELPLINE_{key}".upper()] = text(value)
    env["HELPLINE_TWILIO__AUTH_TOKEN"] = settings.twilio_auth_token
    return env


class Cluster(Stack):
    """Scale-out on one host (or the blueprint for several): one action server, several Rasa servers sharing a
    PostgreSQL tracker store and a Redis lock store, and several gateways sharing the call store. Gateway i talks to
    Rasa server i (mod their number) first and to the others when it refuses connections. Calls are spread over the
    gateways by whatever sits in front of them (a load balancer; Twilio reaches one public URL)."""

    def __init__(self, settings: Settings, gateway_ports: list[int], rasa_ports: list[int], ensure_model: bool = True):
        if settings.rasa.tracker_store_url is None or settings.rasa.lock_store_url is None:
            raise ServiceError(
                "several Rasa servers need a shared tracker store and lock store: set HELPLINE_RASA__TRACKER_STORE_URL"
                " (postgresql://...) and HELPLINE_RASA__LOCK_STORE_URL (redis://...)"
            )
        if len(gateway_ports) > 1 and settings.database.startswith("sqlite"):
            raise ServiceError("several gateways need a shared call store: set HELPLINE_DATABASE_URL (postgresql)")
        super().__init__(settings, with_gateway=True, ensure_model=ensure_model)
        self.rasa_settings = [settings.model_copy(update={"rasa": settings.rasa.model_copy(update={"port": p})})
                              for p in rasa_ports]  # fmt: skip
        urls = [s.rasa.url for s in self.rasa_settings]
        self._gateways: list[Settings] = []
        for i, port in enumerate(gateway_ports):
            own = i % len(rasa_ports)
            rasa = settings.rasa.model_copy(
                update={"port": rasa_ports[own], "backup_urls": urls[own + 1 :] + urls[:own]}
            )
            gateway = settings.gateway.model_copy(update={"port": port})
            self._gateways.append(settings.model_copy(update={"gateway": gateway, "rasa": rasa}))

    @property
    def gateways(self) -> list[Settings]:
        return self._gateways

    def _build(self) -> list[ManagedProcess]:
        return [
            action_server_process(self.settings),
            *(rasa_server_process(s, f" {i + 1}") for i, s in enumerate(self.rasa_settings)),
            *(gateway_process(s, f" {i + 1}") for i, s in enumerate(self.gateways)),
        ]

    def warm_up(self) -> None:
        for s in self.rasa_settings:
            warm_up_rasa(s)
