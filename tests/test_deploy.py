"""The container files agree with the code: every HELPLINE_* variable they set is a real setting (Settings ignores
unknown ones, so a renamed setting would silently fall back to its default), every service runs a real `helpline`
command and says how its health is checked. The image and the compose file themselves were built and run with podman
(README "Operations")."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest
import yaml
from pydantic import BaseModel

from foundation.settings import REPO_ROOT, Settings
from helpline.cli import build_parser
from helpline.machine import free_port
from helpline.services import settings_environment

DEPLOY = REPO_ROOT / "deploy"


def _is_setting(variable: str) -> bool:
    model: type[BaseModel] = Settings
    names = variable.removeprefix("HELPLINE_").lower().split("__")
    for i, name in enumerate(names):
        field = model.model_fields.get(name)
        if field is None:
            return False
        if i < len(names) - 1:
            if not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
                return False
            model = field.annotation
    return True


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_every_variable_the_container_files_set_is_a_setting():
    services = _compose()["services"]
    in_compose = {k for s in services.values() for k in (s.get("environment") or {}) if k.startswith("HELPLINE_")}
    in_image = set(re.findall(r"\b(HELPLINE_[A-Z_]+)=", (DEPLOY / "Dockerfile").read_text()))
    assert len(in_compose) >= 10 and len(in_image) >= 5
    assert [v for v in sorted(in_compose | in_image) if not _is_setting(v)] == []
    assert not _is_setting("HELPLINE_RASA__NO_SUCH") and not _is_setting("HELPLINE_RASA__HOST__X")


def test_every_helpline_service_runs_a_real_command_and_is_health_checked():
    services = _compose()["services"]
    ours = {name: s for name, s in services.items() if s.get("image") == "helpline:latest"}
    assert {"actions", "rasa-1", "rasa-2", "gateway-1", "gateway-2", "purge"} <= set(ours)
    for name, service in ours.items():
        assert build_parser().parse_args(service["command"]).command == service["command"][0], name
        check = service.get("healthcheck") or {}
        assert check.get("test") or check.get("disable") is True, f"{name} says nothing of its health"
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
    # Each gateway's own Rasa server first, the other as its backup.
    assert services["gateway-1"]["environment"]["HELPLINE_RASA__HOST"] == "rasa-1"
    assert "rasa-2" in services["gateway-1"]["environment"]["HELPLINE_RASA__BACKUP_URLS"]


@pytest.mark.rasa
def test_helpline_actions_becomes_the_action_server_a_container_runs(tmp_path):
    port = free_port()
    env = settings_environment(Settings(data_dir=tmp_path, rasa={"actions_port": port})) | {"PATH": "/usr/bin:/bin"}
    server = subprocess.Popen([sys.executable, "-m", "helpline.cli", "actions"], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            assert server.poll() is None, "the action server exited"
            time.sleep(0.1)
        else:
            pytest.fail("the action server did not answer in 60 s")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
