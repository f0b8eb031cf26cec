"""Starting and stopping the product's processes (helpline/services.py), without starting them for real."""

import signal
import socket
import subprocess
import sys

import pytest

from foundation.settings import REPO_ROOT, Settings
from helpline.machine import free_port, port_in_use
from helpline.services import ServiceError, Stack


def test_a_stack_does_not_start_where_another_server_already_listens(tmp_path):
    """Before this check, a benchmark started beside a forgotten stack saw "rasa server is ready (0 s)": the health
    check was answered by the other stack's server while its own had failed to listen, and it measured the wrong
    servers with the wrong settings."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = Settings(
            data_dir=tmp_path,
            rasa={"port": port, "actions_port": free_port()},  # type: ignore[arg-type]
            gateway={"port": free_port()},  # type: ignore[arg-type]
        )
        stack = Stack(settings)  # it would train a model for the data dir: the taken port stops it first
        with pytest.raises(ServiceError, match=f"port {port} on 127.0.0.1 \\(rasa server\\) is already in use"):
            stack.start()
        assert stack.processes == []
        assert not list(tmp_path.glob("models/*.tar.gz"))
    assert not port_in_use("127.0.0.1", port)


def test_sigterm_unwinds_a_stack_block_so_its_servers_are_stopped():
    """`timeout` or `kill` sends SIGTERM, whose default action ends Python without running ``finally``: the stack's
    servers, each in a process group of its own, were left running."""
    script = (
        "import time\n"
        "from helpline.services import stopping_on_sigterm\n"
        "try:\n"
        "    with stopping_on_sigterm():\n"
        "        print('started', flush=True)\n"
        "        time.sleep(60)\n"
        "finally:\n"
        "    print('stopped the servers', flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "started"
    child.send_signal(signal.SIGTERM)
    out, _ = child.communicate(timeout=30)
    assert out.strip() == "stopped the servers"
    assert child.returncode != 0
